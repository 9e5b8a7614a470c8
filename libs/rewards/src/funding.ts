import type { EpochDebit } from './epoch-file.js';

/** One escrow `debit` transaction of an epoch: its batch number and the accounts it debits. */
export interface FundingBatch {
  /** The escrow refuses a (epoch, index) twice, so a batch is debited at most once. */
  readonly index: number;
  /** Lower-case 0x addresses, in the epoch file's order (sorted). */
  readonly accounts: readonly string[];
  /** Base units, one per account. */
  readonly amounts: readonly bigint[];
}

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
