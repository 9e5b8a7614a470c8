// Account names: accounts.ts.

/**
 * The largest amount the ledger holds in one balance (PostgreSQL BIGINT). Base units are micro-tokens
 * (6 decimals, like USDC), so this is about 9.2 trillion tokens.
 */
export const MAX_LEDGER_AMOUNT = 2n ** 63n - 1n;

export type LedgerEntryKind =
  'mint' | 'reserve' | 'release' | 'settle' | 'fee' | 'deposit' | 'withdrawal' | 'epoch';

export interface LedgerPosting {
  account: string;
  /** Positive credits the account, negative debits it; base units. */
  amount: bigint;
}

/** Throws unless the postings of one ledger transaction sum to zero (double entry). */
export function assertBalanced(postings: readonly LedgerPosting[]): void {
  const sum = postings.reduce((acc, p) => acc + p.amount, 0n);
  if (sum !== 0n) throw new Error(`ledger transaction does not balance: sum is ${sum}`);
  if (postings.length < 2) throw new Error('a ledger transaction needs at least two postings');
}

/** The split of a completed job's payment between the provider(s) and the platform fee. */
export function splitPayment(gross: bigint, feeBps: number): { provider: bigint; fee: bigint } {
  if (gross < 0n) throw new Error('payment cannot be negative');
  const fee = (gross * BigInt(feeBps)) / 10_000n;
  return { provider: gross - fee, fee };
}
