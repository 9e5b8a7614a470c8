// The whole path with real processes: a coordinator (real PostgreSQL + Redis) and 2 agent processes.
// Tiny matmul jobs go through REST → PostgreSQL → BullMQ → scheduler → libp2p offer → agent worker
// thread → signed receipt → verification → ledger. Latency is submit-to-result, taken from the
// coordinator's own timestamps (Job.createdAt → Job.finishedAt). The load runs twice: one job a
// request, then the same number of jobs BENCH_E2E_BATCH_SUBMIT a request (POST /v1/jobs/batch,
// figures prefixed batchedSubmit). Also: advert propagation over
// gossipsub with 20 agents on loopback (in-process libp2p nodes).
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Wallet } from 'ethers';
import { createPeerBinding, encodeTensor, signPayload } from '@gpumesh/protocol';
import {
  createGpumeshNode,
  nodePeerId,
  startGossip,
  type GossipService,
  type GpumeshNode,
} from '@gpumesh/p2p';
import {
  BENCH_REDIS_URL,
  createBenchDatabase,
  deleteRedisPrefix,
  httpJson,
  percentile,
  round,
} from './support.js';
import { cpuMeter, processWriteCalls } from './support/cpu.js';

const JOBS = Number(process.env.BENCH_E2E_JOBS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_E2E_CONCURRENCY ?? 64);
const GOSSIP_AGENTS = 20;
/** Jobs submitted one at a time (each after the previous one's result) for the unloaded latency. */
/** BENCH_E2E_TRACE=1: print where the jobs' time went, phase by phase (0 or unset: do not). */
const TRACE = !['', '0', 'false'].includes(process.env.BENCH_E2E_TRACE ?? '');
/** Jobs run unmeasured after the cold phase, so the measured phases see a warmed-up coordinator. */
const WARMUP_JOBS = Number(process.env.BENCH_E2E_WARMUP_JOBS ?? 3000);
const SEQUENTIAL_JOBS = Number(process.env.BENCH_E2E_SEQUENTIAL_JOBS ?? 100);
/** Seconds the processes are watched with no job at all, before the unloaded phase. */
const IDLE_SECONDS = Number(process.env.BENCH_E2E_IDLE_SECONDS ?? 3);
/** Jobs a request in the second load phase (POST /v1/jobs/batch); its clients: CONCURRENCY / this. */
const BATCH_SUBMIT = Number(process.env.BENCH_E2E_BATCH_SUBMIT ?? 16);
/**
 * Jobs an agent holds per executor (`gpumesh-agent init --jobs-per-slot`). The agents here are set up
 * for a stream of tiny jobs: a deep queue lets offers travel in batches (the agent default, 4, suits
 * mixed work; `BENCH_JOBS_PER_SLOT=4` measures it).
 */
const JOBS_PER_SLOT = Number(process.env.BENCH_JOBS_PER_SLOT ?? 32);

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const coordinatorMain = join(root, 'apps', 'coordinator', 'src', 'main.js');
// The agent builds into its own package (apps/provider-agent/dist), beside the root's dist/.
const agentMain = join(root, '..', 'apps', 'provider-agent', 'dist', 'main.js');

function start(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
): Promise<{ child: ChildProcess; out: () => string }> {
  // BENCH_NODE_ARGS / BENCH_AGENT_NODE_ARGS: extra node flags (e.g. --cpu-prof) for the coordinator / agents.
  const flags = script === coordinatorMain ? process.env.BENCH_NODE_ARGS : process.env.BENCH_AGENT_NODE_ARGS;
  const nodeArgs = (flags ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready:\n${out}`)), 90_000);
    child.stdout?.on('data', () => {
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ child, out: () => out });
      }
    });
    child.on('exit', (code) => reject(new Error(`${script} exited ${code}:\n${out}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGINT');
  });
}

function tinySpec(i: number): Record<string, unknown> {
  return {
    version: 1,
    kind: 'matmul',
    inputs: [
      encodeTensor('a', 'float32', [2, 2], Float32Array.from([1, 2, 3, i % 7])),
      encodeTensor('b', 'float32', [2, 2], Float32Array.from([5, 6, 7, 8])),
    ],
    maxPricePerUnit: '1',
    deadlineSeconds: 600,
  };
}

async function endToEnd(): Promise<Record<string, number>> {
  const db = await createBenchDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'gpumesh-bench-'));
  const prefix = `benche2e${randomBytes(4).toString('hex')}`;
  const children: ChildProcess[] = [];
  try {
    const coordinator = await start(
      coordinatorMain,
      ['--dev', '--agents', '0', '--port', '0', '--data-dir', join(dir, 'c')],
      {
        ...process.env,
        DATABASE_URL: db.url,
        REDIS_URL: BENCH_REDIS_URL,
        QUEUE_PREFIX: prefix,
        LOG_LEVEL: 'warn',
        WORKER_CONCURRENCY: '200',
        RATE_LIMIT_PER_IP: '0',
        RATE_LIMIT_PER_KEY: '0',
        // The bench's own agents stake nothing: on the dev chain stake would gate them all out
        // (`npm start`'s agents stake at boot; these are started here, after it).
        MIN_PROVIDER_STAKE: '0',
        STAKE_PER_INFLIGHT_VALUE: '0',
      },
      /gpumesh ready/,
    );
    children.push(coordinator.child);
    const url = /API\s+(http:\/\/\S+)\/v1/.exec(coordinator.out())?.[1] ?? '';
    const key = /dev key\s+(gmk_\S+)/.exec(coordinator.out())?.[1] ?? '';
    const env = { ...process.env, GPUMESH_AGENT_PASSPHRASE: 'bench-passphrase' };
    for (const n of [1, 2]) {
      const dataDir = join(dir, `agent-${n}`);
      await start(
        agentMain,
        [
          'init',
          '--coordinator',
          url,
          '--data-dir',
          dataDir,
          '--light-kdf',
          '--slots',
          '1',
          '--backend',
          'wasm',
          '--jobs-per-slot',
          String(JOBS_PER_SLOT),
        ],
        env,
        /created/,
      );
      const agent = await start(
        agentMain,
        ['start', '--data-dir', dataDir, '--log-level', 'warn'],
        env,
        /gpumesh-agent ready/,
      );
      children.push(agent.child);
    }
    const base = new URL(url);
    const http = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    for (let i = 0; i < 100; i++) {
      const res = await httpJson(http, base, 'GET', '/v1/providers', {});
      if ((JSON.parse(res.body) as unknown[]).length >= 2) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const headers = { authorization: `Bearer ${key}` };
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const agentPids = children.slice(1).map((c) => c.pid);
    /** BENCH_E2E_TRACE: where these jobs' time went, each event's mean delay after the job was created. */
    const traceEvents = async (label: string, ids: string[]): Promise<void> => {
      const trace = await client.query<{ type: string; ms: number }>(
        `SELECT type, AVG(EXTRACT(EPOCH FROM (e."createdAt" - j."createdAt")) * 1000)::float AS ms
           FROM "JobEvent" e JOIN "Job" j ON j.id = e."jobId" WHERE j.id = ANY($1::uuid[])
          GROUP BY type ORDER BY ms`,
        [ids],
      );
      console.error(label, trace.rows);
    };
    /** Write system calls so far: the coordinator's and the agents' together. */
    const writeCalls = (): { coordinator: number; agents: number } => ({
      coordinator: processWriteCalls(coordinator.child.pid),
      agents: agentPids.reduce<number>((sum, pid) => sum + processWriteCalls(pid), 0),
    });
    const commits = async (): Promise<number> =>
      Number(
        (
          await client.query<{ n: string }>(
            `SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()`,
          )
        ).rows[0].n,
      );

    /** `total` tiny jobs from CONCURRENCY clients, one job a request or `batch` a request (POST /v1/jobs/batch). */
    const load = async (batch: number, total: number): Promise<Record<string, number>> => {
      const commitsBefore = await commits();
      const writesBefore = writeCalls();
      const loadStarted = performance.now();
      const meter = cpuMeter([
        { name: 'coordinatorCores', pids: () => [coordinator.child.pid] },
        { name: 'agentCores', pids: () => agentPids },
        { name: 'loadGeneratorCores', pids: () => [process.pid] },
      ]);
      const clients = batch > 1 ? Math.max(1, Math.ceil(CONCURRENCY / batch)) : CONCURRENCY;
      const loadHttp = new Agent({ keepAlive: true, maxSockets: clients });
      let next = 0;
      let failures = 0;
      const submitted: string[] = [];
      await Promise.all(
        Array.from({ length: clients }, async () => {
          for (;;) {
            const from = next;
            next += batch;
            if (from >= total) return;
            const count = Math.min(batch, total - from);
            if (batch === 1) {
              const res = await httpJson(
                loadHttp,
                base,
                'POST',
                '/v1/jobs',
                headers,
                JSON.stringify(tinySpec(from)),
              );
              if (res.status === 201) submitted.push((JSON.parse(res.body) as { id: string }).id);
              else failures += 1;
              continue;
            }
            const jobs = Array.from({ length: count }, (_, k) => tinySpec(from + k));
            const res = await httpJson(
              loadHttp,
              base,
              'POST',
              '/v1/jobs/batch',
              headers,
              JSON.stringify({ jobs }),
            );
            if (res.status !== 201) {
              failures += count;
              continue;
            }
            for (const item of (JSON.parse(res.body) as { items: { job?: { id: string } }[] }).items) {
              if (item.job) submitted.push(item.job.id);
              else failures += 1;
            }
          }
        }),
      );
      loadHttp.destroy();
      const deadline = Date.now() + 300_000;
      let rows: { ms: number; created: Date; finished: Date; state: string }[] = [];
      for (;;) {
        rows = (
          await client.query<{ ms: number; created: Date; finished: Date; state: string }>(
            `SELECT EXTRACT(EPOCH FROM ("finishedAt" - "createdAt")) * 1000 AS ms, "createdAt" AS created,
                    "finishedAt" AS finished, state::text AS state FROM "Job"
              WHERE "finishedAt" IS NOT NULL AND id = ANY($1::uuid[])`,
            [submitted],
          )
        ).rows;
        if (rows.length >= submitted.length || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      if (TRACE) await traceEvents(`under load, ${batch} a request`, submitted);
      const cores = meter.stop();
      const writesAfter = writeCalls();
      const loadSeconds = (performance.now() - loadStarted) / 1000; // the window the meter saw
      // Every statement outside a transaction counts as one (pg_stat_database, flushed within ~1 s).
      await new Promise((r) => setTimeout(r, 1_500));
      const databaseCommitsPerJob = round((await commits()) - commitsBefore) / Math.max(1, submitted.length);
      // CPU milliseconds per job: what bounds jobs/s once the machine is busy (2 cores here).
      const n = Math.max(1, submitted.length);
      const perJob = (c: number): number =>
        round((c * loadSeconds * 1000) / Math.max(1, submitted.length), 2);
      const latencies = rows.map((r) => Number(r.ms)).sort((a, b) => a - b);
      const first = Math.min(...rows.map((r) => r.created.getTime()));
      const last = Math.max(...rows.map((r) => r.finished.getTime()));
      return {
        jobs: submitted.length,
        completed: rows.filter((r) => r.state === 'COMPLETED').length,
        submitFailures: failures,
        endToEndJobsPerSecond: round(rows.length / ((last - first) / 1000), 1),
        p50SubmitToResultMs: round(percentile(latencies, 50)),
        p99SubmitToResultMs: round(percentile(latencies, 99)),
        ...cores,
        coordinatorCpuMsPerJob: perJob(cores.coordinatorCores),
        agentsCpuMsPerJob: perJob(cores.agentCores),
        otherCpuMsPerJob: perJob(cores.other), // PostgreSQL, Redis, the kernel, anything else running
        // Of "other": the database's and Redis's own processes.
        postgresCpuMsPerJob: perJob(meter.otherByCommand().postgres ?? 0),
        redisCpuMsPerJob: perJob(meter.otherByCommand()['redis-server'] ?? 0),
        databaseCommitsPerJob: round(databaseCommitsPerJob, 2),
        coordinatorWritesPerJob: round((writesAfter.coordinator - writesBefore.coordinator) / n, 2),
        agentsWritesPerJob: round((writesAfter.agents - writesBefore.agents) / n, 2),
      };
    };
    // A freshly started coordinator runs its first jobs in code V8 has not optimised yet: the first
    // phase is reported as `cold*`, then WARMUP_JOBS more jobs run unmeasured, as a coordinator that
    // has been up for a while would have, before the idle, unloaded and loaded phases.
    const cold = await load(1, JOBS);
    await load(1, WARMUP_JOBS);
    // Idle: what the processes cost with no job at all (timers, heartbeats, pollers), in cores.
    const idleMeter = cpuMeter([
      { name: 'coordinator', pids: () => [coordinator.child.pid] },
      { name: 'agents', pids: () => agentPids },
    ]);
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    const idleCores = idleMeter.stop();
    // Unloaded: one job at a time, the next submitted once the previous one has its result.
    const sequential: number[] = [];
    const sequentialIds: string[] = [];
    const sequentialStarted = performance.now();
    const sequentialWritesBefore = writeCalls();
    const sequentialMeter = cpuMeter([
      { name: 'coordinator', pids: () => [coordinator.child.pid] },
      { name: 'agents', pids: () => agentPids },
      { name: 'loadGenerator', pids: () => [process.pid] },
    ]);
    for (let i = 0; i < SEQUENTIAL_JOBS; i++) {
      const res = await httpJson(http, base, 'POST', '/v1/jobs', headers, JSON.stringify(tinySpec(i)));
      if (res.status !== 201) throw new Error(`sequential submit failed: ${res.status} ${res.body}`);
      const id = (JSON.parse(res.body) as { id: string }).id;
      sequentialIds.push(id);
      for (const until = Date.now() + 30_000; Date.now() < until;) {
        const { rows } = await client.query<{ ms: number | null }>(
          `SELECT EXTRACT(EPOCH FROM ("finishedAt" - "createdAt")) * 1000 AS ms FROM "Job" WHERE id = $1`,
          [id],
        );
        if (rows[0]?.ms !== null && rows[0]?.ms !== undefined) {
          sequential.push(Number(rows[0].ms));
          break;
        }
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    // CPU milliseconds a job takes in each process when nothing is shared between jobs (no batching).
    const sequentialCores = sequentialMeter.stop();
    const sequentialWritesAfter = writeCalls();
    if (TRACE) {
      await traceEvents('one at a time', sequentialIds);
      const attempts = await client.query(
        `SELECT AVG(EXTRACT(EPOCH FROM (a."offeredAt" - j."createdAt")) * 1000)::float AS offered,
                AVG(EXTRACT(EPOCH FROM (a."startedAt" - j."createdAt")) * 1000)::float AS started,
                AVG((a.receipt->'payload'->>'finishedAt')::float - EXTRACT(EPOCH FROM j."createdAt") * 1000)::float AS "agentFinished",
                AVG((a.receipt->'payload'->'timings'->>'queuedMs')::float) AS "agentQueuedMs",
                AVG((a.receipt->'payload'->'timings'->>'runMs')::float) AS "agentRunMs",
                AVG((a.receipt->'payload'->'timings'->>'totalMs')::float) AS "agentTotalMs",
                AVG(EXTRACT(EPOCH FROM (a."finishedAt" - j."createdAt")) * 1000)::float AS "attemptFinished",
                AVG(EXTRACT(EPOCH FROM (j."finishedAt" - j."createdAt")) * 1000)::float AS "jobFinished"
           FROM "JobAttempt" a JOIN "Job" j ON j.id = a."jobId"
          WHERE a.receipt IS NOT NULL AND j.id = ANY($1::uuid[])`,
        [sequentialIds],
      );
      console.error('one at a time, attempts (ms after the job was created)', attempts.rows);
    }
    const sequentialSeconds = (performance.now() - sequentialStarted) / 1000;
    const unloadedCpu = Object.fromEntries(
      ['coordinator', 'agents', 'other'].map((name) => [
        `unloaded${name[0].toUpperCase()}${name.slice(1)}CpuMsPerJob`,
        round(((sequentialCores[name] ?? 0) * sequentialSeconds * 1000) / Math.max(1, sequential.length), 2),
      ]),
    );
    sequential.sort((a, b) => a - b);
    const single = await load(1, JOBS);
    // The same jobs submitted BATCH_SUBMIT to a request (what a client with many tiny jobs would do).
    const batched = await load(BATCH_SUBMIT, JOBS);
    http.destroy();
    await client.end();
    const prefixed = Object.fromEntries(
      Object.entries(batched).map(([k, v]) => [`batchedSubmit${k[0].toUpperCase()}${k.slice(1)}`, v]),
    );
    return {
      ...single,
      sequentialJobs: sequential.length,
      unloadedP50SubmitToResultMs: round(percentile(sequential, 50)),
      unloadedP99SubmitToResultMs: round(percentile(sequential, 99)),
      ...unloadedCpu,
      unloadedCoordinatorWritesPerJob: round(
        (sequentialWritesAfter.coordinator - sequentialWritesBefore.coordinator) /
          Math.max(1, sequential.length),
        2,
      ),
      unloadedAgentsWritesPerJob: round(
        (sequentialWritesAfter.agents - sequentialWritesBefore.agents) / Math.max(1, sequential.length),
        2,
      ),
      idleSeconds: IDLE_SECONDS,
      idleCoordinatorCores: idleCores.coordinator,
      idleAgentCores: idleCores.agents,
      idleOtherCores: idleCores.other,
      jobsPerBatchSubmit: BATCH_SUBMIT,
      ...prefixed,
      coldEndToEndJobsPerSecond: cold.endToEndJobsPerSecond,
      coldP50SubmitToResultMs: cold.p50SubmitToResultMs,
      coldCoordinatorCpuMsPerJob: cold.coordinatorCpuMsPerJob,
      coldAgentsCpuMsPerJob: cold.agentsCpuMsPerJob,
      coldOtherCpuMsPerJob: cold.otherCpuMsPerJob,
      warmupJobs: WARMUP_JOBS,
    };
  } finally {
    for (const child of children.reverse()) await stop(child);
    await db.drop();
    await deleteRedisPrefix(prefix).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

async function advertPropagation(): Promise<Record<string, number>> {
  const hub = await createGpumeshNode();
  const hubAddr = hub.getMultiaddrs().map((a) => a.toString());
  const nodes: GpumeshNode[] = [];
  const services: GossipService[] = [];
  const delays: number[] = [];
  const sentAt = new Map<string, number>();
  // The hub plays the coordinator: the figure is how fast every agent's advert reaches it.
  const onAdvert = (signed: { payload: { peerId: string; seq: number } }): void => {
    const t = sentAt.get(`${signed.payload.peerId}#${signed.payload.seq}`);
    if (t !== undefined) delays.push(performance.now() - t);
  };
  services.push(startGossip(hub, { handlers: { advert: onAdvert } }));
  try {
    for (let i = 0; i < GOSSIP_AGENTS; i++) {
      const node = await createGpumeshNode({ bootstrap: hubAddr });
      nodes.push(node);
      services.push(startGossip(node, {}));
    }
    await new Promise((r) => setTimeout(r, 3_000)); // mesh formation (gossipsub heartbeats)
    const wallets = nodes.map(() => Wallet.createRandom());
    const bindings = await Promise.all(nodes.map((n, i) => createPeerBinding(wallets[i], nodePeerId(n))));
    for (let round = 1; round <= 5; round++) {
      await Promise.all(
        nodes.map(async (node, i) => {
          const now = Date.now();
          const peerId = nodePeerId(node);
          const advert = await signPayload(
            'advert',
            {
              version: 1,
              peerId,
              address: wallets[i].address.toLowerCase(),
              operatorId: `op${i}`,
              seq: round,
              issuedAt: now,
              expiresAt: now + 60_000,
              backend: 'wasm',
              gpus: [],
              gflops: 20,
              pricePerUnit: '1',
              slots: 1,
              freeSlots: 1,
              binding: bindings[i],
            },
            wallets[i],
          );
          sentAt.set(`${peerId}#${round}`, performance.now());
          await services[i + 1].publishAdvert(advert);
        }),
      );
      await new Promise((r) => setTimeout(r, 1_000));
    }
    delays.sort((a, b) => a - b);
    const expected = GOSSIP_AGENTS * 5; // every advert of every round at the hub
    return {
      gossipAgents: GOSSIP_AGENTS,
      advertDeliveries: delays.length,
      advertDeliveryShare: round(delays.length / expected, 3),
      advertPropagationP50Ms: round(percentile(delays, 50)),
      advertPropagationP99Ms: round(percentile(delays, 99)),
    };
  } finally {
    for (const s of services) s.stop();
    await Promise.all([hub, ...nodes].map((n) => n.stop()));
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const gossip = await advertPropagation();
  const e2e = await endToEnd();
  return { ...e2e, ...gossip, agents: 2, jobsPerSlot: JOBS_PER_SLOT, concurrency: CONCURRENCY };
}
