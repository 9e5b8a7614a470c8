import {
  ADDRESS_PATTERN,
  LOWER_CASE_ADDRESS_PATTERN,
  canonicalJson,
  formatIssuePath,
} from '@gpumesh/protocol';
import { z } from 'zod';

import { MAX_CUMULATIVE_AMOUNT, TOKEN_DECIMALS } from './amounts.js';
import { RewardsError } from './errors.js';
import { keccak256Hex } from './keccak.js';
import { LEAF_ENCODING, leafHashBytes } from './leaf.js';
import { buildMerkleTree, type MerkleTree } from './merkle.js';

export const EPOCH_FILE_FORMAT = 'gpumesh-epoch/1';

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
  /** Sorted ids of the receipts credited this epoch (empty when `epochAmount` is 0). */
  readonly receiptIds: readonly string[];
}

/** What a developer's escrow is debited for the epoch. */
export interface EpochDebit {
  /** Lower-case 0x address (the SIWE account that deposited). */
  readonly account: string;
  /** Decimal base units. */
  readonly amount: string;
}

/**
 * Everything needed to recompute an epoch's root: every leaf (all providers ever paid, in index
 * order) with the receipts behind this epoch's part, and the escrow debits that fund it. Its
 * keccak256 over the canonical JSON is posted on chain beside the root.
 */
export interface EpochFile {
  readonly format: typeof EPOCH_FILE_FORMAT;
  readonly epoch: number;
  readonly decimals: number;
  readonly leafEncoding: string;
  readonly root: string;
  /** Σ epochAmount: what this epoch adds, posted on chain as the epoch total. */
  readonly total: string;
  /** Σ cumulativeAmount. */
  readonly cumulativeTotal: string;
  readonly leaves: readonly EpochLeaf[];
  /** Sorted by account; when present their sum equals `total`. */
  readonly debits: readonly EpochDebit[];
}

/** A provider's position after an epoch: its slot and cumulative earnings. */
export interface CumulativeEntry {
  readonly index: number;
  readonly cumulativeAmount: bigint;
}

/** Credits for one provider (several credits for the same provider add up). */
export interface EpochCredit {
  readonly provider: string;
  readonly amount: bigint;
  readonly receiptIds: readonly string[];
}

/** A developer's spend in the epoch. */
export interface EpochDebitInput {
  readonly account: string;
  readonly amount: bigint;
}

export interface CloseEpochOptions {
  readonly epoch: number;
  /** Escrow debits; when given they must add up to the epoch's credits. */
  readonly debits?: readonly EpochDebitInput[];
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
  const added = new Map<string, { amount: bigint; receiptIds: string[] }>();
  const seenReceipts = new Set<string>();
  for (const credit of credits) {
    const provider = normaliseAddress(credit.provider, 'credit');
    if (typeof credit.amount !== 'bigint' || credit.amount <= 0n) {
      throw new RewardsError('INVALID_CREDIT', `credit for ${provider}: amount must be a positive bigint`);
    }
    let entry = added.get(provider);
    if (!entry) {
      entry = { amount: 0n, receiptIds: [] };
      added.set(provider, entry);
    }
    entry.amount += credit.amount;
    for (const id of credit.receiptIds) {
      if (seenReceipts.has(id)) throw new RewardsError('DUPLICATE_RECEIPT', `receipt ${id} credited twice`);
      seenReceipts.add(id);
      entry.receiptIds.push(id);
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
      receiptIds: credit ? [...credit.receiptIds].sort() : [],
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
  return {
    format: EPOCH_FILE_FORMAT,
    epoch: options.epoch,
    decimals: TOKEN_DECIMALS,
    leafEncoding: LEAF_ENCODING,
    root: epochTree(leaves).root,
    total: total.toString(),
    cumulativeTotal: cumulativeTotal.toString(),
    leaves,
    debits,
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

/** The Merkle tree of `leaves`, in the order given (leaf `i` of the tree is `leaves[i]`). */
export function epochTree(leaves: readonly EpochLeaf[]): MerkleTree {
  return buildMerkleTree(
    leaves.map((l) =>
      leafHashBytes({ index: l.index, account: l.account, cumulativeAmount: BigInt(l.cumulativeAmount) }),
    ),
  );
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

const decimalString = z.string().regex(/^(0|[1-9]\d*)$/, 'a decimal integer string');
const address = z.string().regex(LOWER_CASE_ADDRESS_PATTERN, 'a lower-case 0x address');

const EpochFileSchema = z.strictObject({
  format: z.literal(EPOCH_FILE_FORMAT),
  epoch: z.number().int().positive(),
  decimals: z.number().int().nonnegative(),
  leafEncoding: z.string(),
  root: z.string().regex(/^0x[0-9a-f]{64}$/, 'a lower-case 0x bytes32'),
  total: decimalString,
  cumulativeTotal: decimalString,
  leaves: z.array(
    z.strictObject({
      index: z.number().int().nonnegative(),
      account: address,
      cumulativeAmount: decimalString,
      previousAmount: decimalString,
      epochAmount: decimalString,
      receiptIds: z.array(z.string()),
    }),
  ),
  debits: z.array(z.strictObject({ account: address, amount: decimalString })),
});

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
