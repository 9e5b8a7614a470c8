import type { AccountKind } from './accounts.js';

/**
 * What a job cost its developer, read back from the ledger (the truth: nothing here is recomputed from
 * the spec or the price). The inputs are the job's ledger entries summed per account kind and payee
 * (LedgerRepository.jobEntrySums); the figures follow from postings.ts:
 *
 * - a reservation moves the cost from `available` to `reserved` (kind `reserve`): `reserved`;
 * - a settlement takes it off `reserved`, credits each paid provider (`held`, or `earned` without a
 *   hold) and the fee (`held-fee`, or `fees`), and returns the rest to `available`;
 * - vesting moves `held` → `earned` and `held-fee` → `fees` (no change to what was charged);
 * - a reversal (a convicted provider's credit taken back) returns `held` + `held-fee` to `available`;
 * - a release (cancel, failure, expiry) returns the whole reservation.
 *
 * So what the developer was charged is what its two balances lost over the job's entries, and it
 * equals what the providers and the platform fee still hold of it: charged = work + redundancy + fee.
 */
export interface JobCharges {
  /** Base units reserved at submission (the `reserve` entry). */
  reserved: bigint;
  /** Base units the developer paid for the job, net of refunds: work + redundancy + canary + fee. */
  charged: bigint;
  /** The provider share of the first run paid (the first provider credited). */
  work: bigint;
  /** The provider shares of every further run paid: redundant copies and tie-breaks. */
  redundancy: bigint;
  /**
   * What the developer paid for canaries: always 0, since the platform account pays its canary jobs
   * (see `verification.cost.canary` for what this job's canaries cost the platform).
   */
  canary: bigint;
  /** The platform fee taken out of the providers' payments. */
  fee: bigint;
}

/** One job's ledger entries on one account kind (and provider peer), summed. */
export interface JobEntrySum {
  jobId: string;
  accountKind: AccountKind | string | null;
  /** The provider peer of `held`, `held-fee` and `earned` entries; null otherwise. */
  peerId: string | null;
  /** Sum of the entries' signed amounts. */
  net: bigint;
  /** Sum of the positive amounts of its `reserve` entries. */
  reservedIn: bigint;
  /** The smallest entry id of the group: the order in which providers were first credited. */
  firstId: bigint;
}

/** A job the ledger has no entries of. */
export const NO_CHARGES: Readonly<JobCharges> = {
  reserved: 0n,
  charged: 0n,
  work: 0n,
  redundancy: 0n,
  canary: 0n,
  fee: 0n,
};

/** What each of these jobs cost, from their summed ledger entries (a job without entries: all 0). */
export function chargesByJob(
  jobIds: readonly string[],
  sums: readonly JobEntrySum[],
): Map<string, JobCharges> {
  const byJob = new Map<string, JobEntrySum[]>(jobIds.map((id) => [id, []]));
  for (const s of sums) byJob.get(s.jobId)?.push(s);
  return new Map([...byJob].map(([id, rows]) => [id, jobChargesOf(id, rows)]));
}

/** What a job cost, from its summed ledger entries (rows of other jobs are ignored). */
export function jobChargesOf(jobId: string, sums: readonly JobEntrySum[]): JobCharges {
  let reserved = 0n;
  let developer = 0n;
  let fee = 0n;
  const providers = new Map<string, { net: bigint; firstId: bigint }>();
  for (const s of sums) {
    if (s.jobId !== jobId) continue;
    switch (s.accountKind) {
      case 'reserved':
        reserved += s.reservedIn;
        developer += s.net;
        break;
      case 'available':
        developer += s.net;
        break;
      case 'held-fee':
      case 'fees':
        fee += s.net;
        break;
      case 'held':
      case 'earned': {
        const peer = s.peerId ?? '';
        const p = providers.get(peer) ?? { net: 0n, firstId: s.firstId };
        p.net += s.net;
        if (s.firstId < p.firstId) p.firstId = s.firstId;
        providers.set(peer, p);
        break;
      }
      default:
        break;
    }
  }
  const paid = [...providers.values()]
    .filter((p) => p.net !== 0n)
    .sort((a, b) => (a.firstId < b.firstId ? -1 : a.firstId > b.firstId ? 1 : 0));
  const work = paid[0]?.net ?? 0n;
  const redundancy = paid.slice(1).reduce((sum, p) => sum + p.net, 0n);
  return { ...NO_CHARGES, reserved, charged: -developer, work, redundancy, fee };
}

/** What a job just submitted cost: its reservation, nothing charged yet (no ledger read needed). */
export function chargesOfNewJob(cost: bigint): JobCharges {
  return { ...NO_CHARGES, reserved: cost };
}
