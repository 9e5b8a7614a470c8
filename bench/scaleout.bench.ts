// Scale-out: jobs/s with one coordinator process and with two, in one run, with the same agents and
// the same job count. Both coordinators are `--role all` (API + worker) processes on the same
// PostgreSQL and Redis; submissions are spread over their APIs as a load balancer would. Each phase
// submits BENCH_SCALEOUT_JOBS tiny jobs at once and is timed from the first submission to the last
// job finished. Then the database is audited: no job placed twice (two attempts open at once),
// completed twice or paid twice, and the ledger balances. Where the CPU went in each phase (cores
// used by the coordinators, the agents, the load generator, and the rest: PostgreSQL, Redis, kernel)
// is measured from /proc, because on a 2-core machine that decides whether a second process helps.
import { randomBytes } from 'node:crypto';
import { auditDatabase, auditPlacements, Cluster } from './support/cluster.js';
import { cpuMeter } from './support/cpu.js';
import { sampleActivity, type PgActivity } from './support/pg-activity.js';
import { submitUntil, waitAllFinished } from './support/load.js';
import { BENCH_REDIS_URL, createBenchDatabase, round } from './support.js';

const JOBS = Number(process.env.BENCH_SCALEOUT_JOBS ?? 1500);
const AGENTS = Number(process.env.BENCH_SCALEOUT_AGENTS ?? 4);
const WARMUP = Number(process.env.BENCH_SCALEOUT_WARMUP ?? 150);
const CONCURRENCY = Number(process.env.BENCH_SCALEOUT_CONCURRENCY ?? 16);
/** Node flags for the coordinator processes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
const NODE_ARGS = (process.env.BENCH_SCALEOUT_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** `gpumesh_dispatch_attempts_total{outcome="dispatched"}` of one coordinator process. */
async function dispatched(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^gpumesh_dispatch_attempts_total\{outcome="dispatched"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

interface Phase {
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
  /** Jobs each coordinator placed in this phase. */
  placedBy: number[];
  cores: Record<string, number>;
  /** The "other" cores by command (PostgreSQL, Redis, anything else running on the machine). */
  otherByCommand: Record<string, number>;
  /** PostgreSQL sessions by state (running, waiting on a lock or I/O, idle in a transaction). */
  database: PgActivity;
}

async function phase(
  cluster: Cluster,
  databaseUrl: string,
  urls: string[],
  jobs: number,
  label: string,
): Promise<Phase> {
  const before = await Promise.all(urls.map(dispatched));
  const meter = cpuMeter([
    { name: 'coordinators', pids: () => cluster.coordinators().map((p) => p.child.pid) },
    { name: 'agents', pids: () => cluster.agents.map((p) => p.child.pid) },
    { name: 'loadGenerator', pids: () => [process.pid] },
  ]);
  const activity = sampleActivity(databaseUrl);
  const started = performance.now();
  const load = submitUntil(cluster, {
    concurrency: CONCURRENCY,
    total: jobs,
    runId: `${label}-${randomBytes(4).toString('hex')}`,
    apiUrls: () => urls,
  });
  const submitted = await load.finished();
  if (submitted.accepted.length !== jobs) {
    throw new Error(`${label}: ${submitted.accepted.length} of ${jobs} submissions accepted`);
  }
  await waitAllFinished(cluster, databaseUrl, 20 * 60_000);
  const seconds = (performance.now() - started) / 1000;
  const cores = meter.stop();
  const database = await activity.stop();
  const after = await Promise.all(urls.map(dispatched));
  return {
    jobs,
    seconds: round(seconds, 1),
    jobsPerSecond: round(jobs / seconds, 1),
    placedBy: after.map((n, i) => n - before[i]),
    cores,
    otherByCommand: meter.otherByCommand(),
    database,
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const db = await createBenchDatabase();
  const cluster = new Cluster({
    databaseUrl: db.url,
    redisUrl: BENCH_REDIS_URL,
    agents: AGENTS,
    roleAll: true,
    coordinatorNodeArgs: NODE_ARGS,
    // Production-like: every coordinator holds provider credits the same way (the first one runs
    // --dev for its keys, which would otherwise vest at once).
    env: { VERIFICATION_HOLD_SECONDS: '3600' },
    log: (line) => console.error(`scaleout: ${line}`),
  });
  try {
    await cluster.start();
    const one = [cluster.apiUrl];
    console.error(`scaleout: warm-up, then ${JOBS} jobs through one coordinator`);
    await phase(cluster, db.url, one, WARMUP, 'warm1');
    const single = await phase(cluster, db.url, one, JOBS, 'one');

    await cluster.addCoordinator('all');
    // The same agents, restarted so they dial both workers (they read GET /v1/network at start).
    for (let n = 0; n < cluster.agents.length; n++) await cluster.restartAgent(n);
    const two = cluster.apiUrls();
    console.error(`scaleout: warm-up, then ${JOBS} jobs through two coordinators`);
    await phase(cluster, db.url, two, WARMUP, 'warm2');
    const double = await phase(cluster, db.url, two, JOBS, 'two');

    const audit = await auditDatabase(db.url);
    const placements = await auditPlacements(db.url);
    return {
      jobsPerPhase: JOBS,
      agents: AGENTS,
      oneCoordinator: single,
      twoCoordinators: double,
      ratio: round(double.jobsPerSecond / single.jobsPerSecond, 2),
      audit: {
        jobs: audit.jobs,
        notCompleted: audit.jobs - (audit.byState.COMPLETED ?? 0),
        placedTwice: placements.placedTwice,
        dispatchedTwice: placements.dispatchedTwice,
        succeededTwice: placements.succeededTwice,
        failedAttempts: placements.failedAttempts,
        failureReasons: placements.failureReasons,
        completedTwice: audit.completedTwice,
        paidTwice: audit.paidTwice,
        unsettled: audit.unsettled,
        ledgerSum: audit.ledgerSum,
        balanceMismatches: audit.balanceMismatches,
        strandedReservation: audit.strandedReservation,
      },
    };
  } finally {
    await cluster.stop();
    await db.drop();
  }
}
