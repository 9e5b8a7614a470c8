// Group commit of job transitions (JobsRepository): concurrent transitions share one database
// transaction, a request that fails is retried alone without taking the others down, two moves of
// one job in one batch see each other, and the ledger adds up to the base unit.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobsRepository } from '../../apps/coordinator/src/jobs/jobs.repository.js';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';

interface AccountBody {
  balance: string;
  reserved: string;
}

let c: TestCoordinator;
let db: pg.Client;

beforeAll(async () => {
  // API only: nothing dispatches, so the jobs stay QUEUED until the test moves them.
  c = await startTestCoordinator({ ROLE: 'api', P2P_ENABLED: 'false' });
  db = new pg.Client({ connectionString: c.databaseUrl });
  await db.connect();
});

afterAll(async () => {
  await db?.end();
  await c?.close();
});

async function submit(n: number): Promise<{ id: string; cost: bigint }[]> {
  const jobs: { id: string; cost: bigint }[] = [];
  for (let i = 0; i < n; i++) {
    const res = await api<{ id: string; cost: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2),
    });
    expect(res.status).toBe(201);
    jobs.push({ id: res.body.id, cost: BigInt(res.body.cost) });
  }
  return jobs;
}

/** How many database transactions wrote the cancellation events of these jobs (from the rows' xmin). */
async function writers(jobIds: string[]): Promise<number> {
  const r = await db.query<{ n: number }>(
    `SELECT count(DISTINCT xmin::text)::int AS n FROM "JobEvent" WHERE type = 'job.cancelled' AND "jobId" = ANY($1::uuid[])`,
    [jobIds],
  );
  return r.rows[0].n;
}

describe('job transitions (group commit)', () => {
  it('moves many jobs in a few commits, retries a failing request alone, and keeps the ledger whole', async () => {
    const jobs = await submit(40);
    const repo = c.running.app.get(JobsRepository);
    const before = (await api<AccountBody>(c.url, 'GET', '/v1/account', { key: c.devKey })).body;
    const cancel = (id: string) =>
      repo.transition({
        jobId: id,
        from: ['QUEUED'],
        to: 'CANCELLED',
        eventType: 'job.cancelled',
        eventData: { by: 'test' },
        effect: { kind: 'release' },
      });
    const [bad, ...good] = jobs;
    const [first, second] = [good.slice(0, 30), good.slice(30)];

    // Concurrent transitions of 30 jobs commit together (one or two transactions, not thirty).
    const batched = await Promise.all(first.map((j) => cancel(j.id)));
    expect(batched.map((j) => j?.state)).toEqual(first.map(() => 'CANCELLED'));
    expect(await writers(first.map((j) => j.id))).toBeLessThanOrEqual(2);

    // A request that fails shares a batch with good ones: it fails alone, they all land, and a second
    // move of a job already moved in the batch sees the first and does nothing.
    const results = await Promise.allSettled([
      ...second.map((j) => cancel(j.id)),
      // Pays more than the job reserved.
      repo.transition({
        jobId: bad.id,
        from: ['QUEUED'],
        to: 'CANCELLED',
        eventType: 'job.cancelled',
        effect: { kind: 'settle', payments: [{ peerId: 'p', amount: bad.cost + 1n }], feeBps: 0 },
      }),
      cancel(second[0].id),
    ]);
    const moved = results.slice(0, second.length);
    expect(moved.every((r) => r.status === 'fulfilled' && r.value?.state === 'CANCELLED')).toBe(true);
    const failed = results[second.length];
    expect(failed.status).toBe('rejected');
    expect(String((failed as PromiseRejectedResult).reason)).toContain('more than its reservation');
    expect(results[second.length + 1]).toEqual({ status: 'fulfilled', value: null });

    const states = await db.query<{ state: string; n: string }>(
      'SELECT state::text, count(*)::text AS n FROM "Job" GROUP BY state ORDER BY state',
    );
    expect(states.rows).toEqual([
      { state: 'CANCELLED', n: String(good.length) },
      { state: 'QUEUED', n: '1' },
    ]);
    // One cancellation event per moved job, with the right states, and none for the failed one.
    const events = await db.query<{ jobId: string; fromState: string; toState: string }>(
      `SELECT "jobId"::text, "fromState"::text, "toState"::text FROM "JobEvent" WHERE type = 'job.cancelled'`,
    );
    expect(events.rows).toHaveLength(good.length);
    expect(new Set(events.rows.map((e) => e.jobId))).toEqual(new Set(good.map((j) => j.id)));
    expect(events.rows.every((e) => e.fromState === 'QUEUED' && e.toState === 'CANCELLED')).toBe(true);

    const after = (await api<AccountBody>(c.url, 'GET', '/v1/account', { key: c.devKey })).body;
    const released = good.reduce((sum, j) => sum + j.cost, 0n);
    expect(BigInt(after.balance) - BigInt(before.balance)).toBe(released);
    expect(BigInt(before.reserved) - BigInt(after.reserved)).toBe(released);
    const total = await db.query<{ sum: string }>(
      'SELECT COALESCE(SUM(amount), 0)::text AS sum FROM "LedgerEntry"',
    );
    expect(total.rows[0].sum).toBe('0');
    const mismatched = await db.query(
      `SELECT b.account FROM "LedgerBalance" b
         LEFT JOIN (SELECT account, SUM(amount) AS s FROM "LedgerEntry" GROUP BY account) e ON e.account = b.account
        WHERE b.balance <> COALESCE(e.s, 0)`,
    );
    expect(mismatched.rows).toEqual([]);
  });
});
