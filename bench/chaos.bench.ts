// Chaos: 10,000 tiny jobs (BENCH_CHAOS_JOBS) through a marketplace of real processes while faults
// are injected at random every few seconds: kill -9 of an agent, the worker or the API (each
// restarted), a Redis or PostgreSQL restart (connections dropped, new ones refused for a while), an
// agent cut off and returning late. Prints how many jobs were lost, completed twice or paid twice,
// and whether the ledger still balances; all must be 0.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { auditDatabase, Cluster } from './support/cluster.js';
import { submitUntil, waitAllFinished } from './support/load.js';
import { BENCH_REDIS_URL, createBenchDatabase, round } from './support.js';

const JOBS = Number(process.env.BENCH_CHAOS_JOBS ?? 10_000);
/** Seconds between faults: uniformly in [MIN, MAX]. */
const FAULT_EVERY_MIN_S = Number(process.env.BENCH_CHAOS_MIN_S ?? 4);
const FAULT_EVERY_MAX_S = Number(process.env.BENCH_CHAOS_MAX_S ?? 10);

const FAULTS = ['agent', 'worker', 'api', 'redis', 'postgres', 'cutoff'] as const;
type Fault = (typeof FAULTS)[number];

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function inject(cluster: Cluster, fault: Fault): Promise<void> {
  switch (fault) {
    case 'agent': {
      const n = Math.floor(Math.random() * cluster.agents.length);
      await cluster.kill(cluster.agents[n]);
      await pause(500);
      await cluster.startAgent(n);
      return;
    }
    case 'worker':
      await cluster.kill(cluster.worker);
      await pause(500);
      await cluster.startWorker();
      return;
    case 'api':
      await cluster.kill(cluster.api);
      await pause(500);
      await cluster.startApi();
      return;
    case 'redis':
      cluster.redisProxy.cut(1_000 + Math.random() * 2_000);
      return;
    case 'postgres':
      cluster.pgProxy.cut(1_000 + Math.random() * 2_000);
      return;
    case 'cutoff':
      await cluster.freeze(
        cluster.agents[Math.floor(Math.random() * cluster.agents.length)],
        2_000 + Math.random() * 4_000,
      );
      return;
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const db = await createBenchDatabase();
  const cluster = new Cluster({
    databaseUrl: db.url,
    redisUrl: BENCH_REDIS_URL,
    agents: 2,
    log: (line) => console.error(`chaos: ${line}`),
  });
  const injected: Record<Fault, number> = { agent: 0, worker: 0, api: 0, redis: 0, postgres: 0, cutoff: 0 };
  try {
    await cluster.start();
    const started = Date.now();
    const load = submitUntil(cluster, {
      concurrency: 16,
      total: JOBS,
      runId: randomBytes(4).toString('hex'),
    });
    let submitting = true;
    const chaos = (async () => {
      while (submitting) {
        await pause((FAULT_EVERY_MIN_S + Math.random() * (FAULT_EVERY_MAX_S - FAULT_EVERY_MIN_S)) * 1000);
        if (!submitting) return;
        const fault = FAULTS[Math.floor(Math.random() * FAULTS.length)];
        injected[fault] += 1;
        await inject(cluster, fault);
      }
    })();
    const submitted = await load.finished();
    submitting = false;
    await chaos;
    await waitAllFinished(cluster, db.url, 30 * 60_000);
    const seconds = (Date.now() - started) / 1000;
    const audit = await auditDatabase(db.url);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const found = await client.query<{ id: string }>(
      `SELECT id::text FROM "Job" WHERE id = ANY($1::uuid[])`,
      [submitted.accepted],
    );
    await client.end();
    return {
      jobs: JOBS,
      accepted: submitted.accepted.length,
      submitRetries: submitted.counts.retries,
      faultsInjected: injected,
      lost: submitted.accepted.length - found.rows.length + audit.open,
      notCompleted: audit.jobs - (audit.byState.COMPLETED ?? 0),
      completedTwice: audit.completedTwice,
      paidTwice: audit.paidTwice,
      unsettled: audit.unsettled,
      ledgerSum: audit.ledgerSum,
      balanceMismatches: audit.balanceMismatches,
      strandedReservation: audit.strandedReservation,
      jobsPerSecondThroughFaults: round(audit.jobs / seconds, 1),
    };
  } finally {
    await cluster.stop();
    await db.drop();
  }
}
