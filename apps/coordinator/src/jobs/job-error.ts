// Why a job ended FAILED or EXPIRED: one code and one message, stored in `Job.error` as
// "CODE: message", shown as `{ code, message }` in the job response and in the `job.failed` /
// `job.expired` events (with details there).
import type { JobState } from './job-state.js';

export const JOB_ERROR_CODES = [
  /** Providers of two distinct operators reported that the job itself cannot run (deterministic). */
  'INPUT_REJECTED',
  /** No provider could take the job for the whole grace period (UNPLACEABLE_GRACE_SECONDS). */
  'UNPLACEABLE',
  /** The deadline passed before a provider finished the job. */
  'DEADLINE_PASSED',
  /** An input by ref was deleted (DELETE /v1/tensors) while the job was being submitted. */
  'INPUT_DELETED',
  /** A known-answer job's results did not match the known answer. */
  'WRONG_RESULT',
  /** A FAILED job whose row predates error codes. */
  'FAILED',
] as const;
export type JobErrorCode = (typeof JOB_ERROR_CODES)[number];

export interface JobError {
  code: JobErrorCode;
  message: string;
  /** What backs it (the providers' errors, the placement explanation); in the event stream only. */
  details?: Record<string, unknown>;
}

/** Longest message stored (a provider's error is at most 1 KiB on the wire; a few of them fit). */
export const MAX_JOB_ERROR_MESSAGE = 4_000;

const STORED = /^([A-Z][A-Z0-9_]{1,63}): ([\s\S]*)$/;

/** The `Job.error` column's text for `error` (its details are not stored there). */
export function storedJobError(error: Pick<JobError, 'code' | 'message'>): string {
  return `${error.code}: ${error.message.slice(0, MAX_JOB_ERROR_MESSAGE)}`;
}

/** What a job's `error` event data holds: the error with its details. */
export function jobErrorEvent(error: JobError): { error: JobError } {
  return { error };
}

/**
 * The structured error of a stored job: parsed from "CODE: message"; a message stored before codes
 * existed gets its state's code; a FAILED or EXPIRED job always has one, an unfinished or completed
 * job none.
 */
export function jobErrorOf(
  state: JobState | string,
  stored: string | null,
): Omit<JobError, 'details'> | null {
  if (state !== 'FAILED' && state !== 'EXPIRED') return null;
  const fallback: JobErrorCode = state === 'EXPIRED' ? 'DEADLINE_PASSED' : 'FAILED';
  if (stored === null || stored === '') return { code: fallback, message: 'no reason was recorded' };
  const match = STORED.exec(stored);
  if (match && (JOB_ERROR_CODES as readonly string[]).includes(match[1])) {
    return { code: match[1] as JobErrorCode, message: match[2] };
  }
  return { code: fallback, message: stored };
}
