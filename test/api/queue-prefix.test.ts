// Two marketplaces on one Redis (issue 24, part 5): without QUEUE_PREFIX each coordinator derives its
// prefix from its database's marketplace id, so neither takes the other's dispatch jobs; a
// coordinator refuses a prefix that a live coordinator of another database holds; a stopped
// marketplace's keys are reported as stale and can be removed.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  claimKey,
  QueuePrefixTakenError,
  staleQueuePrefixes,
} from '../../apps/coordinator/src/queue/queue-prefix.js';
import { QueueName } from '../../apps/coordinator/src/queue/queue.constants.js';
import { api, startCoordinatorOn, TEST_REDIS_URL, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import { createTestDatabase } from '../support/database.js';

async function marketplaceId(databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<{ id: string }>('SELECT "id" FROM "Marketplace"')).rows[0]!.id;
  } finally {
    await client.end();
  }
}

async function dispatchJobIds(prefix: string): Promise<string[]> {
  const queue = new Queue(QueueName.Dispatch, { connection: { url: TEST_REDIS_URL }, prefix });
  try {
    const jobs = await queue.getJobs(['waiting', 'delayed', 'active', 'prioritized', 'completed', 'failed']);
    return jobs.map((j) => (j.data as { jobId: string }).jobId);
  } finally {
    await queue.close();
  }
}

describe('each marketplace owns its queues', () => {
  const dbs: { url: string; drop(): Promise<void> }[] = [];
  let a: TestCoordinator | undefined;
  let b: TestCoordinator | undefined;
  const redis = new Redis(TEST_REDIS_URL);

  beforeAll(async () => {
    dbs.push(await createTestDatabase(), await createTestDatabase());
    // QUEUE_PREFIX unset: derived from each database.
    a = await startCoordinatorOn(dbs[0]!.url, { QUEUE_PREFIX: '' });
    b = await startCoordinatorOn(dbs[1]!.url, { QUEUE_PREFIX: '' });
  });
  const prefixes: string[] = [];
  afterAll(async () => {
    if (a) prefixes.push(a.running.queuePrefix);
    if (b) prefixes.push(b.running.queuePrefix);
    await a?.close();
    await b?.close();
    for (const db of dbs) await db.drop();
    // the databases are gone: so are their marketplaces, and their keys must not linger in Redis
    for (const prefix of prefixes) {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.unlink(...keys);
    }
    redis.disconnect();
  });

  it('derives a distinct prefix from each database and holds it', async () => {
    expect(a!.running.queuePrefix).toBe(`gm-${await marketplaceId(dbs[0]!.url)}`);
    expect(b!.running.queuePrefix).toBe(`gm-${await marketplaceId(dbs[1]!.url)}`);
    expect(a!.running.queuePrefix).not.toBe(b!.running.queuePrefix);
    expect(await redis.get(claimKey(a!.running.queuePrefix))).toBe(await marketplaceId(dbs[0]!.url));
    expect(await redis.pttl(claimKey(a!.running.queuePrefix))).toBeGreaterThan(0);
  });

  it("never queues one marketplace's jobs where the other dispatches", async () => {
    const jobA = await api<{ id: string }>(a!.url, 'POST', '/v1/jobs', {
      key: a!.devKey,
      body: matmulSpec(2, 2, 2),
    });
    const jobB = await api<{ id: string }>(b!.url, 'POST', '/v1/jobs', {
      key: b!.devKey,
      body: matmulSpec(2, 2, 2),
    });
    expect([jobA.status, jobB.status]).toEqual([201, 201]);
    const inA = await dispatchJobIds(a!.running.queuePrefix);
    const inB = await dispatchJobIds(b!.running.queuePrefix);
    expect(inA).toContain(jobA.body.id);
    expect(inA).not.toContain(jobB.body.id);
    expect(inB).toContain(jobB.body.id);
    expect(inB).not.toContain(jobA.body.id);
  });

  it('refuses to start on a prefix a live coordinator of another database holds, and shares its own', async () => {
    await expect(startCoordinatorOn(dbs[1]!.url, { QUEUE_PREFIX: a!.running.queuePrefix })).rejects.toThrow(
      QueuePrefixTakenError,
    );
    // A second process of the same marketplace (say a worker) shares the claim.
    const second = await startCoordinatorOn(dbs[0]!.url, { QUEUE_PREFIX: a!.running.queuePrefix });
    try {
      expect(second.running.queuePrefix).toBe(a!.running.queuePrefix);
    } finally {
      await second.close();
    }
    // ... and its stop does not free the prefix while the first still runs.
    expect(await redis.get(claimKey(a!.running.queuePrefix))).toBe(await marketplaceId(dbs[0]!.url));
  });

  it("reports a stopped marketplace's keys as stale, and removes them when asked", async () => {
    const prefixA = a!.running.queuePrefix;
    await a!.close();
    a = undefined;
    expect(await redis.exists(claimKey(prefixA))).toBe(0);
    const ownB = b!.running.queuePrefix;
    const kept = await staleQueuePrefixes(TEST_REDIS_URL, ownB, { removeOlderThanMs: 3_600_000 });
    // (removal below is limited to this test's marketplace: the Redis is shared with other stacks)
    const entry = kept.stale.find((s) => s.prefix === prefixA);
    expect(entry?.keys).toBeGreaterThan(0);
    expect(entry?.lastSeenMs).toBeGreaterThan(Date.now() - 120_000);
    expect(kept.stale.some((s) => s.prefix === ownB)).toBe(false);
    expect(await redis.keys(`${prefixA}:*`)).not.toHaveLength(0); // seen a moment ago: kept
    const removed = await staleQueuePrefixes(TEST_REDIS_URL, ownB, {
      removeOlderThanMs: 0,
      now: Date.now() + 1_000,
      only: [prefixA, ownB],
    });
    expect(removed.removedKeys).toBeGreaterThanOrEqual(entry!.keys);
    expect(await redis.keys(`${prefixA}:*`)).toHaveLength(0);
    expect(await redis.keys(`${ownB}:*`)).not.toHaveLength(0); // the live one untouched
  });
});
