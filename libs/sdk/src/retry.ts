// When to try a request again: a 429 (rate limited) or 503 (unavailable) answer, after the server's
// Retry-After (seconds or an HTTP date) or, without one, an exponential backoff; every wait capped.

/** Statuses worth another try: the server refused before doing anything. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/** The first backoff step when the server names no delay, doubled on each further try. */
export const BASE_BACKOFF_MS = 250;

/**
 * How long Retry-After asks to wait, in milliseconds (0 for a date already past), or null when the
 * header is absent or unreadable.
 */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | null {
  if (header === null) return null;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** The wait before try number `attempt` (1 = the first retry), at most `maxMs`. */
export function backoffMs(attempt: number, maxMs: number, retryAfter: number | null = null): number {
  const wanted = retryAfter ?? BASE_BACKOFF_MS * 2 ** (attempt - 1);
  return Math.min(maxMs, wanted);
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
