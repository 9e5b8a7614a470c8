// Why a job expired: the deadline passed, and what its attempts ended with (so an EXPIRED job says
// why no provider finished it without a look at the event stream).
import type { JobAttempt } from '#prisma';
import type { JobError } from '../jobs/job-error.js';

/** Most distinct attempt errors an expired job's message quotes (the events hold every attempt's). */
const QUOTED_ATTEMPT_ERRORS = 3;

/**
 * The error of a job whose deadline passed: DEADLINE_PASSED, quoting what its attempts that ended
 * with an error said, latest first (none: it was never offered, or its attempts were still running).
 */
export function deadlineError(attempts: readonly Pick<JobAttempt, 'attempt' | 'error'>[]): JobError {
  const errors = [...attempts]
    .sort((a, b) => b.attempt - a.attempt)
    .flatMap((a) => (a.error ? [a.error] : []));
  const quoted = [...new Set(errors)].slice(0, QUOTED_ATTEMPT_ERRORS);
  const tail = quoted.length > 0 ? `; its attempts ended with: ${quoted.join(' | ')}` : '';
  return {
    code: 'DEADLINE_PASSED',
    message: `the deadline passed before a provider finished the job${tail}`,
    ...(errors.length > 0 ? { details: { attemptErrors: errors } } : {}),
  };
}
