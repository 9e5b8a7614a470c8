import { DomainError } from '../common/domain-error.js';

export const JOB_STATES = [
  'QUEUED',
  'DISPATCHED',
  'RUNNING',
  'VERIFYING',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'EXPIRED',
] as const;
export type JobState = (typeof JOB_STATES)[number];

export const TERMINAL_STATES: readonly JobState[] = ['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'];

/**
 * The legal moves of a job. A lost or rejected attempt sends a job back to QUEUED for re-placement;
 * a failed verification sends it back to QUEUED for a re-run.
 */
export const JOB_TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  QUEUED: ['DISPATCHED', 'CANCELLED', 'EXPIRED', 'FAILED'],
  DISPATCHED: ['RUNNING', 'QUEUED', 'CANCELLED', 'EXPIRED', 'FAILED'],
  RUNNING: ['VERIFYING', 'QUEUED', 'CANCELLED', 'EXPIRED', 'FAILED'],
  VERIFYING: ['COMPLETED', 'QUEUED', 'FAILED'],
  COMPLETED: [],
  FAILED: [],
  CANCELLED: [],
  EXPIRED: [],
};

/**
 * The states whose stored result may still be replaced, without a state change: a correction (the
 * coordinator's reference replaces a delivered result found wrong later, event `job.corrected`).
 */
export const CORRECTABLE_STATES: readonly JobState[] = ['COMPLETED'];

/** The event of a completed job whose delivered result a later check found wrong and replaced. */
export const JOB_CORRECTED_EVENT = 'job.corrected';

/** Whether a job in `state` is done for good (the one place that decides it; takes raw strings too). */
export function isTerminal(state: string): boolean {
  return (TERMINAL_STATES as readonly string[]).includes(state);
}

export function canTransition(from: JobState, to: JobState): boolean {
  return JOB_TRANSITIONS[from].includes(to);
}

/** The states a job may be in to move to `to`. */
export function statesLeadingTo(to: JobState): JobState[] {
  return JOB_STATES.filter((from) => canTransition(from, to));
}

export function assertTransition(from: JobState, to: JobState): void {
  if (!canTransition(from, to)) {
    throw new DomainError(
      'ILLEGAL_TRANSITION',
      `a ${from.toLowerCase()} job cannot become ${to.toLowerCase()}`,
      {
        from,
        to,
      },
    );
  }
}
