// Chaos: 10,000 tiny jobs (BENCH_CHAOS_JOBS) through a marketplace of real processes while faults
// are injected at random every few seconds: kill -9 of an agent, the worker or the API (each
// restarted), a Redis or PostgreSQL restart (connections dropped, new ones refused for a while), an
// agent cut off and returning late. Prints how many jobs were lost, completed twice or paid twice,
// and whether the ledger still balances; all must be 0. The money is on a real anvil chain (unless
// BENCH_CHAOS_CHAIN=0): the developer pays from an escrow deposit, the worker settles epochs, and at
// the end, once settlement is quiescent, every account's off-chain balance must equal its escrow
// balance on chain.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { auditDatabase, Cluster, type ClusterProcess } from './support/cluster.js';
import {
  benchSettlementEnv,
  settleAndCompare,
  startBenchChain,
  waitDepositsCredited,
  type BenchChain,
} from './support/chain.js';
import { submitUntil, waitAllFinished } from './support/load.js';
import { BENCH_REDIS_URL, createBenchDatabase, round } from './support.js';

const JOBS = Number(process.env.BENCH_CHAOS_JOBS ?? 10_000);
/** Seconds between faults: uniformly in [MIN, MAX]. */
const FAULT_EVERY_MIN_S = Number(process.env.BENCH_CHAOS_MIN_S ?? 4);
const FAULT_EVERY_MAX_S = Number(process.env.BENCH_CHAOS_MAX_S ?? 10);
/**
 * Submissions per second: near what the marketplace completes, so the jobs (and the faults on the
 * API) are spread over the whole run instead of all queued in the first seconds.
 */
const RATE = Number(process.env.BENCH_CHAOS_RATE ?? 40);
/**
 * Job deadline: submissions outpace what the marketplace completes through faults, so the backlog
 * of a 10,000-job run lasts longer than the usual 600 s (its tail would expire, not complete).
 */
const DEADLINE_S = Number(process.env.BENCH_CHAOS_DEADLINE_S ?? 3600);

const ALL_FAULTS = ['agent', 'worker', 'api', 'redis', 'postgres', 'cutoff'] as const;
type Fault = (typeof ALL_FAULTS)[number];
/** BENCH_CHAOS_FAULTS: a comma-separated subset to inject (default all). */
const FAULTS: readonly Fault[] = process.env.BENCH_CHAOS_FAULTS
  ? (process.env.BENCH_CHAOS_FAULTS.split(',').map((f) => f.trim()) as Fault[]).filter((f) =>
      (ALL_FAULTS as readonly string[]).includes(f),
    )
  : ALL_FAULTS;
/** BENCH_CHAOS_CHAIN=0: play money off chain (no anvil, no settlement), as before the chain check. */
const ON_CHAIN = process.env.BENCH_CHAOS_CHAIN !== '0';
/** Epoch length on chain: short, so epochs close, post and fund through the faults. */
const EPOCH_SECONDS = Number(process.env.BENCH_CHAOS_EPOCH_S ?? 15);
/** How long the end of the run may take to settle every epoch. */
const SETTLE_TIMEOUT_MS = Number(process.env.BENCH_CHAOS_SETTLE_TIMEOUT_S ?? 300) * 1000;
/** BENCH_CHAOS_LOGS: a directory to write every process's output to (killed ones included). */
const LOG_DIR = process.env.BENCH_CHAOS_LOGS;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Processes killed so far (their output goes to BENCH_CHAOS_LOGS too). */
const killed: ClusterProcess[] = [];

async function inject(cluster: Cluster, fault: Fault): Promise<void> {
  switch (fault) {
    case 'agent': {
      const n = Math.floor(Math.random() * cluster.agents.length);
      killed.push(cluster.agents[n]);
      await cluster.kill(cluster.agents[n]);
      await pause(500);
      await cluster.startAgent(n);
      return;
    }
    case 'worker':
      killed.push(cluster.worker);
      await cluster.kill(cluster.worker);
      await pause(500);
      await cluster.startWorker();
      return;
    case 'api':
      killed.push(cluster.api);
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
  const log = (line: string): void => console.error(`chaos: ${line}`);
  let chain: BenchChain | undefined;
  if (ON_CHAIN) {
    chain = await startBenchChain().catch(async (err: unknown) => {
      await db.drop();
      throw err;
    });
  }
  const cluster = new Cluster({
    databaseUrl: db.url,
    redisUrl: BENCH_REDIS_URL,
    agents: 2,
    env: chain ? benchSettlementEnv(chain, EPOCH_SECONDS) : undefined,
    log,
  });
  const injected: Record<Fault, number> = { agent: 0, worker: 0, api: 0, redis: 0, postgres: 0, cutoff: 0 };
  try {
    await cluster.start();
    // The dev developer (the API's dev key, anvil account 0) pays from its escrow deposit.
    if (chain) await waitDepositsCredited(chain, db.url);
    const started = Date.now();
    const load = submitUntil(cluster, {
      concurrency: 16,
      total: JOBS,
      ratePerSecond: RATE,
      deadlineSeconds: DEADLINE_S,
      runId: randomBytes(4).toString('hex'),
    });
    // Faults go on until every job has ended, not only while jobs are submitted: the queue drains
    // through them too.
    let done = false;
    let wake: () => void = () => undefined;
    const chaos = (async () => {
      while (!done) {
        const wait = (FAULT_EVERY_MIN_S + Math.random() * (FAULT_EVERY_MAX_S - FAULT_EVERY_MIN_S)) * 1000;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        if (done) return;
        const fault = FAULTS[Math.floor(Math.random() * FAULTS.length)];
        injected[fault] += 1;
        console.error(`chaos: t=${Math.round((Date.now() - started) / 1000)}s fault ${fault}`);
        await inject(cluster, fault);
      }
    })();
    // Progress every 5 s on stderr (and the slowest stretch in the figures): what each fault costs.
    const progress = new pg.Client({ connectionString: db.url });
    await progress.connect();
    const completedAt: [number, number][] = [];
    const sampler = setInterval(() => {
      void progress
        .query<{ state: string; n: number }>(
          'SELECT state::text, count(*)::int AS n FROM "Job" GROUP BY state',
        )
        .then((r) => {
          const by = Object.fromEntries(r.rows.map((x) => [x.state, x.n]));
          const t = Math.round((Date.now() - started) / 1000);
          completedAt.push([t, by.COMPLETED ?? 0]);
          console.error(`chaos: t=${t}s ${JSON.stringify(by)}`);
        })
        .catch(() => undefined);
    }, 5_000);
    const submitted = await load.finished();
    const submittedAt = Date.now();
    await waitAllFinished(cluster, db.url, 30 * 60_000);
    done = true;
    wake();
    await chaos;
    // The last fault may have struck as the last job ended: let any requeue settle, then re-check.
    await pause(2_000);
    await waitAllFinished(cluster, db.url, 10 * 60_000);
    const seconds = (Date.now() - started) / 1000;
    clearInterval(sampler);
    await progress.end();
    // The longest time no job completed while some were open (a fault's worst cost).
    let longestStallS = 0;
    for (let i = 1, since = 0; i < completedAt.length; i++) {
      if (completedAt[i][1] > completedAt[i - 1][1]) since = completedAt[i][0];
      else longestStallS = Math.max(longestStallS, completedAt[i][0] - since);
    }
    const audit = await auditDatabase(db.url);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const found = await client.query<{ id: string }>(
      `SELECT id::text FROM "Job" WHERE id = ANY($1::uuid[])`,
      [submitted.accepted],
    );
    await client.end();
    const onChain = chain ? await settleAndCompare(chain, db.url, SETTLE_TIMEOUT_MS, log) : undefined;
    return {
      jobs: JOBS,
      accepted: submitted.accepted.length,
      submitRetries: submitted.counts.retries,
      submitRejected: submitted.counts.rejected,
      submitSeconds: round((submittedAt - started) / 1000, 1),
      faultsInjected: injected,
      faultsTotal: Object.values(injected).reduce((a, n) => a + n, 0),
      lost: submitted.accepted.length - found.rows.length + audit.open,
      notCompleted: audit.jobs - (audit.byState.COMPLETED ?? 0),
      byState: audit.byState,
      completedTwice: audit.completedTwice,
      paidTwice: audit.paidTwice,
      unsettled: audit.unsettled,
      ledgerSum: audit.ledgerSum,
      balanceMismatches: audit.balanceMismatches,
      strandedReservation: audit.strandedReservation,
      seconds: round(seconds, 1),
      longestStallSeconds: longestStallS,
      jobsPerSecondThroughFaults: round(audit.jobs / seconds, 1),
      onChain: chain !== undefined,
      ...(onChain && {
        settledQuiescent: onChain.settled,
        settleSeconds: onChain.settleSeconds,
        offChainEqualsOnChain: onChain.offChainEqualsOnChain,
        largestDifferenceBaseUnits: onChain.largestDifferenceBaseUnits,
        unfundedBaseUnits: onChain.unfundedBaseUnits,
        fundedBaseUnits: onChain.fundedBaseUnits,
        epochsFinalized: onChain.epochsFinalized,
        accountsCompared: onChain.accountsCompared,
      }),
    };
  } finally {
    if (LOG_DIR) {
      await mkdir(LOG_DIR, { recursive: true });
      const all = [...killed, cluster.api, cluster.worker, ...cluster.agents].filter(Boolean);
      await Promise.all(
        all.map((p, i) => writeFile(join(LOG_DIR, `${String(i).padStart(3, '0')}-${p.name}.log`), p.output)),
      );
    }
    await cluster.stop();
    await chain?.stop();
    await db.drop();
  }
}
