// When the providers' own errors end a job: a failure an agent classifies as the input's fault
// (INPUT_FAULT_ERROR_CODES in libs/protocol) fails the job only once providers of enough distinct
// operators reported one, so a lone lying provider cannot fail someone's job; and when the job then
// completes with a verified result, the claim was false and costs its provider (DisprovedClaims).
import { jobErrorFault } from '@gpumesh/protocol';
import { JobProtocolError } from '@gpumesh/p2p';
import { CLAIM_DISPROVED_EVENT, type DisprovedAttempt } from '../jobs/attempts.repository.js';
import type { JobError } from '../jobs/job-error.js';

/** Distinct operators (signing wallets) that must report an input fault before the job fails. */
export const INPUT_FAULT_OPERATORS = 2;

/** One attempt of the job that ended with an input fault. */
export interface InputFaultReport {
  providerId: string;
  /** The provider's operator (the address that signs its adverts and receipts). */
  operator: string;
  /** The provider's error as recorded (code and message). */
  error: string;
}

/** An input-fault report with the attempt that made it (AttemptsRepository.inputFaults). */
export interface InputFaultClaim extends InputFaultReport {
  attemptId: string;
  attempt: number;
}

/**
 * The claims grouped by their job, as DisprovedClaims.charge takes them: jobs in the order of their
 * first claim, each job's claims in the order given.
 */
export function claimsByJob(claims: readonly DisprovedAttempt[]): Map<string, DisprovedAttempt[]> {
  const byJob = new Map<string, DisprovedAttempt[]>();
  for (const claim of claims) {
    const ofJob = byJob.get(claim.jobId);
    if (ofJob) ofJob.push(claim);
    else byJob.set(claim.jobId, [claim]);
  }
  return byJob;
}

/**
 * The claims a completion disproves: all of the job's input-fault claims when it completes with a
 * verified result (agreement of operators, the coordinator's reference, a passed check, a canary's
 * known answer), since its input did run and an honest provider fails a real input fault like every
 * other; none for an unverified delivery (a trusted provider's spot-checked result proves nothing yet).
 */
export function disprovedClaims<C extends InputFaultClaim>(claims: readonly C[], verified: boolean): C[] {
  return verified ? [...claims] : [];
}

/** The job event of a disproved claim, recorded with the completion (`ranBy`: whose result ran it). */
export function claimDisprovedNote(
  claim: InputFaultClaim,
  ranBy: readonly string[],
): { type: string; data: Record<string, unknown> } {
  return {
    type: CLAIM_DISPROVED_EVENT,
    data: { attempt: claim.attempt, provider: claim.providerId, claim: claim.error, ranBy: [...ranBy] },
  };
}

/**
 * The job's error once providers of `INPUT_FAULT_OPERATORS` distinct operators reported an input
 * fault, else null (the job is placed again, on another operator). The message quotes the first
 * report of each operator.
 */
export function inputFaultFailure(
  reports: readonly InputFaultReport[],
  operators = INPUT_FAULT_OPERATORS,
): JobError | null {
  const firstByOperator = new Map<string, InputFaultReport>();
  for (const r of reports) if (!firstByOperator.has(r.operator)) firstByOperator.set(r.operator, r);
  if (firstByOperator.size < operators) return null;
  const firsts = [...firstByOperator.values()];
  const distinctErrors = [...new Set(firsts.map((r) => r.error))];
  return {
    code: 'INPUT_REJECTED',
    message: `providers of ${firsts.length} distinct operators could not run this job: ${distinctErrors.join(' | ')}`,
    details: { reports: firsts.map((r) => ({ provider: r.providerId, error: r.error })) },
  };
}

/**
 * The provider's error ("CODE: message") when it said the job itself cannot run (an `error` frame
 * whose code libs/protocol classes as the input's fault), else null.
 */
export function inputFaultOf(err: unknown): string | null {
  if (!(err instanceof JobProtocolError) || err.code !== 'REMOTE_ERROR' || err.remoteCode === undefined) {
    return null;
  }
  if (jobErrorFault(err.remoteCode) !== 'input') return null;
  const prefix = 'provider error ';
  return err.message.startsWith(prefix)
    ? err.message.slice(prefix.length)
    : `${err.remoteCode}: ${err.message}`;
}
