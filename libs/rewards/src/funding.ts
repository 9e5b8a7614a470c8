import { ADDRESS_PATTERN } from '@gpumesh/protocol';
import { ZeroHash } from 'ethers';

import { keccak256Bytes } from './keccak.js';
import { buildMerkleTree, type MerkleTree } from './merkle.js';

/** What a developer's escrow is debited for the epoch. */
export interface EpochDebit {
  /** Lower-case 0x address (the SIWE account that deposited). */
  readonly account: string;
  /** Decimal base units. */
  readonly amount: string;
}

/**
 * How an epoch is funded, as its file states it: the escrow that is debited, how its debits are cut
 * into batches, and the root of those batches (posted on chain beside the epoch's root as its
 * `fundingRoot`). Anyone holding the file can rebuild every batch and its proof and send it.
 */
export interface EpochFunding {
  /** Lower-case 0x address of the JobEscrow. */
  readonly escrow: string;
  /** Accounts per batch (the last batch may hold fewer). */
  readonly batchSize: number;
  /** 0x root of the batches' tree; the zero hash when nothing is debited. */
  readonly root: string;
}

/** The chain and escrow a batch belongs to: both are in every batch's leaf. */
export interface FundingDomain {
  readonly chainId: number;
  /** 0x address of the JobEscrow. */
  readonly escrow: string;
}

/** One escrow `debit` transaction of an epoch: its batch number and the accounts it debits. */
export interface FundingBatch {
  /** The escrow refuses a (epoch, index) twice, so a batch is debited at most once. */
  readonly index: number;
  /** Lower-case 0x addresses, in the epoch file's order (sorted). */
  readonly accounts: readonly string[];
  /** Base units, one per account. */
  readonly amounts: readonly bigint[];
}

/** A batch with its proof against the epoch's funding root: the arguments of `JobEscrow.debit`. */
export interface CommittedBatch extends FundingBatch {
  readonly proof: readonly string[];
}

/** Accounts per batch unless a caller says otherwise (gas stays far below a block's limit). */
export const DEFAULT_FUNDING_BATCH_SIZE = 100;

/**
 * The ABI types of a batch's leaf value: `(chainId, escrow, epoch, batch, accounts, amounts)`. The
 * leaf hash is `keccak256(bytes.concat(keccak256(abi.encode(value))))`, as in OpenZeppelin's standard
 * Merkle tree and `JobEscrow.debit`.
 */
export const FUNDING_LEAF_ENCODING = [
  'uint256',
  'address',
  'uint64',
  'uint32',
  'address[]',
  'uint256[]',
] as const;

/**
 * Splits an epoch file's debits (sorted by account) into batches of at most `size` accounts, in
 * order. Deterministic: the same file always gives the same batches, so a restarted settler resumes
 * the very batches it started, and the escrow's per-batch flag makes each one take effect once.
 */
export function fundingBatches(debits: readonly EpochDebit[], size: number): FundingBatch[] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError('batch size must be a positive integer');
  const batches: FundingBatch[] = [];
  for (let start = 0; start < debits.length; start += size) {
    const slice = debits.slice(start, start + size);
    batches.push({
      index: batches.length,
      accounts: slice.map((d) => d.account),
      amounts: slice.map((d) => BigInt(d.amount)),
    });
  }
  return batches;
}

const WORD = 32;
const UINT256_MAX = (1n << 256n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

function writeUint(out: Buffer, at: number, value: bigint, max: bigint, what: string): void {
  if (value < 0n || value > max) throw new RangeError(`funding leaf: ${what} ${value} is out of range`);
  if (value <= UINT64_MAX) {
    out.writeBigUInt64BE(value, at + WORD - 8);
    return;
  }
  const hex = value.toString(16).padStart(64, '0');
  out.write(hex, at, 'hex');
}

function writeAddress(out: Buffer, at: number, address: string, what: string): void {
  if (!ADDRESS_PATTERN.test(address))
    throw new TypeError(`funding leaf: ${what} ${address} is not an address`);
  out.write(address.slice(2), at + 12, 'hex');
}

/**
 * `abi.encode` of a batch's value (`FUNDING_LEAF_ENCODING`), written word by word: the six head
 * words (the two arrays by offset), then each array's length and elements. The same bytes as
 * ethers' coder (`funding.spec.ts`), at a fraction of its cost for the watcher's audit of 100 batches.
 */
export function encodeFundingLeaf(domain: FundingDomain, epoch: number, batch: FundingBatch): Uint8Array {
  const n = batch.accounts.length;
  if (batch.amounts.length !== n) throw new RangeError('funding leaf: one amount per account');
  const accountsAt = 6 * WORD;
  const amountsAt = accountsAt + (1 + n) * WORD;
  const out = Buffer.alloc(amountsAt + (1 + n) * WORD);
  writeUint(out, 0, BigInt(domain.chainId), UINT256_MAX, 'chain id');
  writeAddress(out, WORD, domain.escrow, 'escrow');
  writeUint(out, 2 * WORD, BigInt(epoch), UINT64_MAX, 'epoch');
  writeUint(out, 3 * WORD, BigInt(batch.index), 0xffffffffn, 'batch');
  writeUint(out, 4 * WORD, BigInt(accountsAt), UINT256_MAX, 'offset');
  writeUint(out, 5 * WORD, BigInt(amountsAt), UINT256_MAX, 'offset');
  writeUint(out, accountsAt, BigInt(n), UINT256_MAX, 'length');
  writeUint(out, amountsAt, BigInt(n), UINT256_MAX, 'length');
  for (let i = 0; i < n; i++) {
    writeAddress(out, accountsAt + (1 + i) * WORD, batch.accounts[i], 'account');
    writeUint(out, amountsAt + (1 + i) * WORD, batch.amounts[i], UINT256_MAX, 'amount');
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** The leaf of `batch` of `epoch` in `domain` (what `JobEscrow.debitLeaf` returns). */
export function fundingLeaf(domain: FundingDomain, epoch: number, batch: FundingBatch): Uint8Array {
  return keccak256Bytes(keccak256Bytes(encodeFundingLeaf(domain, epoch, batch)));
}

/** The tree over `batches` of `epoch` (leaf `i` is batch `i`), or null when there is none. */
export function fundingTree(
  domain: FundingDomain,
  epoch: number,
  batches: readonly FundingBatch[],
): MerkleTree | null {
  if (batches.length === 0) return null;
  return buildMerkleTree(batches.map((b) => fundingLeaf(domain, epoch, b)));
}

/** The funding root of `debits` cut into batches of `batchSize`: the zero hash when there is none. */
export function fundingRootOf(
  domain: FundingDomain,
  epoch: number,
  debits: readonly EpochDebit[],
  batchSize: number,
): string {
  return fundingTree(domain, epoch, fundingBatches(debits, batchSize))?.root ?? ZeroHash;
}

/**
 * Every batch of an epoch with its proof, rebuilt from what its file states (the file's `funding`
 * and `debits`). Throws when the file has no funding, or when its batches do not give its root
 * (a file that cannot fund its epoch).
 */
export function committedBatches(file: {
  readonly epoch: number;
  readonly chainId: number;
  readonly debits: readonly EpochDebit[];
  readonly funding: EpochFunding | null;
}): CommittedBatch[] {
  const funding = file.funding;
  if (funding === null) throw new Error(`epoch ${file.epoch}: the file names no escrow funding`);
  const batches = fundingBatches(file.debits, funding.batchSize);
  const tree = fundingTree({ chainId: file.chainId, escrow: funding.escrow }, file.epoch, batches);
  const root = tree?.root ?? ZeroHash;
  if (root !== funding.root.toLowerCase()) {
    throw new Error(
      `epoch ${file.epoch}: the debits give funding root ${root}, the file says ${funding.root}`,
    );
  }
  return tree ? batches.map((b, i) => ({ ...b, proof: tree.proof(i) })) : [];
}
