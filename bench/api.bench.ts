// Job submissions per second through the real REST → PostgreSQL → BullMQ path, beside raw BullMQ
// addBulk on the same Redis in the same run. The coordinator runs as its own process (role api).
import { spawn } from 'node:child_process';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { encodeTensor } from '@gpumesh/protocol';
import {
  BENCH_REDIS_URL,
  createBenchDatabase,
  deleteRedisPrefix,
  httpJson,
  percentile,
  round,
} from './support.js';

const SUBMISSIONS = Number(process.env.BENCH_API_JOBS ?? 20_000);
const CONCURRENCY = Number(process.env.BENCH_API_CONCURRENCY ?? 64);
const WARMUP = 500;

const mainJs = join(
  fileURLToPath(new URL('.', import.meta.url)),
  '..',
  'apps',
  'coordinator',
  'src',
  'main.js',
);

function tinySpec(i: number): string {
  return JSON.stringify({
    version: 1,
    kind: 'matmul',
    inputs: [
      encodeTensor('a', 'float32', [2, 2], Float32Array.from([1, 2, 3, i % 7])),
      encodeTensor('b', 'float32', [2, 2], Float32Array.from([5, 6, 7, 8])),
    ],
    requirements: {},
    maxPricePerUnit: '1',
    deadlineSeconds: 3600,
  });
}

async function startApi(
  databaseUrl: string,
  prefix: string,
): Promise<{ url: URL; key: string; stop: () => Promise<void> }> {
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      mainJs,
      '--role',
      'api',
      '--agents',
      '0',
      '--port',
      '0',
      '--dev',
      '--data-dir',
      join('/tmp', prefix),
    ],
    {
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        REDIS_URL: BENCH_REDIS_URL,
        QUEUE_PREFIX: prefix,
        LOG_LEVEL: 'warn',
        SETTLEMENT_ENABLED: 'false',
        // 64 clients with one key from one IP at ~1,800 req/s: far beyond any production limit
        RATE_LIMIT_PER_IP: '0',
        RATE_LIMIT_PER_KEY: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`coordinator not ready:\n${out}`)), 60_000);
    child.stdout.on('data', () => {
      if (out.includes('gpumesh ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`coordinator exited ${code}:\n${out}`)));
  });
  const url = /API\s+(http:\/\/\S+)\/v1/.exec(out)?.[1];
  const key = /dev key\s+(gmk_\S+)/.exec(out)?.[1];
  if (!url || !key) throw new Error(`cannot read the banner:\n${out}`);
  return {
    url: new URL(url),
    key,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGINT');
      }),
  };
}

async function restSubmissions(url: URL, key: string): Promise<Record<string, number>> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const headers = { authorization: `Bearer ${key}` };
  const bodies = Array.from({ length: 64 }, (_, i) => tinySpec(i));
  let next = 0;
  const latencies: number[] = [];
  let failures = 0;
  const worker = async (count: number, record: boolean): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      const started = performance.now();
      const res = await httpJson(agent, url, 'POST', '/v1/jobs', headers, bodies[i % bodies.length]);
      if (res.status !== 201) failures += 1;
      if (record) latencies.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, () => worker(WARMUP, false)));
  next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, () => worker(SUBMISSIONS, true)));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    acceptedJobsPerSecond: round((SUBMISSIONS - failures) / seconds, 0),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
    failures,
  };
}

async function rawAddBulk(prefix: string): Promise<number> {
  const connection = new Redis(BENCH_REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('raw-baseline', { connection, prefix: `${prefix}raw` });
  const jobs = Array.from({ length: SUBMISSIONS }, (_, i) => ({
    name: 'dispatch-job',
    data: { jobId: `${i}` },
  }));
  const started = performance.now();
  for (let i = 0; i < jobs.length; i += 1000) await queue.addBulk(jobs.slice(i, i + 1000));
  const seconds = (performance.now() - started) / 1000;
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  return round(SUBMISSIONS / seconds, 0);
}

export async function run(): Promise<Record<string, unknown>> {
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const db = await createBenchDatabase();
  const api = await startApi(db.url, prefix);
  try {
    const rest = await restSubmissions(api.url, api.key);
    const raw = await rawAddBulk(prefix);
    return {
      ...rest,
      rawBullmqAddBulkJobsPerSecond: raw,
      ratioToRawBullmq: round(rest.acceptedJobsPerSecond / raw, 3),
      submissions: SUBMISSIONS,
      concurrency: CONCURRENCY,
      path: 'HTTP POST /v1/jobs → auth → zod spec validation → group-committed reserve+insert (PostgreSQL) → batched BullMQ add',
    };
  } finally {
    await api.stop();
    await deleteRedisPrefix(prefix);
    await db.drop();
  }
}
