// Timings and limits of the job protocol that both sides must agree on, or that either side's callers
// may want to name.

/** How long a provider has to accept or reject an offer. */
export const DEFAULT_ACCEPT_TIMEOUT_MS = 10_000;
/** How long an agent waits for the offer frame after the coordinator opened the stream. */
export const DEFAULT_OFFER_READ_TIMEOUT_MS = 30_000;
/** Most concurrent job streams an agent serves. */
export const DEFAULT_MAX_JOB_STREAMS = 64;
/** Progress frames are sent at most this often (the last one before the result always goes). */
export const PROGRESS_MIN_INTERVAL_MS = 100;
/** After sending its result, an agent gives the coordinator this long to close the stream. */
export const RESULT_LINGER_MS = 30_000;
/**
 * While a job runs, an agent sends a heartbeat this often: a `progress` frame repeating the last
 * fraction it reported (0 before any), so coordinators that predate heartbeats read it as progress.
 */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;
/**
 * After acceptance, a coordinator gives up on an attempt (`TIMEOUT`) when not one byte arrived for
 * this long: four heartbeats missed. Bytes count, not frames, so a large result arriving slowly is
 * not cut, while a provider that stops in the middle of a frame is.
 */
export const DEFAULT_SILENCE_TIMEOUT_MS = 20_000;
