/**
 * Trust tiers. A provider is on probation until it has PROBATION_VERIFIED_RESULTS results that a
 * check confirmed (agreement with another operator, a canary's known answer, the coordinator's
 * reference), and again for PROBATION_PENALTY_WINDOW_MS after a verification penalty. A probation
 * provider's single-copy result is held until a check passes; a trusted provider's results are
 * delivered at once and spot-checked by canaries. See docs/verification.md "Trust tiers".
 */
import type { ReputationKind } from '../reputation/reputation.js';
import type { VerificationMethod } from '../pricing/policy.js';

/** Checked results a provider needs to leave probation. */
export const PROBATION_VERIFIED_RESULTS = 10;
/** How long a verification penalty puts a provider back on probation. */
export const PROBATION_PENALTY_WINDOW_MS = 24 * 3_600_000;
/** How long a provider's tier is cached (a penalty recorded in this process drops it at once). */
export const TIER_CACHE_TTL_MS = 5_000;

/** Reputation events that count as a checked result. */
export const VERIFIED_RESULT_KINDS: readonly ReputationKind[] = ['verified_pass', 'won_tiebreak'];
/**
 * Reputation events that put a provider back on probation: wrong results, a lifted ban, and an
 * input-fault claim a verified result disproved (its agent lies or is broken: its results are
 * checked until the window passes).
 */
export const PROBATION_PENALTY_KINDS: readonly ReputationKind[] = [
  'failed_canary',
  'lost_tiebreak',
  'failed_reverification',
  'failed_check',
  'failed_sanity',
  'disproved_input_fault',
  'ban_lifted',
];

export type TrustTier = 'probation' | 'trusted';

export interface TrustRecord {
  /** Checked results (capped at PROBATION_VERIFIED_RESULTS by the query). */
  verifiedResults: number;
  /** The latest verification penalty, or null. */
  lastPenaltyAt: Date | null;
}

export interface TierDecision {
  tier: TrustTier;
  reason: string;
}

export function trustTier(record: TrustRecord, now: number = Date.now()): TierDecision {
  if (record.lastPenaltyAt && now - record.lastPenaltyAt.getTime() < PROBATION_PENALTY_WINDOW_MS) {
    return {
      tier: 'probation',
      reason: `penalised at ${record.lastPenaltyAt.toISOString()} (probation for ${PROBATION_PENALTY_WINDOW_MS / 3_600_000} h after a penalty)`,
    };
  }
  if (record.verifiedResults < PROBATION_VERIFIED_RESULTS) {
    return {
      tier: 'probation',
      reason: `${record.verifiedResults} of ${PROBATION_VERIFIED_RESULTS} checked results`,
    };
  }
  return { tier: 'trusted', reason: `${record.verifiedResults}+ checked results, no recent penalty` };
}

/**
 * Whether a single-copy result must pass a check before the developer sees it: always for a
 * provider on probation, and for every provider when the job asked for `verified`.
 */
export function needsCheck(tier: TrustTier, requireVerified: boolean): boolean {
  return tier === 'probation' || requireVerified;
}

/** How an unchecked result of a trusted provider is covered: canaries, or nothing at rate 0. */
export function uncheckedMethod(canaryRate: number): VerificationMethod {
  return canaryRate > 0 ? 'spot-check' : 'none';
}

/**
 * The payments of a single-copy job whose result a provider of another operator confirmed: the
 * checker is paid its price in full first, the checked provider gets what the reservation still
 * holds up to its own price (a provider on probation pays for its own check unless the developer
 * reserved a check run by asking for `verified`).
 */
export function checkedPayments<P extends { peerId: string; amount: bigint }>(
  cost: bigint,
  checked: P,
  checker: P,
): P[] {
  const toChecker = checker.amount < cost ? checker.amount : cost;
  const left = cost - toChecker;
  const toChecked = checked.amount < left ? checked.amount : left;
  return [
    { ...checked, amount: toChecked },
    { ...checker, amount: toChecker },
  ].filter((p) => p.amount > 0n);
}
