// Found by the chaos bench: a worker killed -9 twice while it ran a job's dispatch makes BullMQ fail
// that dispatch job ("job stalled more than allowable limit"); the job stayed DISPATCHED (or RUNNING)
// with nothing running it until its deadline expired it. The maintenance sweep now re-adds a dispatch
// job for an in-flight job whose dispatch job has ended; that dispatch finds it interrupted, loses its
// open attempts and places it again, and it completes (and is paid) once.
import pg from 'pg';
import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestCoordinator, TEST_REDIS_URL, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { createLogger } from '../../apps/coordinator/src/logging/logger.js';
import { startCoordinator, type RunningCoordinator } from '../../apps/coordinator/src/bootstrap.js';
import { QueueName } from '../../apps/coordinator/src/queue/queue.constants.js';
import { auditDatabase } from '../../bench/support/cluster.js';

async function sql<T extends pg.QueryResultRow>(
  url: string,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

describe('an in-flight job whose dispatch job failed after stalls', () => {
  let apiOnly: TestCoordinator;
  let worker: RunningCoordinator | undefined;
  let agent: FakeAgent | undefined;
  beforeAll(async () => {
    apiOnly = await startTestCoordinator({ ROLE: 'api' });
  });
  afterAll(async () => {
    await agent?.stop();
    await worker?.close();
    await apiOnly?.close();
  });

  it('is placed again and completes once', async () => {
    const submitted = await api<{ id: string }>(apiOnly.url, 'POST', '/v1/jobs', {
      key: apiOnly.devKey,
      body: matmulSpec(2, 2, 2, '1'),
    });
    expect(submitted.status).toBe(201);
    const jobId = submitted.body.id;

    // What a worker killed twice mid-dispatch leaves behind: the job dispatched with an open attempt
    // in the database (a while ago), its BullMQ dispatch job failed for stalling.
    const stalled = new Worker(
      QueueName.Dispatch,
      async () => {
        await sql(
          apiOnly.databaseUrl,
          `UPDATE "Job" SET state = 'DISPATCHED', "updatedAt" = now() - interval '5 minutes' WHERE id = $1`,
          [jobId],
        );
        await sql(
          apiOnly.databaseUrl,
          `INSERT INTO "JobAttempt" (id, "jobId", attempt, state) VALUES (gen_random_uuid(), $1, 1, 'OFFERED')`,
          [jobId],
        );
        throw new UnrecoverableError('job stalled more than allowable limit');
      },
      { connection: { url: TEST_REDIS_URL }, prefix: apiOnly.config.QUEUE_PREFIX, autorun: false },
    );
    const failed = new Promise<void>((resolve) => stalled.once('failed', () => resolve()));
    void stalled.run();
    await failed;
    await stalled.close();
    expect(
      (await sql<{ state: string }>(apiOnly.databaseUrl, 'SELECT state::text FROM "Job"'))[0].state,
    ).toBe('DISPATCHED');

    // A worker starts (its start-up sweep runs at once) and a provider is there.
    worker = await startCoordinator(
      { ...apiOnly.config, ROLE: 'worker', DEV_BOOTSTRAP: false, PORT: 0 },
      createLogger('silent'),
    );
    agent = await startFakeAgent(apiOnly.url);
    const until = Date.now() + 30_000;
    let state = '';
    while (Date.now() < until) {
      state = (await api<{ state: string }>(apiOnly.url, 'GET', `/v1/jobs/${jobId}`, { key: apiOnly.devKey }))
        .body.state;
      if (state === 'COMPLETED') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(state).toBe('COMPLETED');
    const events = (
      await sql<{ type: string }>(
        apiOnly.databaseUrl,
        'SELECT type FROM "JobEvent" WHERE "jobId" = $1 ORDER BY id',
        [jobId],
      )
    ).map((e) => e.type);
    expect(events).toContain('attempt.lost');
    expect(events.filter((t) => t === 'job.completed')).toHaveLength(1);
    const attempts = await sql<{ attempt: number; state: string }>(
      apiOnly.databaseUrl,
      'SELECT attempt, state::text FROM "JobAttempt" WHERE "jobId" = $1 ORDER BY attempt',
      [jobId],
    );
    expect(attempts.map((a) => a.state)).toEqual(['LOST', 'SUCCEEDED']);
    expect(await auditDatabase(apiOnly.databaseUrl)).toMatchObject({
      open: 0,
      completedTwice: 0,
      paidTwice: 0,
      unsettled: 0,
      ledgerSum: '0',
      balanceMismatches: 0,
      strandedReservation: '0',
    });
  }, 90_000);
});
