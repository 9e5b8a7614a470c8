// A closing coordinator drains its BullMQ workers before their services close (real Redis): running
// jobs get a grace period; a job still running after it is abandoned and runs again, nothing lost.
import { Queue, Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';

import { drainWorker } from '../../apps/coordinator/src/queue/worker-drain.js';
import { createTestRedis, type TestRedis } from '../support/redis.js';

const QUEUE = 'drain';

describe('drainWorker', () => {
  let redis: TestRedis | undefined;
  const workers: Worker[] = [];
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close(true)));
    await redis?.cleanup();
    redis = undefined;
  });

  function worker(process: () => Promise<unknown>, lockMs = 30_000): Worker {
    if (!redis) throw new Error('no redis');
    const w = new Worker(QUEUE, process, {
      prefix: redis.prefix,
      connection: redis.newConnection(),
      lockDuration: lockMs,
      stalledInterval: lockMs,
    });
    workers.push(w);
    return w;
  }

  async function started(w: Worker): Promise<void> {
    await new Promise<void>((resolve) => w.once('active', () => resolve()));
  }

  it('lets a running job finish, then closes', async () => {
    redis = await createTestRedis('drain');
    const queue = new Queue(QUEUE, { prefix: redis.prefix, connection: redis.connection });
    let finished = false;
    const w = worker(async () => {
      await new Promise((r) => setTimeout(r, 300));
      finished = true;
      return 'done';
    });
    const job = await queue.add('slow', {});
    await started(w);
    expect(await drainWorker(w, 5_000)).toBe('drained');
    expect(finished).toBe(true);
    expect(await (await queue.getJob(job.id ?? ''))?.getState()).toBe('completed');
    expect(w.closing).not.toBeNull();
    await queue.close();
  });

  it('stops waiting for a job that never ends; the job runs again elsewhere', async () => {
    redis = await createTestRedis('drain');
    const queue = new Queue(QUEUE, { prefix: redis.prefix, connection: redis.connection });
    // What hung the coordinator: a settlement job waiting on a chain provider destroyed meanwhile.
    const stuck = worker(() => new Promise(() => undefined), 1_000);
    const job = await queue.add('stuck', {});
    await started(stuck);
    const t0 = performance.now();
    expect(await drainWorker(stuck, 300)).toBe('abandoned');
    expect(performance.now() - t0).toBeLessThan(5_000);
    // Its lock expires; the stalled-job check of another worker takes it over and finishes it.
    let ranAgain = false;
    worker(async () => {
      ranAgain = true;
      return 'recovered';
    }, 1_000);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && (await (await queue.getJob(job.id ?? ''))?.getState()) !== 'completed') {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(ranAgain).toBe(true);
    expect(await (await queue.getJob(job.id ?? ''))?.getState()).toBe('completed');
    await queue.close();
  });
});
