import type { Job } from '#prisma';
import { hashOutputs } from '@gpumesh/protocol';
import type { TransitionRequest } from '../jobs/jobs.repository.js';
import { paymentOf } from '../ledger/postings.js';
import type { SingleJudgement } from './adjudicator.service.js';
import { runningStep, type AttemptOutcome } from './attempt-runner.service.js';
import type { Adjudication } from './adjudicator.service.js';
import { claimDisprovedNote, type InputFaultClaim } from './input-faults.js';

/** The platform's cut of payments without an offered fee, and whether credits vest. */
export interface SettleTerms {
  feeBps: number;
  hold: boolean;
}

/**
 * A single-copy job's completion, in one commit: its attempt SUCCEEDED, the events (the RUNNING
 * move folded in when the result beat the acceptance's record; the input-fault claims its verified
 * result disproved), the result and the payment (the checker's too when a check run took place).
 */
export function singleCompletion(
  job: Job,
  outcome: AttemptOutcome,
  { check }: Extract<SingleJudgement, { kind: 'deliver' }>,
  terms: SettleTerms,
  disproved: readonly InputFaultClaim[] = [],
): TransitionRequest {
  const outputs = outcome.outputs ?? [];
  const verifying = { state: 'VERIFYING' as const, eventType: 'job.verifying', eventData: { results: 1 } };
  const { acceptedAt } = outcome;
  const folded = acceptedAt !== undefined;
  return {
    jobId: job.id,
    from: folded ? ['DISPATCHED'] : ['RUNNING'],
    notes: [
      ...(outcome.succeeded ? [outcome.succeeded] : []),
      ...disproved.map((c) => claimDisprovedNote(c, [outcome.peerId])),
    ],
    attempt: {
      id: outcome.attempt.id,
      to: 'SUCCEEDED',
      receipt: outcome.receipt,
      outputHash: outcome.outputHash,
      startedAt: folded ? new Date(acceptedAt) : undefined,
    },
    via: folded ? [runningStep(outcome.attempt, outcome.peerId), verifying] : verifying,
    to: 'COMPLETED',
    eventType: 'job.completed',
    eventData: { providers: [outcome.peerId], ...(check ? { verification: check.outcome } : {}) },
    effect: {
      kind: 'settle',
      payments: check?.payments ?? [paymentOf(outcome, job)],
      ...terms,
    },
    patch: {
      result: { outputs, ...(check ? { verification: check.outcome } : {}) },
      resultHash: hashOutputs(outputs),
    },
  };
}

/**
 * A redundant job's completion with its judged winners' result; each winner is paid its price. The
 * input-fault claims the verified result disproved are recorded with it.
 */
export function verifiedCompletion(
  job: Job,
  { verdict, tiebreak }: Adjudication,
  winners: AttemptOutcome[],
  terms: SettleTerms,
  disproved: readonly InputFaultClaim[] = [],
): TransitionRequest {
  const outputs = winners[0]?.outputs ?? [];
  const source = verdict.basis.source;
  const reference = source === 'agreement' || source === 'none' ? null : source;
  const ranBy = winners.map((o) => o.peerId);
  return {
    jobId: job.id,
    from: ['VERIFYING'],
    notes: disproved.map((c) => claimDisprovedNote(c, ranBy)),
    to: 'COMPLETED',
    eventType: 'job.completed',
    eventData: {
      providers: ranBy,
      verification: {
        results: verdict.results,
        disagreed: verdict.disagreed,
        tiebreak: tiebreak ?? null,
        reference: reference ?? (job.canary ? 'canary' : 'providers'),
        rejected: verdict.losers.map((o) => o.peerId),
      },
    },
    effect: {
      kind: 'settle',
      payments: winners.map((o) => paymentOf(o, job)),
      ...terms,
    },
    patch: {
      result: {
        outputs,
        verification: { method: reference === 'coordinator' ? 'reference' : 'redundant', verified: true },
      },
      resultHash: hashOutputs(outputs),
    },
  };
}

/**
 * Whether a completed job's stored result was verified: a canary's by its known answer, any other's
 * as its completion recorded (`result.verification.verified`: agreement, a reference, a passed check).
 */
export function verifiedResult(job: Pick<Job, 'state' | 'canary' | 'result'>): boolean {
  if (job.state !== 'COMPLETED') return false;
  if (job.canary) return true;
  const result = job.result as { verification?: { verified?: unknown } } | null;
  return result?.verification?.verified === true;
}
