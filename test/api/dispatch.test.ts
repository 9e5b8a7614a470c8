import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { api, startTestCoordinator, TEST_REDIS_URL, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import { createLogger } from '../../apps/coordinator/src/logging/logger.js';
import { startCoordinator } from '../../apps/coordinator/src/bootstrap.js';
import { QueueName } from '../../apps/coordinator/src/queue/queue.constants.js';

interface JobBody {
  id: string;
  state: string;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function events(c: TestCoordinator, jobId: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: c.databaseUrl });
  await client.connect();
  try {
    const rows = await client.query<{ type: string }>(
      'SELECT type FROM "JobEvent" WHERE "jobId" = $1 ORDER BY id',
      [jobId],
    );
    return rows.rows.map((r) => r.type);
  } finally {
    await client.end();
  }
}

async function addProvider(
  databaseUrl: string,
  peerId: string,
  operatorId: string,
  pricePerUnit: number,
): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO "Provider" ("peerId", address, "operatorId", status, backend, gpus, gflops, "pricePerUnit", slots, "freeSlots", advert, "lastSeenAt", "updatedAt")
       VALUES ($1, '0x0000000000000000000000000000000000000001', $2, 'ONLINE', 'wasm', '[]', 30, $3, 2, 2, '{}', now(), now())`,
      [peerId, operatorId, pricePerUnit],
    );
  } finally {
    await client.end();
  }
}

describe('dispatch worker: BullMQ retries, dead letters, deadline expiry (real PostgreSQL + Redis)', () => {
  let c: TestCoordinator;
  beforeAll(async () => {
    c = await startTestCoordinator({ DISPATCH_ATTEMPTS: '2', DISPATCH_BACKOFF_MS: '50' });
  });
  afterAll(async () => {
    await c?.close();
  });

  it('dead-letters a job no provider can take, after its retries', async () => {
    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2, '1'),
    });
    const types = await waitFor('dead letter', async () => {
      const t = await events(c, job.body.id);
      return t.includes('dispatch.dead_lettered') ? t : undefined;
    });
    expect(types[0]).toBe('job.submitted');
    const dlq = new Queue(QueueName.DeadLetter, {
      connection: { url: TEST_REDIS_URL },
      prefix: c.config.QUEUE_PREFIX,
    });
    try {
      const jobs = await dlq.getJobs(['waiting', 'completed', 'failed', 'delayed']);
      expect(jobs.map((j) => (j.data as { jobId: string }).jobId)).toContain(job.body.id);
    } finally {
      await dlq.close();
    }
    const state = await api<JobBody>(c.url, 'GET', `/v1/jobs/${job.body.id}`, { key: c.devKey });
    expect(state.body.state).toBe('QUEUED'); // stays queued (and reserved) until its deadline
  });

  it('places a job on a provider within its price and records the attempt', async () => {
    await addProvider(c.databaseUrl, 'peer-cheap', 'op-1', 2);
    await addProvider(c.databaseUrl, 'peer-dear', 'op-2', 50);
    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2, '10'),
    });
    const dispatched = await waitFor('dispatch', async () => {
      const res = await api<JobBody>(c.url, 'GET', `/v1/jobs/${job.body.id}`, { key: c.devKey });
      return res.body.state === 'DISPATCHED' ? res : undefined;
    });
    expect(dispatched.body.state).toBe('DISPATCHED');
    const client = new pg.Client({ connectionString: c.databaseUrl });
    await client.connect();
    const attempts = await client.query('SELECT "providerId", attempt FROM "JobAttempt" WHERE "jobId" = $1', [
      job.body.id,
    ]);
    await client.end();
    expect(attempts.rows).toEqual([{ providerId: 'peer-cheap', attempt: 1 }]);
  });

  it('expires a job at its deadline and releases its reservation', async () => {
    const before = await api<{ balance: string; reserved: string }>(c.url, 'GET', '/v1/account', {
      key: c.devKey,
    });
    const spec = { ...matmulSpec(2, 2, 2, '1000'), deadlineSeconds: 1 };
    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', { key: c.devKey, body: spec });
    expect(job.status).toBe(201);
    const expired = await waitFor('expiry', async () => {
      const res = await api<JobBody>(c.url, 'GET', `/v1/jobs/${job.body.id}`, { key: c.devKey });
      return res.body.state === 'EXPIRED' ? res : undefined;
    });
    expect(expired.body.state).toBe('EXPIRED');
    const after = await api<{ balance: string; reserved: string }>(c.url, 'GET', '/v1/account', {
      key: c.devKey,
    });
    expect(after.body.balance).toBe(before.body.balance);
  });
});

describe('API and worker as separate processes of one codebase', () => {
  it('a job submitted to an api-only coordinator is dispatched by a worker-only one', async () => {
    const api1 = await startTestCoordinator({ ROLE: 'api' });
    const worker = await startCoordinator(
      { ...api1.config, ROLE: 'worker', DEV_BOOTSTRAP: false, PORT: 0 },
      createLogger('silent'),
    );
    try {
      await addProvider(api1.databaseUrl, 'peer-x', 'op-x', 1);
      const job = await api<JobBody>(api1.url, 'POST', '/v1/jobs', {
        key: api1.devKey,
        body: matmulSpec(2, 2, 2, '1'),
      });
      const done = await waitFor('dispatch by the worker process', async () => {
        const res = await api<JobBody>(api1.url, 'GET', `/v1/jobs/${job.body.id}`, { key: api1.devKey });
        return res.body.state === 'DISPATCHED' ? res : undefined;
      });
      expect(done.body.state).toBe('DISPATCHED');
      const workerJobs = await fetch(`${worker.url}/v1/jobs`);
      expect(workerJobs.status).toBe(404); // the worker serves no API routes
    } finally {
      await worker.close();
      await api1.close();
    }
  });
});
