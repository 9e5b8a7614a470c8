import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Header with the delivery's unix time in seconds (part of what is signed). */
export const WEBHOOK_TIMESTAMP_HEADER = 'x-gpumesh-timestamp';
/** Header with `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. */
export const WEBHOOK_SIGNATURE_HEADER = 'x-gpumesh-signature';
/** Header naming the event (`job.corrected`). */
export const WEBHOOK_EVENT_HEADER = 'x-gpumesh-event';
/** Header with the delivery id (the same on every retry of one delivery: deduplicate on it). */
export const WEBHOOK_DELIVERY_HEADER = 'x-gpumesh-delivery';
/** How old a signed timestamp a receiver should accept (replay window), in seconds. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

/** A new signing secret: `whsec_` and 32 random bytes in hex. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('hex')}`;
}

/** The signature header value of `body` sent at `timestamp` (unix seconds). */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * What a receiver runs: the signature matches (constant-time) and the timestamp is within
 * `toleranceSeconds` of `now` (unix seconds).
 */
export function verifyWebhookSignature(input: {
  secret: string;
  body: string;
  timestamp: string | undefined;
  signature: string | undefined;
  now?: number;
  toleranceSeconds?: number;
}): boolean {
  const ts = Number(input.timestamp);
  if (!input.signature || !Number.isInteger(ts)) return false;
  const now = input.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - ts) > (input.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS)) return false;
  const expected = Buffer.from(signWebhook(input.secret, ts, input.body));
  const given = Buffer.from(input.signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
