// Scale-out with real processes: two coordinator processes (`--role all`, API + worker each) on the
// same PostgreSQL and Redis, the same two agents dialing both workers, submissions spread over both
// APIs. Both place jobs, every job completes once, none is placed twice (two attempts open at once),
// completed twice or paid twice, and the ledger balances. `npm run bench -- --only scaleout` measures
// jobs/s with one coordinator against two.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditDatabase, auditPlacements, Cluster } from '../../bench/support/cluster.js';
import { submitUntil, waitAllFinished } from '../../bench/support/load.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { TEST_REDIS_URL } from '../helpers/coordinator.js';
import { assertBuilt } from '../helpers/processes.js';

const JOBS = Number(process.env.SCALE_OUT_JOBS ?? 120);

let db: TestDatabase;
let cluster: Cluster;

/** Jobs a coordinator process placed, from its own /metrics. */
async function placed(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^gpumesh_dispatch_attempts_total\{outcome="dispatched"\} (\d+)/m.exec(text)?.[1] ?? 0);
}

beforeAll(async () => {
  assertBuilt();
  db = await createTestDatabase();
  cluster = new Cluster({ databaseUrl: db.url, redisUrl: TEST_REDIS_URL, agents: 2, roleAll: true });
  await cluster.start();
  await cluster.addCoordinator('all');
  // Agents read the coordinator's workers from GET /v1/network when they start.
  for (let n = 0; n < cluster.agents.length; n++) await cluster.restartAgent(n);
}, 240_000);

afterAll(async () => {
  await cluster?.stop();
  await db?.drop();
});

describe('two coordinators on one PostgreSQL and Redis', () => {
  it('share the work: every job placed once, completed once, paid once', async () => {
    const urls = cluster.apiUrls();
    expect(urls).toHaveLength(2);
    const load = submitUntil(cluster, { concurrency: 8, total: JOBS, apiUrls: () => urls });
    const submitted = await load.finished();
    expect(submitted.accepted).toHaveLength(JOBS);
    await waitAllFinished(cluster, db.url, 180_000);

    const byCoordinator = await Promise.all(urls.map(placed));
    const audit = await auditDatabase(db.url);
    const placements = await auditPlacements(db.url);
    console.info(
      `[scale-out] placed by each coordinator ${byCoordinator.join(' + ')}; ${JSON.stringify(placements)}`,
    );
    // Both workers took jobs from the shared queue.
    for (const n of byCoordinator) expect(n).toBeGreaterThan(0);
    expect(audit.jobs).toBe(JOBS);
    expect(audit.byState.COMPLETED).toBe(JOBS);
    expect(placements).toMatchObject({ placedTwice: 0, succeededTwice: 0 });
    expect(audit).toMatchObject({
      open: 0,
      completedTwice: 0,
      paidTwice: 0,
      unsettled: 0,
      ledgerSum: '0',
      balanceMismatches: 0,
      strandedReservation: '0',
    });
  }, 300_000);
});
