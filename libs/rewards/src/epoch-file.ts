import {
  ADDRESS_PATTERN,
  LOWER_CASE_ADDRESS_PATTERN,
  canonicalJson,
  formatIssuePath,
} from '@gpumesh/protocol';
import { z } from 'zod';

import { MAX_CUMULATIVE_AMOUNT, TOKEN_DECIMALS } from './amounts.js';
import { RewardsError } from './errors.js';
import { DEFAULT_FUNDING_BATCH_SIZE, fundingRootOf, type EpochDebit, type EpochFunding } from './funding.js';
import { keccak256Hex } from './keccak.js';
import { LEAF_ENCODING, leafHasher, type LeafDomain } from './leaf.js';
import { buildMerkleTree, type MerkleTree } from './merkle.js';

export const EPOCH_FILE_FORMAT = 'gpumesh-epoch/3';

export type { EpochDebit, EpochFunding } from './funding.js';

/** A receipt credited in the epoch: its id (`<jobId>:<peerId>`, or `<jobId>:fee`) and what it paid. */
export interface EpochReceipt {
  readonly id: string;
  /** Decimal base units. */
  readonly amount: string;
}

/** A provider's receipt id in the epoch file: the job and the peer it paid. */
export function receiptId(jobId: string, peerId: string): string {
  return `${jobId}:${peerId}`;
}

/** The platform fee's receipt id for a job (in the fee recipient's leaf). */
export function feeReceiptId(jobId: string): string {
  return `${jobId}:fee`;
}

/** One provider's leaf and the receipts that justify what this epoch adds to it. */
export interface EpochLeaf {
  /** The provider's permanent slot in the distributor (assigned on its first earning). */
  readonly index: number;
  /** Lower-case 0x address. */
  readonly account: string;
  /** Decimal base units earned since the first epoch. */
  readonly cumulativeAmount: string;
  /** Cumulative amount of the previous epoch. */
  readonly previousAmount: string;
  /** `cumulativeAmount - previousAmount`. */
  readonly epochAmount: string;
  /** The receipts credited this epoch, sorted by id; their amounts add up to `epochAmount`. */
  readonly receipts: readonly EpochReceipt[];
}

/** One value of the tree dump: `[chainId, distributor, index, account, cumulativeAmount]`, decimal strings and lower-case addresses. */
export type StandardTreeValue = readonly [string, string, string, string, string];

/**
 * OpenZeppelin's `standard-v1` tree dump: `StandardMerkleTree.load(file.tree)` rebuilds the tree,
 * and its `root` is the root posted on chain. `values` are in the order of `leaves`.
 */
export interface StandardTreeDump {
  readonly format: 'standard-v1';
  readonly leafEncoding: readonly string[];
  /** Every node, root first. */
  readonly tree: readonly string[];
  readonly values: readonly { readonly value: StandardTreeValue; readonly treeIndex: number }[];
}

/**
 * Everything needed to recompute an epoch's root: every leaf (all providers ever paid, in index
 * order) with the receipts behind this epoch's part, the escrow debits that fund it, and the whole
 * tree in OpenZeppelin's `standard-v1` format. Its keccak256 over the canonical JSON is posted on
 * chain beside the root. Leaves are bound to one chain and one distributor (`chainId`,
 * `distributor`): the same file proves nothing on another.
 */
export interface EpochFile extends LeafDomain {
  readonly format: typeof EPOCH_FILE_FORMAT;
  readonly epoch: number;
  readonly decimals: number;
  readonly root: string;
  /** Σ epochAmount: what this epoch adds, posted on chain as the epoch total. */
  readonly total: string;
  /** Σ cumulativeAmount. */
  readonly cumulativeTotal: string;
  readonly leaves: readonly EpochLeaf[];
  /** Sorted by account; when present their sum equals `total`. */
  readonly debits: readonly EpochDebit[];
  /**
   * How `debits` fund the epoch on chain: the escrow, the batch size and the batches' root (posted
   * as the epoch's `fundingRoot`). Null when the epoch is not funded from an escrow (then only a
   * `RewardsDistributor.fund` from someone else funds it).
   */
  readonly funding: EpochFunding | null;
  /** The tree (null when there is no leaf: OpenZeppelin's format has no empty tree). */
  readonly tree: StandardTreeDump | null;
}

/** A provider's position after an epoch: its slot and cumulative earnings. */
export interface CumulativeEntry {
  readonly index: number;
  readonly cumulativeAmount: bigint;
}

/** Credits for one provider (several credits for the same provider add up). */
export interface EpochCredit {
  readonly provider: string;
  /** What each receipt pays (positive); the credit is their sum. */
  readonly receipts: readonly { readonly id: string; readonly amount: bigint }[];
}

/** Where an epoch settles: the chain and distributor its leaves are bound to, and the escrow that funds it. */
export interface EpochDomain extends LeafDomain {
  /** 0x address of the JobEscrow. */
  readonly escrow: string;
}

/** A developer's spend in the epoch. */
export interface EpochDebitInput {
  readonly account: string;
  readonly amount: bigint;
}

export interface CloseEpochOptions extends LeafDomain {
  readonly epoch: number;
  /** Escrow debits; when given they must add up to the epoch's credits. */
  readonly debits?: readonly EpochDebitInput[];
  /** The JobEscrow the debits are taken from; without it the file has no `funding`. */
  readonly escrow?: string;
  /** Accounts per debit batch (default `DEFAULT_FUNDING_BATCH_SIZE`). */
  readonly fundingBatchSize?: number;
}

function normaliseAddress(address: string, what: string): string {
  if (!ADDRESS_PATTERN.test(address))
    throw new RewardsError('INVALID_CREDIT', `${what}: invalid address ${address}`);
  return address.toLowerCase();
}

/**
 * Closes an epoch: adds `credits` to `previousCumulative` (keyed by address, any case), gives new
 * providers the next indices (in address order), builds the tree and returns the epoch file.
 * Pure and deterministic: the same inputs give the same file byte for byte.
 */
export function closeEpoch(
  previousCumulative: ReadonlyMap<string, CumulativeEntry>,
  credits: readonly EpochCredit[],
  options: CloseEpochOptions,
): EpochFile {
  if (!Number.isSafeInteger(options.epoch) || options.epoch < 1) {
    throw new RewardsError('INVALID_CREDIT', `epoch must be a positive integer, got ${options.epoch}`);
  }
  if (!Number.isSafeInteger(options.chainId) || options.chainId < 1) {
    throw new RewardsError('INVALID_CREDIT', `chain id must be a positive integer, got ${options.chainId}`);
  }
  const distributor = normaliseAddress(options.distributor, 'distributor');
  const added = new Map<string, { amount: bigint; receipts: EpochReceipt[] }>();
  const seenReceipts = new Set<string>();
  for (const credit of credits) {
    const provider = normaliseAddress(credit.provider, 'credit');
    if (credit.receipts.length === 0) {
      throw new RewardsError('INVALID_CREDIT', `credit for ${provider} has no receipt`);
    }
    let entry = added.get(provider);
    if (!entry) {
      entry = { amount: 0n, receipts: [] };
      added.set(provider, entry);
    }
    for (const { id, amount } of credit.receipts) {
      if (typeof amount !== 'bigint' || amount <= 0n) {
        throw new RewardsError(
          'INVALID_CREDIT',
          `receipt ${id} for ${provider}: amount must be a positive bigint`,
        );
      }
      if (seenReceipts.has(id)) throw new RewardsError('DUPLICATE_RECEIPT', `receipt ${id} credited twice`);
      seenReceipts.add(id);
      entry.amount += amount;
      entry.receipts.push({ id, amount: amount.toString() });
    }
  }
  const positions = new Map<string, { index: number; previous: bigint }>();
  let nextIndex = 0;
  for (const [address, entry] of previousCumulative) {
    const account = normaliseAddress(address, 'previous cumulative');
    if (positions.has(account)) throw new RewardsError('INVALID_CREDIT', `${account} appears twice`);
    positions.set(account, { index: entry.index, previous: entry.cumulativeAmount });
    nextIndex = Math.max(nextIndex, entry.index + 1);
  }
  const newcomers = [...added.keys()].filter((a) => !positions.has(a)).sort();
  for (const account of newcomers) positions.set(account, { index: nextIndex++, previous: 0n });

  const leaves: EpochLeaf[] = [];
  let total = 0n;
  let cumulativeTotal = 0n;
  for (const [account, position] of positions) {
    const credit = added.get(account);
    const epochAmount = credit?.amount ?? 0n;
    const cumulative = position.previous + epochAmount;
    if (cumulative > MAX_CUMULATIVE_AMOUNT) {
      throw new RewardsError('AMOUNT_OVERFLOW', `${account}: cumulative ${cumulative} exceeds uint64`);
    }
    total += epochAmount;
    cumulativeTotal += cumulative;
    leaves.push({
      index: position.index,
      account,
      cumulativeAmount: cumulative.toString(),
      previousAmount: position.previous.toString(),
      epochAmount: epochAmount.toString(),
      receipts: credit ? [...credit.receipts].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) : [],
    });
  }
  leaves.sort((a, b) => a.index - b.index);
  for (let i = 1; i < leaves.length; i++) {
    if (leaves[i].index === leaves[i - 1].index) {
      throw new RewardsError('INVALID_CREDIT', `index ${leaves[i].index} is held by two accounts`);
    }
  }

  const debits = aggregateDebits(options.debits ?? []);
  if (options.debits !== undefined) {
    const debitTotal = debits.reduce((s, d) => s + BigInt(d.amount), 0n);
    if (debitTotal !== total) {
      throw new RewardsError('DEBITS_MISMATCH', `debits add up to ${debitTotal}, credits to ${total}`);
    }
  }
  const domain = { chainId: options.chainId, distributor };
  const tree = epochTree({ ...domain, leaves });
  let funding: EpochFunding | null = null;
  if (options.escrow !== undefined) {
    const escrow = normaliseAddress(options.escrow, 'escrow');
    const batchSize = options.fundingBatchSize ?? DEFAULT_FUNDING_BATCH_SIZE;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new RewardsError(
        'INVALID_CREDIT',
        `funding batch size must be a positive integer, got ${batchSize}`,
      );
    }
    funding = {
      escrow,
      batchSize,
      root: fundingRootOf({ chainId: options.chainId, escrow }, options.epoch, debits, batchSize),
    };
  }
  return {
    format: EPOCH_FILE_FORMAT,
    epoch: options.epoch,
    ...domain,
    decimals: TOKEN_DECIMALS,
    root: tree.root,
    total: total.toString(),
    cumulativeTotal: cumulativeTotal.toString(),
    leaves,
    debits,
    funding,
    tree: standardTreeDump(domain, leaves, tree),
  };
}

function aggregateDebits(debits: readonly EpochDebitInput[]): EpochDebit[] {
  const byAccount = new Map<string, bigint>();
  for (const d of debits) {
    const account = normaliseAddress(d.account, 'debit');
    if (typeof d.amount !== 'bigint' || d.amount <= 0n) {
      throw new RewardsError('INVALID_CREDIT', `debit for ${account}: amount must be a positive bigint`);
    }
    byAccount.set(account, (byAccount.get(account) ?? 0n) + d.amount);
  }
  return [...byAccount.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([account, amount]) => ({ account, amount: amount.toString() }));
}

/** The Merkle tree of a file's leaves (leaf `i` of the tree is `leaves[i]`), in its domain. */
export function epochTree(file: LeafDomain & { readonly leaves: readonly EpochLeaf[] }): MerkleTree {
  const hash = leafHasher(file);
  return buildMerkleTree(file.leaves.map((l) => hash(l.index, l.account, BigInt(l.cumulativeAmount))));
}

/** The `standard-v1` dump of `tree`, built from `leaves` in `domain`; null without leaves. */
export function standardTreeDump(
  domain: LeafDomain,
  leaves: readonly EpochLeaf[],
  tree: MerkleTree,
): StandardTreeDump | null {
  if (leaves.length === 0) return null;
  const chainId = String(domain.chainId);
  const distributor = domain.distributor.toLowerCase();
  return {
    format: 'standard-v1',
    leafEncoding: [...LEAF_ENCODING],
    tree: tree.nodes(),
    values: leaves.map((l, i) => ({
      value: [chainId, distributor, String(l.index), l.account, l.cumulativeAmount] as const,
      treeIndex: tree.treeIndex(i),
    })),
  };
}

/** Each provider's position after the epoch of `file`: the `previousCumulative` of the next close. */
export function cumulativeFromEpochFile(file: EpochFile): Map<string, CumulativeEntry> {
  return new Map(
    file.leaves.map((l) => [l.account, { index: l.index, cumulativeAmount: BigInt(l.cumulativeAmount) }]),
  );
}

/** The canonical JSON of the file: the exact bytes that are hashed, and the form to publish. */
export function serializeEpochFile(file: EpochFile): string {
  return canonicalJson(file);
}

/** keccak256 of the canonical JSON: what is posted on chain as the epoch's file hash. */
export function epochFileHash(file: EpochFile): string {
  return keccak256Hex(serializeEpochFile(file));
}

const DECIMAL = /^(0|[1-9]\d*)$/;
const BYTES32 = /^0x[0-9a-f]{64}$/;
const decimalString = z.string().regex(DECIMAL, 'a decimal integer string');
const address = z.string().regex(LOWER_CASE_ADDRESS_PATTERN, 'a lower-case 0x address');
const bytes32 = z.string().regex(BYTES32, 'a lower-case 0x bytes32');

/** The file's schema: what `parseEpochFile` accepts (exported for the spec that checks its fast path). */
export const EpochFileSchema = z.strictObject({
  format: z.literal(EPOCH_FILE_FORMAT),
  epoch: z.number().int().positive(),
  chainId: z.number().int().positive(),
  distributor: address,
  decimals: z.number().int().nonnegative(),
  root: bytes32,
  total: decimalString,
  cumulativeTotal: decimalString,
  leaves: z.array(
    z.strictObject({
      index: z.number().int().nonnegative(),
      account: address,
      cumulativeAmount: decimalString,
      previousAmount: decimalString,
      epochAmount: decimalString,
      receipts: z.array(z.strictObject({ id: z.string().min(1), amount: decimalString })),
    }),
  ),
  debits: z.array(z.strictObject({ account: address, amount: decimalString })),
  funding: z
    .strictObject({ escrow: address, batchSize: z.number().int().positive(), root: bytes32 })
    .nullable(),
  tree: z
    .strictObject({
      format: z.literal('standard-v1'),
      leafEncoding: z.array(z.string()),
      tree: z.array(bytes32),
      values: z.array(
        z.strictObject({
          value: z.tuple([decimalString, address, decimalString, address, decimalString]),
          treeIndex: z.number().int().nonnegative(),
        }),
      ),
    })
    .nullable(),
});

/** `value` is a plain object with exactly `keys` own enumerable keys (no more, no others). */
function hasExactKeys(value: unknown, keys: number): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  let n = 0;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) return false;
    n++;
  }
  return n === keys;
}

const isDecimal = (v: unknown): boolean => typeof v === 'string' && DECIMAL.test(v);
const isAddress = (v: unknown): boolean => typeof v === 'string' && LOWER_CASE_ADDRESS_PATTERN.test(v);
const isBytes32 = (v: unknown): boolean => typeof v === 'string' && v.length === 66 && BYTES32.test(v);
const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * The schema's checks, written out by hand for the common case, a well-formed file: about 5× faster
 * than zod on a 100,000-leaf file, since nothing is copied. It may refuse what the schema accepts (the
 * schema then decides, and names the field) but never accepts what the schema refuses
 * (`epoch-file.spec.ts` checks the two agree on mutated files).
 */
export function isWellFormedEpochFile(v: unknown): v is EpochFile {
  if (!hasExactKeys(v, 12)) return false;
  if (
    v.format !== EPOCH_FILE_FORMAT ||
    !isCount(v.epoch) ||
    v.epoch === 0 ||
    !isCount(v.chainId) ||
    v.chainId === 0 ||
    !isAddress(v.distributor) ||
    !isCount(v.decimals) ||
    !isBytes32(v.root) ||
    !isDecimal(v.total) ||
    !isDecimal(v.cumulativeTotal) ||
    !Array.isArray(v.leaves) ||
    !Array.isArray(v.debits)
  ) {
    return false;
  }
  for (const leaf of v.leaves as unknown[]) {
    if (
      !hasExactKeys(leaf, 6) ||
      !isCount(leaf.index) ||
      !isAddress(leaf.account) ||
      !isDecimal(leaf.cumulativeAmount) ||
      !isDecimal(leaf.previousAmount) ||
      !isDecimal(leaf.epochAmount) ||
      !Array.isArray(leaf.receipts)
    ) {
      return false;
    }
    for (const receipt of leaf.receipts as unknown[]) {
      if (
        !hasExactKeys(receipt, 2) ||
        typeof receipt.id !== 'string' ||
        receipt.id.length === 0 ||
        !isDecimal(receipt.amount)
      ) {
        return false;
      }
    }
  }
  for (const debit of v.debits as unknown[]) {
    if (!hasExactKeys(debit, 2) || !isAddress(debit.account) || !isDecimal(debit.amount)) return false;
  }
  const funding: unknown = v.funding;
  if (
    funding !== null &&
    (!hasExactKeys(funding, 3) ||
      !isAddress(funding.escrow) ||
      !isCount(funding.batchSize) ||
      funding.batchSize === 0 ||
      !isBytes32(funding.root))
  ) {
    return false;
  }
  return v.tree === null || isWellFormedTreeDump(v.tree);
}

/**
 * The part of `isWellFormedEpochFile` for the `tree` dump (not null): what the audit's worker checks
 * of the half of the file it parses (`tree-dump-check.ts`).
 */
export function isWellFormedTreeDump(tree: unknown): tree is StandardTreeDump {
  if (
    !hasExactKeys(tree, 4) ||
    tree.format !== 'standard-v1' ||
    !Array.isArray(tree.leafEncoding) ||
    !Array.isArray(tree.tree) ||
    !Array.isArray(tree.values)
  ) {
    return false;
  }
  for (const e of tree.leafEncoding as unknown[]) if (typeof e !== 'string') return false;
  for (const node of tree.tree as unknown[]) if (!isBytes32(node)) return false;
  for (const entry of tree.values as unknown[]) {
    if (!hasExactKeys(entry, 2) || !isCount(entry.treeIndex)) return false;
    const value = entry.value;
    if (
      !Array.isArray(value) ||
      value.length !== 5 ||
      !isDecimal(value[0]) ||
      !isAddress(value[1]) ||
      !isDecimal(value[2]) ||
      !isAddress(value[3]) ||
      !isDecimal(value[4])
    ) {
      return false;
    }
  }
  return true;
}

/** Parses an epoch file (JSON text or a parsed value); throws `INVALID_EPOCH_FILE` naming the field. */
export function parseEpochFile(input: string | unknown): EpochFile {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (err) {
      throw new RewardsError('INVALID_EPOCH_FILE', `epoch file is not JSON: ${(err as Error).message}`);
    }
  }
  if (isWellFormedEpochFile(value)) return value;
  const parsed = EpochFileSchema.safeParse(value);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new RewardsError(
      'INVALID_EPOCH_FILE',
      `epoch file: ${formatIssuePath(first.path)}: ${first.message}`,
    );
  }
  return parsed.data as EpochFile;
}
