// When a failed webhook delivery is tried again: exponential backoff with jitter, capped, then given up.

export interface WebhookRetrySchedule {
  /** Wait before the first retry. */
  baseMs: number;
  /** Longest wait between two attempts. */
  maxMs: number;
  /** Attempts in all (the first included) before a delivery is given up (FAILED). */
  maxAttempts: number;
}

/** Each wait is 4 times the one before. */
export const WEBHOOK_RETRY_FACTOR = 4;
/**
 * Each wait is moved by up to ±20 % at random, so deliveries that failed together (a receiver's
 * outage) do not all come back in the same second.
 */
export const WEBHOOK_RETRY_JITTER = 0.2;

/** 2 s, 8 s, 32 s, ~2 min, ~8.5 min, ~34 min, 1 h: 8 attempts over ~1.7 h. */
export const DEFAULT_WEBHOOK_RETRY_SCHEDULE: WebhookRetrySchedule = {
  baseMs: 2_000,
  maxMs: 3_600_000,
  maxAttempts: 8,
};

/**
 * The wait before the retry that follows `attempts` failed attempts (≥ 1): baseMs × 4^(attempts−1),
 * moved by ±WEBHOOK_RETRY_JITTER (`random` in [0, 1); 0.5 gives the nominal wait), at most maxMs;
 * null once maxAttempts were made (give up).
 */
export function retryDelayMs(
  attempts: number,
  schedule: WebhookRetrySchedule = DEFAULT_WEBHOOK_RETRY_SCHEDULE,
  random: () => number = Math.random,
): number | null {
  if (attempts >= schedule.maxAttempts) return null;
  const n = Math.max(1, attempts);
  const nominal = Math.min(schedule.maxMs, schedule.baseMs * WEBHOOK_RETRY_FACTOR ** (n - 1));
  // the cap holds after the jitter too: no wait is ever longer than maxMs
  return Math.min(schedule.maxMs, Math.round(nominal * (1 + WEBHOOK_RETRY_JITTER * (2 * random() - 1))));
}

/** Every nominal wait of a schedule, in order (what the docs and the delivery log promise, ±20 %). */
export function retrySchedule(schedule: WebhookRetrySchedule = DEFAULT_WEBHOOK_RETRY_SCHEDULE): number[] {
  const waits: number[] = [];
  for (let attempts = 1; ; attempts++) {
    const wait = retryDelayMs(attempts, schedule, () => 0.5);
    if (wait === null) return waits;
    waits.push(wait);
  }
}
