import { LedgerAccounts } from './accounts.js';
import { splitPayment, type LedgerEntryKind, type LedgerPosting } from './ledger-accounts.js';

/**
 * Every ledger transaction the coordinator posts, as pure functions from what happened to the
 * postings: who is debited, who is credited, by how much. Each returns postings that sum to zero;
 * the writer (LedgerRepository) checks that again before it stores them.
 */

/** One ledger transaction, before it is posted. */
export interface LedgerDraft {
  kind: LedgerEntryKind;
  postings: LedgerPosting[];
}

/** What the ledger needs of a job: whose reservation, and how large. */
export interface ReservedJob {
  id: string;
  accountId: string;
  cost: bigint;
}

/**
 * What a job's state change does to its reservation.
 * - `release` returns the whole reservation to the developer.
 * - `settle` pays providers from the reservation, takes the fee and returns the rest. `hold` credits
 *   each provider's share to its held account and the fee on it to its held-fee account: both vest
 *   together (see verification/vesting.service.ts) or go back to the developer together, so the fee
 *   is only ever charged for work that is paid.
 */
export type JobLedgerEffect =
  | { kind: 'none' }
  | { kind: 'release' }
  | {
      kind: 'settle';
      payments: SettlePayment[];
      /** The fee of payments that carry none of their own. */
      feeBps: number;
      hold?: boolean;
    };

/** One provider's payment for a job; `feeBps` is the fee signed into the offer it accepted. */
export interface SettlePayment {
  peerId: string;
  amount: bigint;
  feeBps?: number;
}

/** What an attempt's provider is paid: its offered price for the job's work, at its offered fee. */
export function paymentOf(
  attempt: { peerId: string; pricePerUnit: bigint; feeBps?: number },
  job: { workUnits: bigint },
): SettlePayment {
  return {
    peerId: attempt.peerId,
    amount: attempt.pricePerUnit * job.workUnits,
    ...(attempt.feeBps === undefined ? {} : { feeBps: attempt.feeBps }),
  };
}

/** A job's cost moved from the developer's available balance to its reserved one. */
export function reservePostings(accountId: string, cost: bigint): LedgerDraft {
  if (cost < 0n) throw new Error('a reservation cannot be negative');
  return {
    kind: 'reserve',
    postings: [
      { account: LedgerAccounts.available(accountId), amount: -cost },
      { account: LedgerAccounts.reserved(accountId), amount: cost },
    ],
  };
}

/** The ledger transaction a job's effect posts, or null for none. */
export function jobEffectPostings(job: ReservedJob, effect: JobLedgerEffect): LedgerDraft | null {
  if (effect.kind === 'none') return null;
  const reserved = LedgerAccounts.reserved(job.accountId);
  const available = LedgerAccounts.available(job.accountId);
  if (effect.kind === 'release') {
    return {
      kind: 'release',
      postings: [
        { account: reserved, amount: -job.cost },
        { account: available, amount: job.cost },
      ],
    };
  }
  for (const payment of effect.payments) {
    if (payment.amount < 0n) throw new Error(`job ${job.id} would pay ${payment.amount}, a negative amount`);
  }
  const paid = effect.payments.reduce((sum, p) => sum + p.amount, 0n);
  if (paid > job.cost)
    throw new Error(`job ${job.id} would pay ${paid}, more than its reservation ${job.cost}`);
  const postings: LedgerPosting[] = [{ account: reserved, amount: -job.cost }];
  let fees = 0n;
  for (const payment of effect.payments) {
    const split = splitPayment(payment.amount, payment.feeBps ?? effect.feeBps);
    if (effect.hold) {
      postings.push({ account: LedgerAccounts.held(payment.peerId), amount: split.provider });
      if (split.fee > 0n)
        postings.push({ account: LedgerAccounts.heldFee(payment.peerId), amount: split.fee });
    } else {
      postings.push({ account: LedgerAccounts.providerEarned(payment.peerId), amount: split.provider });
      fees += split.fee;
    }
  }
  if (fees > 0n) postings.push({ account: LedgerAccounts.fees, amount: fees });
  if (job.cost - paid > 0n) postings.push({ account: available, amount: job.cost - paid });
  return { kind: 'settle', postings };
}

/**
 * A held credit vests: `credit` moves from the provider's held account to its earned one, and the fee
 * held on it to the platform's fees. In the ledger's lock order (fees first, then provider rows).
 */
export function vestPostings(peerId: string, credit: bigint, fee: bigint): LedgerDraft {
  if (credit < 0n || fee < 0n) throw new Error('a held credit and its fee cannot be negative');
  const postings: LedgerPosting[] = [];
  if (fee > 0n) postings.push({ account: LedgerAccounts.fees, amount: fee });
  postings.push(
    { account: LedgerAccounts.held(peerId), amount: -credit },
    { account: LedgerAccounts.providerEarned(peerId), amount: credit },
  );
  if (fee > 0n) postings.push({ account: LedgerAccounts.heldFee(peerId), amount: -fee });
  return { kind: 'settle', postings };
}

/** A held credit is taken back: it and the fee held on it return to the developer's available balance. */
export function reversePostings(accountId: string, peerId: string, credit: bigint, fee: bigint): LedgerDraft {
  if (credit < 0n || fee < 0n) throw new Error('a held credit and its fee cannot be negative');
  const postings: LedgerPosting[] = [
    { account: LedgerAccounts.available(accountId), amount: credit + fee },
    { account: LedgerAccounts.held(peerId), amount: -credit },
  ];
  if (fee > 0n) postings.push({ account: LedgerAccounts.heldFee(peerId), amount: -fee });
  return { kind: 'release', postings };
}

/**
 * An epoch closes: each peer's earned credits and the platform's fees are swept to the settled
 * account of the address they are paid to. Balanced when the credits are exactly what is swept.
 */
export function epochSweepPostings(
  epoch: number,
  sweep: { byPeer: ReadonlyMap<string, { amount: bigint }>; fees: bigint },
  credits: readonly { provider: string; amount: bigint }[],
): LedgerDraft {
  const postings: LedgerPosting[] = [];
  for (const [peer, p] of sweep.byPeer)
    postings.push({ account: LedgerAccounts.providerEarned(peer), amount: -p.amount });
  if (sweep.fees > 0n) postings.push({ account: LedgerAccounts.fees, amount: -sweep.fees });
  for (const c of credits)
    postings.push({ account: LedgerAccounts.settled(c.provider, epoch), amount: c.amount });
  return { kind: 'epoch', postings };
}

/** A deposit into the escrow on chain credits the developer's available balance. */
export function depositPostings(accountId: string, amount: bigint): LedgerDraft {
  if (amount < 0n) throw new Error('a deposit cannot be negative');
  return {
    kind: 'deposit',
    postings: [
      { account: LedgerAccounts.escrow, amount: -amount },
      { account: LedgerAccounts.available(accountId), amount },
    ],
  };
}

/**
 * A withdrawal from the escrow on chain: what left it comes off the developer's available balance
 * (`available`, as locked), and what exceeds that is booked to the escrow shortfall.
 */
export function withdrawalPostings(
  accountId: string,
  amount: bigint,
  available: bigint,
): LedgerDraft & { shortfall: bigint } {
  if (amount < 0n) throw new Error('a withdrawal cannot be negative');
  const fromAvailable = available < amount ? (available > 0n ? available : 0n) : amount;
  const shortfall = amount - fromAvailable;
  const postings: LedgerPosting[] = [{ account: LedgerAccounts.escrow, amount }];
  if (shortfall > 0n) postings.push({ account: LedgerAccounts.shortfall, amount: -shortfall });
  if (fromAvailable > 0n)
    postings.push({ account: LedgerAccounts.available(accountId), amount: -fromAvailable });
  return { kind: 'withdrawal', postings, shortfall };
}

/** Off-chain play money (dev mode only): minted into the developer's available balance. */
export function mintPostings(accountId: string, amount: bigint): LedgerDraft {
  if (amount < 0n) throw new Error('a mint cannot be negative');
  return {
    kind: 'mint',
    postings: [
      { account: LedgerAccounts.mint, amount: -amount },
      { account: LedgerAccounts.available(accountId), amount },
    ],
  };
}
