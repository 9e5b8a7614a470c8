// Fault tests with real processes (issue 8): the coordinator's API and worker as separate processes,
// two agent processes, PostgreSQL and Redis behind fault proxies. Under a steady stream of job
// submissions we kill -9 an agent mid-job, the worker and the API (and restart them), restart Redis
// and PostgreSQL (every connection dropped, new ones refused for a while), and cut an agent off so
// it comes back late. Then every accepted job must end exactly once: none lost, none completed or
// paid twice, no ledger entry lost or doubled, every reservation released or spent.
// `npm run bench -- --only chaos` runs the same at 10,000 jobs with faults at random.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditDatabase, Cluster } from '../../bench/support/cluster.js';
import { submitUntil, waitAllFinished } from '../../bench/support/load.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { TEST_REDIS_URL } from '../helpers/coordinator.js';
import { assertBuilt } from '../helpers/processes.js';

let db: TestDatabase;
let cluster: Cluster;
const log: string[] = [];

beforeAll(async () => {
  assertBuilt();
  db = await createTestDatabase();
  cluster = new Cluster({
    databaseUrl: db.url,
    redisUrl: TEST_REDIS_URL,
    agents: 2,
    log: (l) => log.push(l),
  });
  await cluster.start();
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
  await db?.drop();
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('faults under load', () => {
  it('loses no job and pays none twice through agent, worker, API, Redis and PostgreSQL failures', async () => {
    const load = submitUntil(cluster, { concurrency: 4, ratePerSecond: 5, total: 200 });
    await pause(1_500);

    const faults = (process.env.FAULTS ?? 'agent,worker,api,redis,postgres,cutoff').split(',');
    if (faults.includes('agent')) {
      await cluster.kill(cluster.agents[0]); // mid-job: it holds offers
      await pause(1_000);
      await cluster.startAgent(0);
    }
    if (faults.includes('worker')) {
      await cluster.kill(cluster.worker);
      await pause(1_000);
      await cluster.startWorker();
    }
    if (faults.includes('api')) {
      await cluster.kill(cluster.api); // submissions fail meanwhile and are retried with their key
      await pause(500);
      await cluster.startApi();
    }
    if (faults.includes('redis')) {
      log.push('restart redis');
      cluster.redisProxy.cut(1_500);
      await pause(3_000);
    }
    if (faults.includes('postgres')) {
      log.push('restart postgresql');
      cluster.pgProxy.cut(1_500);
      await pause(3_000);
    }
    if (faults.includes('cutoff')) {
      await cluster.freeze(cluster.agents[1], 4_000); // cut off, then it returns late
      await pause(1_000);
    }

    const submitted = await load.stop();
    expect(submitted.accepted.length).toBeGreaterThan(10);
    await waitAllFinished(cluster, db.url, 120_000);

    const audit = await auditDatabase(db.url);
    console.info(`[faults] ${log.join(' → ')}\n[faults] ${JSON.stringify({ ...submitted.counts, audit })}`);
    // Nothing lost: every submission the API accepted is a job, and every job finished.
    expect(audit.jobs).toBe(submitted.accepted.length);
    expect(audit.open).toBe(0);
    expect(audit.byState.COMPLETED).toBe(audit.jobs);
    // Nothing doubled, everything settled, the ledger balances to the base unit.
    expect(audit).toMatchObject({
      completedTwice: 0,
      paidTwice: 0,
      unsettled: 0,
      ledgerSum: '0',
      balanceMismatches: 0,
      strandedReservation: '0',
    });
  }, 300_000);
});
