import { createHash } from 'node:crypto';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ErrorBody } from '../common/http-exception.filter.js';

/** The window of both limits: RATE_LIMIT_PER_IP and RATE_LIMIT_PER_KEY are per minute. */
export const RATE_LIMIT_WINDOW_MS = 60_000;

export interface RateLimitOptions {
  /** Requests per minute from one client IP; 0 = no limit. */
  perIp: number;
  /** Requests per minute with one credential (API key, session token, admin cookie); 0 = no limit. */
  perKey: number;
  /** Counters in Redis (shared by API replicas) when set, else in this process. */
  redisUrl: string | null;
  /** Key prefix of the counters in Redis. */
  namespace: string;
  logger: Logger;
}

type Limiter = ReturnType<FastifyInstance['createRateLimit']>;
type LimitResult = Awaited<ReturnType<Limiter>>;
type Counted = Extract<LimitResult, { isAllowed: false }>;

const ADMIN_COOKIE_RE = /(?:^|;\s*)gpumesh_admin=([^;]+)/;

/**
 * The credential a request carries, hashed (counters never hold a secret): the bearer token or
 * `x-api-key`, else the dashboard cookie; null for anonymous requests. Malformed headers still count:
 * the value is hashed as sent.
 */
export function credentialKey(headers: FastifyRequest['headers']): string | null {
  const authorization = headers.authorization;
  let credential: string | undefined;
  if (typeof authorization === 'string' && authorization.length > 0) credential = authorization.trim();
  else if (typeof headers['x-api-key'] === 'string' && headers['x-api-key'].length > 0)
    credential = `Bearer ${headers['x-api-key'].trim()}`;
  else if (typeof headers.cookie === 'string') {
    const cookie = ADMIN_COOKIE_RE.exec(headers.cookie)?.[1];
    if (cookie) credential = `Cookie ${cookie}`;
  }
  if (credential === undefined) return null;
  // "Bearer x" and "bearer  x" are one credential
  const normalised = credential.replace(/^bearer\s+/i, 'Bearer ');
  return createHash('sha256').update(normalised).digest('base64url').slice(0, 27);
}

function tooManyRequests(reply: FastifyReply, result: Counted, scope: 'IP address' | 'API key'): ErrorBody {
  const retryAfter = Math.max(1, result.ttlInSeconds);
  void reply
    .header('retry-after', String(retryAfter))
    .header('x-ratelimit-limit', String(result.max))
    .header('x-ratelimit-remaining', '0')
    .header('x-ratelimit-reset', String(retryAfter));
  return {
    statusCode: 429,
    error: {
      code: 'RATE_LIMITED',
      message: `too many requests for this ${scope}: at most ${result.max} a minute; retry in ${retryAfter} s`,
      details: {
        limit: result.max,
        retryAfterSeconds: retryAfter,
        scope: scope === 'API key' ? 'key' : 'ip',
      },
    },
  };
}

/**
 * Per-IP and per-credential request limits on every route (@fastify/rate-limit, fixed one-minute
 * windows). Runs first in `onRequest`, before the body is read. A request over either limit gets
 * 429 with Retry-After and the API's error envelope. Counters in Redis fail open: a Redis outage
 * does not take the API down with it. Register before any other onRequest hook.
 */
export async function registerRateLimits(fastify: FastifyInstance, options: RateLimitOptions): Promise<void> {
  if (options.perIp === 0 && options.perKey === 0) {
    options.logger.warn('rate limits are off (RATE_LIMIT_PER_IP=0, RATE_LIMIT_PER_KEY=0)');
    return;
  }
  let redis: Redis | null = null;
  if (options.redisUrl) {
    redis = new Redis(options.redisUrl, {
      // a down Redis must not queue or stall requests: the limiter skips (fails open) at once
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 500,
      lazyConnect: false,
    });
    redis.on('error', (err: Error) => options.logger.debug({ err: err.message }, 'rate-limit redis error'));
    const client = redis;
    fastify.addHook('onClose', async () => {
      client.disconnect();
    });
  }
  await fastify.register(rateLimit, {
    global: false,
    skipOnError: true,
    ...(redis ? { redis, nameSpace: `${options.namespace}:rl:` } : {}),
  });
  // the hashed credential of each request, computed once for the hook and the key generator
  const credentials = new WeakMap<FastifyRequest, string | null>();
  const credentialOf = (request: FastifyRequest): string | null => {
    let credential = credentials.get(request);
    if (credential === undefined) {
      credential = credentialKey(request.headers);
      credentials.set(request, credential);
    }
    return credential;
  };
  const perIp =
    options.perIp > 0
      ? fastify.createRateLimit({
          max: options.perIp,
          timeWindow: RATE_LIMIT_WINDOW_MS,
          keyGenerator: (request) => `ip:${normalizeIP(request.ip)}`,
        })
      : null;
  const perKey =
    options.perKey > 0
      ? fastify.createRateLimit({
          max: options.perKey,
          timeWindow: RATE_LIMIT_WINDOW_MS,
          keyGenerator: (request) => `key:${credentialOf(request) ?? ''}`,
        })
      : null;

  fastify.addHook('onRequest', async (request, reply) => {
    const byKeyLimiter = perKey && credentialOf(request) !== null ? perKey : null;
    const [ip, byKey] = await Promise.all([perIp?.(request), byKeyLimiter?.(request)]);
    if (ip && !ip.isAllowed && ip.isExceeded) {
      return reply.status(429).send(tooManyRequests(reply, ip, 'IP address'));
    }
    if (byKey && !byKey.isAllowed && byKey.isExceeded) {
      return reply.status(429).send(tooManyRequests(reply, byKey, 'API key'));
    }
    const shown = byKey ?? ip;
    if (shown && !shown.isAllowed) {
      void reply
        .header('x-ratelimit-limit', String(shown.max))
        .header('x-ratelimit-remaining', String(shown.remaining));
    }
  });
}
