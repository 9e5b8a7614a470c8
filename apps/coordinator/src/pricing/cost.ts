import type { VerificationPolicy } from '../settings/settings.js';

/** What a job costs, part by part (`POST /v1/jobs` reserves `total`; the dry run shows every part). */
export interface CostBreakdown {
  /** workUnits × maxPricePerUnit: one provider's work. */
  work: bigint;
  /** (k − 1) × work: the redundant runs. */
  redundancy: bigint;
  /**
   * ⌈work × k × canaryRate⌉: what the job's canaries cost. Funded from the platform fee (it moves
   * to the `system:canary` fund when the job settles), so it is shown but not added to `total`.
   */
  canary: bigint;
  /**
   * work, when `verified` is asked of a single-copy job: the check run on a provider of another
   * operator (returned when the coordinator's own recompute did the check instead).
   */
  check: bigint;
  /** What is reserved: work × k + check. */
  total: bigint;
}

const PPM = 1_000_000n;

/** Prices a job: its work units at its price per unit, run k times, plus the policy's check and canaries. */
export function costOf(workUnits: bigint, pricePerUnit: bigint, policy: VerificationPolicy): CostBreakdown {
  const work = workUnits * pricePerUnit;
  const k = BigInt(policy.k);
  const rate = BigInt(Math.round(policy.canaryRate * 1_000_000));
  const canary = (work * k * rate + PPM - 1n) / PPM;
  const check = policy.verified === true && policy.k === 1 ? work : 0n;
  return { work, redundancy: work * (k - 1n), canary, check, total: work * k + check };
}
