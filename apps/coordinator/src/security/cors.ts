import type { FastifyCorsOptions } from '@fastify/cors';

/** Request headers a cross-origin browser client may send. */
export const CORS_ALLOWED_HEADERS = ['authorization', 'content-type', 'idempotency-key', 'x-api-key'];
/** Response headers a cross-origin browser client may read. */
export const CORS_EXPOSED_HEADERS = [
  'retry-after',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
  'location',
];

/**
 * CORS from `CORS_ORIGINS`: none (the default) answers no cross-origin request with CORS headers, so
 * browsers only let same-origin pages (the dashboard) read responses. An allowlist names exact
 * origins; `*` allows any origin. Credentials (cookies) are never allowed cross-origin: browser
 * clients elsewhere authenticate with a bearer key, and the admin cookie stays same-origin.
 */
export function corsOptions(origins: readonly string[]): FastifyCorsOptions {
  if (origins.length === 0) return { origin: false };
  return {
    origin: origins.includes('*') ? '*' : [...origins],
    credentials: false,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    maxAge: 600,
    strictPreflight: true,
  };
}
