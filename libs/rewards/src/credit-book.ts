import type { EpochCredit, EpochDebitInput } from './epoch-file.js';
import { RewardsError } from './errors.js';

interface ProviderTally {
  receipts: { id: string; amount: bigint }[];
}

/**
 * The in-memory ledger of one open epoch: every paid job credits its provider and debits its
 * developer, in integer base units. Closing the epoch hands `credits()` and `debits()` to
 * `closeEpoch`. A receipt id is accepted once.
 */
export class EpochCreditBook {
  private readonly providers = new Map<string, ProviderTally>();
  private readonly developers = new Map<string, bigint>();
  private readonly receipts = new Set<string>();
  private totalAmount = 0n;

  /** Records that `developer` paid `provider` `amount` base units for receipt `receiptId`. */
  credit(provider: string, developer: string, amount: bigint, receiptId: string): void {
    if (amount <= 0n)
      throw new RewardsError('INVALID_CREDIT', `receipt ${receiptId}: amount must be positive`);
    if (this.receipts.has(receiptId))
      throw new RewardsError('DUPLICATE_RECEIPT', `receipt ${receiptId} credited twice`);
    this.receipts.add(receiptId);
    const p = provider.toLowerCase();
    let tally = this.providers.get(p);
    if (tally === undefined) {
      tally = { receipts: [] };
      this.providers.set(p, tally);
    }
    tally.receipts.push({ id: receiptId, amount });
    const d = developer.toLowerCase();
    this.developers.set(d, (this.developers.get(d) ?? 0n) + amount);
    this.totalAmount += amount;
  }

  /** Number of receipts credited. */
  get size(): number {
    return this.receipts.size;
  }

  /** Σ credits. */
  get total(): bigint {
    return this.totalAmount;
  }

  /** One credit per provider. */
  credits(): EpochCredit[] {
    return [...this.providers].map(([provider, t]) => ({ provider, receipts: t.receipts }));
  }

  /** One debit per developer; they add up to `total`. */
  debits(): EpochDebitInput[] {
    return [...this.developers].map(([account, amount]) => ({ account, amount }));
  }
}
