/**
 * Provider reputation: a score in [0, 1] that starts at the neutral 0.5, moves by the ONE table
 * below on each verification outcome, completion or failure, and decays back toward 0.5 with a
 * half-life (old behaviour counts less than new). libs/scheduler weighs it in placement.
 */

/** The neutral score of a new provider, and where every score decays to. */
export const NEUTRAL_REPUTATION = 0.5;
/** At or above this score a provider is trusted: its jobs get the normal canary rate. */
export const TRUSTED_REPUTATION = 0.6;
/** The score an admin-lifted ban restores (below trusted: the provider is on probation again). */
export const REINSTATED_REPUTATION = 0.3;
/**
 * The most a disproved input-fault claim's penalty is multiplied by (see repeatWeight): a provider
 * that keeps calling good inputs bad reaches the bottom of the score in a few claims, and is never
 * banned for it (a ban is for wrong results).
 */
export const DISPROVED_CLAIM_MAX_WEIGHT = 6;
/** Slower than this many times the time its advertised GFLOP/s implies counts as slow ... */
export const SLOW_FACTOR = 4;
/** ... once the run also took longer than this (tiny jobs are dominated by fixed overheads). */
export const SLOW_GRACE_MS = 1_000;

export type ReputationKind =
  | 'verified_pass'
  | 'won_tiebreak'
  | 'completion'
  | 'failed_canary'
  | 'lost_tiebreak'
  | 'failed_reverification'
  | 'failed_check'
  | 'failed_sanity'
  | 'missed_deadline'
  | 'lost_attempt'
  | 'slow_vs_advertised'
  | 'overstated_capacity'
  | 'forged_receipt'
  | 'protocol_violation'
  | 'disproved_input_fault'
  | 'ban_lifted';

export interface ReputationRule {
  /** Added to the decayed score (then clamped to [0, 1]). */
  delta: number;
  /** Caught returning wrong results: the provider is banned and a slash is proposed. */
  ban: boolean;
  /** Sets the score to this value instead of adding `delta`. */
  setTo?: number;
  note: string;
}

/** Every penalty and reward in one place. */
export const REPUTATION_TABLE: Readonly<Record<ReputationKind, ReputationRule>> = {
  verified_pass: {
    delta: +0.02,
    ban: false,
    note: 'result agreed with other operators, a canary answer or the reference',
  },
  won_tiebreak: { delta: +0.03, ban: false, note: 'disagreed, and the tie-break proved it right' },
  completion: { delta: +0.005, ban: false, note: 'completed a job that ran without redundancy (unverified)' },
  failed_canary: { delta: -1, ban: true, note: 'wrong answer to a known-answer canary job' },
  lost_tiebreak: { delta: -1, ban: true, note: 'disagreed and lost the tie-break against a reference' },
  failed_reverification: {
    delta: -1,
    ban: true,
    note: 'a paid result was found wrong when re-verified after a ban',
  },
  failed_check: {
    delta: -1,
    ban: true,
    note: 'a result held for a check (probation, or a verified job) disagreed with the coordinator reference',
  },
  failed_sanity: {
    delta: -0.1,
    ban: false,
    note: 'returned junk no honest run produces (Inf from finite inputs, a wrong output shape)',
  },
  missed_deadline: {
    delta: -0.05,
    ban: false,
    note: 'accepted a job and did not answer before its deadline',
  },
  lost_attempt: {
    delta: -0.02,
    ban: false,
    note: 'lost an attempt: unreachable, did not serve the job protocol, disconnected or reset',
  },
  forged_receipt: {
    delta: -0.2,
    ban: false,
    note: 'sent a receipt that failed its signature, signer, job or output-hash checks',
  },
  protocol_violation: {
    delta: -0.1,
    ban: false,
    note: 'sent undecodable, out-of-order or oversized frames on the job protocol',
  },
  slow_vs_advertised: { delta: -0.01, ban: false, note: `ran over ${SLOW_FACTOR}x slower than advertised` },
  overstated_capacity: {
    delta: -0.2,
    ban: false,
    note: 'advertised far more GFLOP/s than a timed known-answer job measured (CAPACITY_OVERSTATED_FACTOR)',
  },
  disproved_input_fault: {
    delta: -0.05,
    ban: false,
    note: "said a job's input cannot run (an input fault) and another provider's verified result ran it; weighted by its earlier disproved claims (repeatWeight)",
  },
  ban_lifted: {
    delta: 0,
    setTo: REINSTATED_REPUTATION,
    ban: false,
    note: 'an admin reviewed and lifted the ban',
  },
};

/** The score `elapsedMs` after it was `score`: its distance from neutral halves every half-life. */
export function decayed(score: number, elapsedMs: number, halfLifeMs: number): number {
  if (elapsedMs <= 0) return score;
  return NEUTRAL_REPUTATION + (score - NEUTRAL_REPUTATION) * 2 ** (-elapsedMs / halfLifeMs);
}

/**
 * The new score after an event of `kind`, given the decayed current score; `weight` multiplies the
 * rule's delta (a repeated offence, see repeatWeight).
 */
export function applyRule(current: number, kind: ReputationKind, weight = 1): number {
  const rule = REPUTATION_TABLE[kind];
  const next = rule.setTo ?? current + rule.delta * weight;
  return Math.min(1, Math.max(0, next));
}

/**
 * What a disproved input-fault claim's penalty is multiplied by, given when the provider's earlier
 * disproved claims were recorded: 1 plus each earlier claim as much as the score still remembers it
 * (halved every half-life, like the score's own decay), at most DISPROVED_CLAIM_MAX_WEIGHT. One
 * honest mistake costs the base penalty once and fades; claims in a row cost more each time.
 */
export function repeatWeight(earlier: readonly Date[], now: number, halfLifeMs: number): number {
  let weight = 1;
  for (const at of earlier) weight += 2 ** (-Math.max(0, now - at.getTime()) / halfLifeMs);
  return Math.min(DISPROVED_CLAIM_MAX_WEIGHT, weight);
}

/** Whether a run of `runMs` is slow against the speed the provider advertised. */
export function isSlow(workUnits: bigint, gflops: number, runMs: number): boolean {
  if (!(gflops > 0) || runMs <= SLOW_GRACE_MS) return false;
  const expectedMs = Number(workUnits) / gflops; // 1 work unit = 1 MFLOP; gflops = MFLOP per ms
  return runMs > SLOW_FACTOR * expectedMs + SLOW_GRACE_MS;
}
