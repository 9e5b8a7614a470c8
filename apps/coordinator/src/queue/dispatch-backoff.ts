import type { BackoffStrategy } from 'bullmq';

/** The BullMQ backoff type of dispatch jobs (dispatchBackoff below; every dispatch worker registers it). */
export const DISPATCH_BACKOFF_TYPE = 'dispatch';
/**
 * How soon a job whose attempts failed through its providers' fault is placed again. Those providers
 * are excluded from it now, so others can take it at once; waiting would only spend its deadline (a
 * job that lost 20 s to a silent provider had little of it left).
 */
export const AFTER_FAILED_ATTEMPTS_MS = 100;

/**
 * The delay before a dispatch job's next try: AFTER_FAILED_ATTEMPTS_MS after failed attempts (the
 * dispatcher's AttemptsFailedError), exponential from `baseMs` when nothing could take the job (no
 * capacity; more capacity takes time to appear) or anything else went wrong.
 */
export function dispatchBackoffMs(attemptsMade: number, error: Error | undefined, baseMs: number): number {
  if (error?.name === 'AttemptsFailedError') return Math.min(baseMs, AFTER_FAILED_ATTEMPTS_MS);
  return Math.round(2 ** Math.max(0, attemptsMade - 1) * baseMs);
}

/** The strategy registered on dispatch workers; the base delay travels in the job's backoff options. */
export const dispatchBackoff: BackoffStrategy = (attemptsMade, _type, error, job) => {
  const backoff = job?.opts.backoff;
  const baseMs = typeof backoff === 'object' && typeof backoff.delay === 'number' ? backoff.delay : 1_000;
  return dispatchBackoffMs(attemptsMade, error, baseMs);
};
