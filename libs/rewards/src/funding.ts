import { AbiCoder, ZeroHash } from 'ethers';

import { fromHex } from './hex.js';
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

const abi = AbiCoder.defaultAbiCoder();

/** The leaf of `batch` of `epoch` in `domain` (what `JobEscrow.debitLeaf` returns). */
export function fundingLeaf(domain: FundingDomain, epoch: number, batch: FundingBatch): Uint8Array {
  const encoded = abi.encode(
    [...FUNDING_LEAF_ENCODING],
    [domain.chainId, domain.escrow, epoch, batch.index, batch.accounts, batch.amounts],
  );
  return keccak256Bytes(keccak256Bytes(fromHex(encoded)));
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
