// Each marketplace owns its Redis keys. Without an explicit QUEUE_PREFIX the prefix is derived from
// the marketplace's id (the one row of the "Marketplace" table, written by its migration), so two
// stacks sharing a Redis — two `npm start` on one machine — never take each other's dispatch jobs.
// A coordinator claims its prefix for its marketplace with a short-lived key it keeps refreshing, and
// refuses to start on a prefix a live coordinator of another database holds. Prefixes nobody holds
// are reported at start (and their keys deleted in dev).
import { randomUUID } from 'node:crypto';

import { Redis } from 'ioredis';
import pg from 'pg';
import type { Logger } from 'pino';

import { LEGACY_QUEUE_PREFIX } from '../config/config.js';

/** How long a claim outlives its last refresh: a coordinator killed with -9 frees its prefix after this. */
export const CLAIM_TTL_MS = 30_000;
const REFRESH_MS = 10_000;
/** A prefix whose marketplace was last seen longer ago than this is stale (its keys are removed in dev). */
export const STALE_AFTER_MS = 3_600_000;
const DERIVED = /^gm-[0-9a-f]{12}$/;

/** The prefix derived from a marketplace id. */
export function derivedQueuePrefix(marketplaceId: string): string {
  return `gm-${marketplaceId}`;
}

/** The prefix part of a Redis key (`gm-…:dispatch:1` → `gm-…`), or null for a key of something else. */
export function gpumeshPrefixOf(key: string): string | null {
  const colon = key.indexOf(':');
  if (colon <= 0) return null;
  const prefix = key.slice(0, colon);
  return prefix === LEGACY_QUEUE_PREFIX || DERIVED.test(prefix) ? prefix : null;
}

/** The key that says which marketplace holds a prefix now (expires CLAIM_TTL_MS after the last refresh). */
export const claimKey = (prefix: string): string => `${prefix}:owner`;
/** The key that says which marketplace used a prefix last and when (never expires). */
export const lastSeenKey = (prefix: string): string => `${prefix}:last-seen`;

export class QueuePrefixTakenError extends Error {
  constructor(
    readonly prefix: string,
    readonly holder: string,
    marketplaceId: string,
  ) {
    super(
      `queue prefix "${prefix}" is held by a live coordinator of another marketplace (${holder}; this ` +
        `database is ${marketplaceId}). Stacks sharing a Redis need their own prefix: unset QUEUE_PREFIX ` +
        `to derive one from the database, or choose another.`,
    );
    this.name = 'QueuePrefixTakenError';
  }
}

/** The marketplace id stored in the database (run its migrations first). */
export async function readMarketplaceId(databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string }>('SELECT "id" FROM "Marketplace" LIMIT 1');
    const id = rows[0]?.id;
    if (!id) throw new Error('the database has no marketplace id: run `npm run db:migrate`');
    return id;
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') {
      throw new Error('the database is not migrated (no "Marketplace" table): run `npm run db:migrate`', {
        cause: err,
      });
    }
    throw err;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The processes (api, worker roles) of the holding marketplace, each with its claim's expiry. */
const holdersKey = (prefix: string): string => `${prefix}:holders`;

// Takes or refreshes the claim: set when free, extended when ours, left alone (and its holder
// returned) when another marketplace holds it. Each process of the marketplace is listed in the
// holders set until it releases or stops refreshing.
const CLAIM_SCRIPT = `
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  local now = tonumber(ARGV[3])
  local ttl = tonumber(ARGV[2])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
  redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  redis.call('ZADD', KEYS[3], now + ttl, ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ttl)
  return ARGV[1]
end
return holder`;

// Leaves the holders; the last process of the marketplace to leave frees the prefix at once.
const RELEASE_SCRIPT = `
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[2]) == 0 and redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

/** A held prefix: refreshed in the background until release(). */
export interface QueuePrefixClaim {
  readonly prefix: string;
  readonly marketplaceId: string;
  release(): Promise<void>;
}

/**
 * Claims `prefix` for `marketplaceId` on `redisUrl`. Throws QueuePrefixTakenError when a live
 * coordinator of another marketplace holds it. Coordinators of the same marketplace (api and worker
 * roles) share the claim.
 */
export async function claimQueuePrefix(
  redisUrl: string,
  prefix: string,
  marketplaceId: string,
  logger: Logger,
): Promise<QueuePrefixClaim> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2, lazyConnect: true });
  const instance = randomUUID();
  const claim = (): Promise<unknown> =>
    redis.eval(
      CLAIM_SCRIPT,
      3,
      claimKey(prefix),
      lastSeenKey(prefix),
      holdersKey(prefix),
      marketplaceId,
      String(CLAIM_TTL_MS),
      String(Date.now()),
      instance,
    );
  try {
    await redis.connect();
    const holder = await claim();
    if (holder !== marketplaceId) throw new QueuePrefixTakenError(prefix, String(holder), marketplaceId);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  let lost = false;
  const timer = setInterval(() => {
    claim().then(
      (holder) => {
        if (holder !== marketplaceId && !lost) {
          lost = true;
          logger.error(
            { prefix, holder },
            'another marketplace took this queue prefix while this coordinator was unresponsive: stop one of them',
          );
        }
      },
      (err: unknown) => logger.warn({ err, prefix }, 'could not refresh the queue prefix claim'),
    );
  }, REFRESH_MS);
  timer.unref();
  return {
    prefix,
    marketplaceId,
    release: async () => {
      clearInterval(timer);
      await redis
        .eval(
          RELEASE_SCRIPT,
          2,
          claimKey(prefix),
          holdersKey(prefix),
          marketplaceId,
          instance,
          String(Date.now()),
        )
        .catch(() => undefined);
      redis.disconnect();
    },
  };
}

export interface StalePrefix {
  readonly prefix: string;
  readonly keys: number;
  /** When its marketplace last refreshed a claim (ms since the epoch), null when never recorded. */
  readonly lastSeenMs: number | null;
}

/** Parses a last-seen value (`<marketplace id> <ms>`) into the time, null when absent or malformed. */
export function lastSeenTime(value: string | null): number | null {
  const ms = Number(value?.split(' ')[1]);
  return Number.isSafeInteger(ms) && ms > 0 ? ms : null;
}

/**
 * gpumesh prefixes on this Redis that no live coordinator holds (other than `own`), with their key
 * counts. With `removeOlderThanMs`, deletes the keys of those last seen longer ago than that (or never).
 */
export async function staleQueuePrefixes(
  redisUrl: string,
  own: string,
  options: {
    removeOlderThanMs?: number;
    now?: number;
    /** Consider only these prefixes (default: every gpumesh prefix on the Redis). */
    only?: readonly string[];
  } = {},
): Promise<{ stale: StalePrefix[]; removedKeys: number }> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2, lazyConnect: true });
  await redis.connect();
  try {
    const counts = new Map<string, string[]>();
    for (const pattern of [`${LEGACY_QUEUE_PREFIX}:*`, 'gm-*']) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const prefix = gpumeshPrefixOf(key);
          if (prefix === null || prefix === own) continue;
          if (options.only && !options.only.includes(prefix)) continue;
          let list = counts.get(prefix);
          if (!list) counts.set(prefix, (list = []));
          list.push(key);
        }
      } while (cursor !== '0');
    }
    const stale: StalePrefix[] = [];
    let removedKeys = 0;
    const now = options.now ?? Date.now();
    for (const [prefix, keys] of counts) {
      if ((await redis.exists(claimKey(prefix))) === 1) continue;
      const lastSeenMs = lastSeenTime(await redis.get(lastSeenKey(prefix)));
      stale.push({ prefix, keys: keys.length, lastSeenMs });
      const limit = options.removeOlderThanMs;
      if (limit !== undefined && (lastSeenMs === null || now - lastSeenMs > limit)) {
        for (let i = 0; i < keys.length; i += 500)
          removedKeys += await redis.unlink(...keys.slice(i, i + 500));
      }
    }
    return { stale, removedKeys };
  } finally {
    redis.disconnect();
  }
}
