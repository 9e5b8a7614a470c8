// Tensors as binary (issue 21 part 2): upload and download MB/s of .npy bodies on loopback through a
// coordinator in its own process (role api), /health/live latency while they run, and the same
// bytes through the JSON/base64 job path beside the .npy + ref path, as a ratio. Then a 4096²
// float32 matmul end to end on a full coordinator with two local agents: two 64 MiB uploads, the
// job (redundancy 2: both agents fetch the refs over p2p, compute, upload their 64 MiB product by
// ref; the coordinator compares the copies), the .npy download, checked on sampled entries.
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { appendFile, rm } from 'node:fs/promises';
import { decodeNpy, encodeNpyHeader, encodeTensor, parseJobSpec, tensorView } from '@gpumesh/protocol';
import { GpumeshClient } from '@gpumesh/sdk';
import { checkResultSanity } from '@gpumesh/verification';
import {
  checkResultSanityOffLoop,
  compareResultsOffLoop,
} from '../apps/coordinator/src/verification/check-thread.js';
import { compareResults } from '../apps/coordinator/src/verification/compare.js';
import {
  BENCH_REDIS_URL,
  createBenchDatabase,
  deleteRedisPrefix,
  httpJson,
  percentile,
  round,
} from './support.js';
import { startHealthProber } from './support/health-prober.js';

const MIB = 1024 * 1024;
/** Tensor sizes to move, in MiB (BENCH_TENSORS_GIB=1 adds 1 GiB). */
const SIZES_MIB = [64, 256, ...(process.env.BENCH_TENSORS_GIB === '1' ? [1024] : [])];
const CHUNK = MIB;
const HEALTH_INTERVAL_MS = 20;
const IDLE_PROBE_MS = 3000;
/** Round trips of each size (BENCH_TENSORS_REPEATS); the figures are their median. */
const TRANSFER_REPEATS = Number(process.env.BENCH_TENSORS_REPEATS ?? 3);
/** The JSON/base64 comparison: two float32 matrices of this shape (each 2 MiB; 5.6 MB of JSON). */
const JSON_SHAPE = [512, 1024] as const;

const cliJs = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'apps', 'cli', 'src', 'main.js');
const mainJs = join(
  fileURLToPath(new URL('.', import.meta.url)),
  '..',
  'apps',
  'coordinator',
  'src',
  'main.js',
);

async function startApi(
  databaseUrl: string,
  prefix: string,
  roleArgs: string[] = ['--role', 'api', '--agents', '0'],
  extraEnv: Record<string, string> = {},
): Promise<{ url: URL; key: string; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      ...COORDINATOR_NODE_ARGS,
      mainJs,
      ...roleArgs,
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
        RATE_LIMIT_PER_IP: '0',
        RATE_LIMIT_PER_KEY: '0',
        MAX_TENSOR_UPLOAD_BYTES: String(Math.max(...SIZES_MIB) * MIB),
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    // with local agents, "ready" waits for them too (their backend probe is slow on a busy machine)
    const timer = setTimeout(() => reject(new Error(`coordinator not ready:\n${out}`)), 300_000);
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
    stop: async () => {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGINT');
      });
      if (COORDINATOR_OUT) await appendFile(COORDINATOR_OUT, out);
    },
  };
}

/**
 * Uploads written with O_DIRECT (the default) against uploads through the page cache
 * (TENSOR_DIRECT_IO=false), on two coordinators started side by side, alternated, each size
 * TRANSFER_REPEATS times: the SDK's upload, then its first download (read from the disk when the
 * upload went direct, from the page cache otherwise). Medians, and direct / page cache as ratios.
 */
async function directIoVersusPageCache(
  direct: { url: URL; key: string },
  tensors: { mib: number; data: Buffer }[],
): Promise<Record<string, unknown>> {
  const db = await createBenchDatabase();
  const prefix = `bench-tensors-${randomBytes(4).toString('hex')}-pc`;
  const pageCache = await startApi(db.url, prefix, undefined, { TENSOR_DIRECT_IO: 'false' });
  try {
    const clients = [direct, pageCache].map(
      (api) => new GpumeshClient({ baseUrl: api.url.origin, apiKey: api.key }),
    );
    const figures: Record<string, unknown> = {};
    let variant = 1 << 20;
    for (const { mib, data } of tensors) {
      const shape = [data.byteLength / 4096, 1024];
      const runs = clients.map(() => ({ up: [] as number[], down: [] as number[] }));
      for (let i = 0; i < TRANSFER_REPEATS; i++) {
        for (const [c, client] of clients.entries()) {
          data.writeFloatLE(1 + ++variant / 1024, 0);
          let started = performance.now();
          const { ref } = await client.uploadTensor(
            new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4),
            shape,
          );
          runs[c].up.push(mbps(data.byteLength, performance.now() - started));
          started = performance.now();
          await client.tensorNpy(ref);
          runs[c].down.push(mbps(data.byteLength, performance.now() - started));
        }
      }
      const [d, p] = runs.map((r) => ({ up: median(r.up), down: median(r.down) }));
      figures[`${mib}MiB`] = {
        uploadMBpsDirect: d.up,
        uploadMBpsPageCache: p.up,
        uploadRatio: round(d.up / p.up, 2),
        firstDownloadMBpsDirect: d.down,
        firstDownloadMBpsPageCache: p.down,
        firstDownloadRatio: round(d.down / p.down, 2),
        runs,
      };
    }
    return figures;
  } finally {
    await pageCache.stop();
    await deleteRedisPrefix(prefix).catch(() => undefined);
    await db.drop();
    await rm(join('/tmp', prefix), { recursive: true, force: true });
  }
}

/**
 * The same download by curl, when it is installed (null otherwise): curl's own transfer time, in a
 * process of its own, what the coordinator serves at. A `node:http` client is often the slower end
 * on this VM: it spends a whole core per download at 200–400 MB/s whenever glibc has just given its
 * freed read buffers back to the system and faults them in again (docs/tensors.md); the SDK reads the
 * socket into its own arrays instead.
 */
async function curlDownloadMs(
  api: { url: URL; key: string },
  ref: string,
  bytes: number,
): Promise<number | null> {
  const child = spawn(
    'curl',
    [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{size_download} %{time_total}',
      '-H',
      `authorization: Bearer ${api.key}`,
      new URL(`/v1/tensors/${ref}`, api.url).href,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('exit', resolve);
  });
  if (code === null) return null; // no curl here
  const [size, seconds] = out.trim().split(' ').map(Number);
  if (code !== 0 || size !== bytes) throw new Error(`curl download of ${ref}: exit ${code}, ${out}`);
  return seconds * 1000;
}

/**
 * What a developer's own tools get: `gpumesh tensors get <ref> -o file.npy` (streamed to disk, hashed
 * against the ref, fsynced) and `gpumesh tensors upload file.npy` (streamed from disk), each a CLI
 * process of its own, timed from its start to its exit (Node's start-up included).
 */
async function cliRoundTrip(
  api: { url: URL; key: string },
  ref: string,
  mib: number,
): Promise<Record<string, number>> {
  const file = join('/tmp', `bench-tensors-cli-${randomBytes(4).toString('hex')}.npy`);
  const env = {
    ...process.env,
    GPUMESH_COORDINATOR: api.url.href.replace(/\/$/, ''),
    GPUMESH_API_KEY: api.key,
  };
  const run = async (args: string[]): Promise<number> => {
    const started = performance.now();
    const child = spawn(process.execPath, [cliJs, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0) throw new Error(`gpumesh ${args.join(' ')} exited ${code}: ${out}`);
    return performance.now() - started;
  };
  try {
    const getMs = await run(['tensors', 'get', ref, '-o', file, '--json']);
    const uploadMs = await run(['tensors', 'upload', file, '--json']);
    const bytes = mib * MIB;
    return {
      getMBps: mbps(bytes, getMs),
      getMs: round(getMs),
      uploadMBps: mbps(bytes, uploadMs),
      uploadMs: round(uploadMs),
    };
  } finally {
    await rm(file, { force: true });
  }
}

/** Float32 data of `mib` MiB: random blocks, so no two sizes share a hash. */
function tensorData(mib: number): Buffer {
  const data = Buffer.allocUnsafe(mib * MIB);
  const block = randomBytes(MIB);
  for (let i = 0; i < mib; i++) {
    block.writeUInt32LE(i, 0);
    block.copy(data, i * MIB);
  }
  // keep every value a finite float32: clear the exponent's top bit of each element
  for (let i = 3; i < data.length; i += 4) data[i] &= 0xbf;
  return data;
}

/** POSTs `.npy` bytes (header, then `data` in 1 MiB writes that respect back-pressure). */
function uploadNpy(agent: Agent, base: URL, key: string, shape: number[], data: Buffer): Promise<string> {
  const header = encodeNpyHeader('float32', shape);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method: 'POST',
        path: '/v1/tensors',
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': 'application/x-npy',
          'content-length': header.byteLength + data.byteLength,
        },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          if (res.statusCode !== 201 && res.statusCode !== 200) {
            reject(new Error(`upload: ${res.statusCode} ${body}`));
          } else resolve((JSON.parse(body) as { ref: string }).ref);
        });
      },
    );
    req.on('error', reject);
    let offset = 0;
    const pump = (): void => {
      while (offset < data.byteLength) {
        const chunk = data.subarray(offset, offset + CHUNK);
        offset += chunk.byteLength;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    req.write(header);
    pump();
  });
}

/**
 * GETs a tensor as `.npy` over node:http, counting the bytes without keeping them: what a plain Node
 * client gets, beside the SDK's download (which reads the socket into the array it returns).
 */
function httpClientDownload(agent: Agent, base: URL, key: string, ref: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method: 'GET',
        path: `/v1/tensors/${ref}`,
        headers: { authorization: `Bearer ${key}` },
      },
      (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.byteLength;
        });
        res.on('end', () =>
          res.statusCode === 200 ? resolve(bytes) : reject(new Error(`download: ${res.statusCode}`)),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function latencyFigures(latencies: number[]): Record<string, number> {
  const sorted = [...latencies].sort((x, y) => x - y);
  return {
    probes: sorted.length,
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    maxMs: round(sorted[sorted.length - 1] ?? 0),
  };
}

const mbps = (bytes: number, ms: number): number => round(bytes / 1e6 / (ms / 1000), 1);
const median = (xs: number[]): number =>
  percentile(
    [...xs].sort((x, y) => x - y),
    50,
  );

/** The same two matrices through POST /v1/jobs as inline base64 JSON, and as .npy uploads plus refs. */
async function jsonVersusNpy(agent: Agent, base: URL, key: string): Promise<Record<string, number>> {
  const [rows, cols] = JSON_SHAPE;
  const a = tensorData((rows * cols * 4) / MIB);
  const b = tensorData((rows * cols * 4) / MIB);
  b[0] ^= 1;
  const spec = {
    version: 1,
    kind: 'matmul',
    maxPricePerUnit: '1',
    deadlineSeconds: 3600,
    params: { transposeB: true },
  };
  const tensorBytes = a.byteLength + b.byteLength;
  const f32 = (buf: Buffer): Float32Array => new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const headers = { authorization: `Bearer ${key}` };

  let started = performance.now();
  const body = JSON.stringify({
    ...spec,
    inputs: [
      encodeTensor('a', 'float32', [rows, cols], f32(a)),
      encodeTensor('b', 'float32', [rows, cols], f32(b)),
    ],
  });
  const viaJson = await httpJson(agent, base, 'POST', '/v1/jobs', headers, body);
  const jsonMs = performance.now() - started;
  if (viaJson.status !== 201) throw new Error(`JSON job: ${viaJson.status} ${viaJson.body.slice(0, 300)}`);

  a[4] ^= 1; // other bytes, so the store cannot answer from an earlier upload
  started = performance.now();
  const [ra, rb] = [
    await uploadNpy(agent, base, key, [rows, cols], a),
    await uploadNpy(agent, base, key, [rows, cols], b),
  ];
  const uploadsMs = performance.now() - started;
  const viaRef = await httpJson(
    agent,
    base,
    'POST',
    '/v1/jobs',
    headers,
    JSON.stringify({
      ...spec,
      inputs: [
        { name: 'a', ref: ra },
        { name: 'b', ref: rb },
      ],
    }),
  );
  const npyMs = performance.now() - started;
  if (viaRef.status !== 201) throw new Error(`ref job: ${viaRef.status} ${viaRef.body.slice(0, 300)}`);
  const id = (JSON.parse(viaRef.body) as { id: string }).id;
  const detail = await httpJson(agent, base, 'GET', `/v1/jobs/${id}`, headers);
  return {
    jsonBodyBytes: body.length,
    jsonSubmitMs: round(jsonMs),
    jsonMBps: mbps(tensorBytes, jsonMs),
    npyUploadsMs: round(uploadsMs),
    refSubmitMs: round(npyMs - uploadsMs),
    npyUploadsPlusRefSubmitMs: round(npyMs),
    npyMBps: mbps(tensorBytes, npyMs),
    npyOverJsonSpeedup: round(jsonMs / npyMs, 2),
    getJobResponseBytes: detail.body.length,
  };
}

/**
 * Submitting a float32 matmul whose inputs are refs of 64 MiB each (1024×16384 by 16384×1024, over
 * the inline caps; a 4 MiB product): the
 * coordinator reads the Tensor rows and scans each file for NaN/Inf; the job row keeps the refs.
 */
async function largeRefSubmit(
  agent: Agent,
  base: URL,
  key: string,
  data: Buffer,
): Promise<Record<string, number>> {
  const [m, k] = [1024, 16384];
  const a = Buffer.from(data.subarray(0, m * k * 4));
  const b = Buffer.from(a);
  b[8] ^= 1;
  const headers = { authorization: `Bearer ${key}` };
  let started = performance.now();
  const ra = await uploadNpy(agent, base, key, [m, k], a);
  const rb = await uploadNpy(agent, base, key, [k, m], b);
  const uploadsMs = performance.now() - started;
  started = performance.now();
  const res = await httpJson(
    agent,
    base,
    'POST',
    '/v1/jobs',
    headers,
    JSON.stringify({
      version: 1,
      kind: 'matmul',
      maxPricePerUnit: '1',
      deadlineSeconds: 3600,
      inputs: [
        { name: 'a', ref: ra },
        { name: 'b', ref: rb },
      ],
    }),
  );
  const submitMs = performance.now() - started;
  if (res.status !== 201) throw new Error(`64 MiB ref job: ${res.status} ${res.body.slice(0, 300)}`);
  const id = (JSON.parse(res.body) as { id: string }).id;
  const detail = await httpJson(agent, base, 'GET', `/v1/jobs/${id}`, headers);
  return {
    uploadsMs: round(uploadsMs),
    refSubmitMs: round(submitMs),
    getJobResponseBytes: detail.body.length,
  };
}

/** `n`×`n` float32 values uniform in [-1, 1). */
function randomMatrix(n: number): Float32Array {
  const m = new Float32Array(n * n);
  for (let i = 0; i < m.length; i++) m[i] = Math.random() * 2 - 1;
  return m;
}

/**
 * A 4096² float32 matmul end to end on a coordinator (role all) with two local agents: uploads,
 * submit, compute on both agents (redundancy 2), outputs by ref, verification, .npy download,
 * and the product checked on MATMUL_SAMPLES entries against float64 sums.
 */
async function matmulEndToEnd(databaseUrl: string, prefix: string): Promise<Record<string, unknown>> {
  const N = 4096;
  const SAMPLES = 256;
  const api = await startApi(databaseUrl, prefix, ['--role', 'all', '--agents', '2'], {
    CANARY_RATE: '0',
    PROBATION_CANARY_RATE: '0',
    CAPACITY_PROBES: 'false',
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const headers = { authorization: `Bearer ${api.key}` };
  try {
    const providersUntil = Date.now() + 120_000;
    for (;;) {
      const res = await httpJson(agent, api.url, 'GET', '/v1/providers', {});
      if ((JSON.parse(res.body) as unknown[]).length >= 2) break;
      if (Date.now() > providersUntil) throw new Error('two local agents did not advertise in 120 s');
      await new Promise((r) => setTimeout(r, 250));
    }
    const a = randomMatrix(N);
    const b = randomMatrix(N);
    const asBuffer = (m: Float32Array): Buffer => Buffer.from(m.buffer, m.byteOffset, m.byteLength);
    const health = startHealthProber(api.url, HEALTH_INTERVAL_MS);
    await health.ready;
    const t0 = performance.now();
    const ra = await uploadNpy(agent, api.url, api.key, [N, N], asBuffer(a));
    const rb = await uploadNpy(agent, api.url, api.key, [N, N], asBuffer(b));
    const uploadMs = performance.now() - t0;
    const submitted = await httpJson(
      agent,
      api.url,
      'POST',
      '/v1/jobs',
      headers,
      JSON.stringify({
        version: 1,
        kind: 'matmul',
        maxPricePerUnit: '1',
        deadlineSeconds: 3600,
        redundancy: 2,
        inputs: [
          { name: 'a', ref: ra },
          { name: 'b', ref: rb },
        ],
      }),
    );
    if (submitted.status !== 201)
      throw new Error(`4096² job: ${submitted.status} ${submitted.body.slice(0, 300)}`);
    const id = (JSON.parse(submitted.body) as { id: string }).id;
    const t1 = performance.now();
    let state = '';
    let error: unknown = null;
    const until = Date.now() + 30 * 60_000;
    while (!['COMPLETED', 'FAILED', 'EXPIRED', 'CANCELLED'].includes(state)) {
      if (Date.now() > until) throw new Error(`4096² job ${id} still ${state} after 30 min`);
      await new Promise((r) => setTimeout(r, 250));
      const res = await httpJson(agent, api.url, 'GET', `/v1/jobs/${id}`, headers);
      ({ state, error } = JSON.parse(res.body) as { state: string; error: unknown });
    }
    const jobMs = performance.now() - t1;
    if (state !== 'COMPLETED') throw new Error(`4096² job ${id} ended ${state}: ${JSON.stringify(error)}`);
    const result = JSON.parse(
      (await httpJson(agent, api.url, 'GET', `/v1/jobs/${id}/result`, headers)).body,
    ) as {
      result: { outputs: { name: string; ref?: string }[]; verification?: unknown };
    };
    const t2 = performance.now();
    const npy = await new GpumeshClient({ baseUrl: api.url.origin, apiKey: api.key }).outputNpy(id, 'c');
    const bytes = npy.byteLength;
    const downloadMs = performance.now() - t2;
    const endToEndMs = performance.now() - t0;
    const probes = await health.stop();
    const during = latencyFigures(probes.latencies);
    // where the slowest probes fell, in ms from the poll that saw COMPLETED (negative: before it)
    const completedAt = performance.timeOrigin + t1 + jobMs;
    const slowest = probes.latencies
      .map((ms, i) => ({ ms: round(ms), atMs: round(probes.startedAt[i] - completedAt) }))
      .sort((x, y) => y.ms - x.ms)
      .slice(0, 8);
    const c = decodeNpy(npy);
    if (c.shape.join('x') !== `${N}x${N}`) throw new Error(`product shape ${c.shape.join('x')}`);
    const cv = new Float32Array(new Uint8Array(c.data).buffer);
    let maxRelError = 0;
    for (let s = 0; s < SAMPLES; s++) {
      const i = Math.floor(Math.random() * N);
      const j = Math.floor(Math.random() * N);
      let sum = 0;
      let scale = 0;
      for (let k = 0; k < N; k++) {
        sum += a[i * N + k] * b[k * N + j];
        scale += Math.abs(a[i * N + k] * b[k * N + j]);
      }
      maxRelError = Math.max(maxRelError, Math.abs(cv[i * N + j] - sum) / scale);
    }
    if (maxRelError > 1e-4) throw new Error(`4096² product off by ${maxRelError} (relative to Σ|a·b|)`);
    return {
      uploadMBps: mbps(2 * N * N * 4, uploadMs),
      uploadsMs: round(uploadMs),
      submitToCompletedMs: round(jobMs),
      downloadMBps: mbps(bytes, downloadMs),
      downloadMs: round(downloadMs),
      endToEndMs: round(endToEndMs),
      outputByRef: result.result.outputs[0]?.ref !== undefined,
      verification: result.result.verification ?? null,
      sampledEntries: SAMPLES,
      maxRelErrorSampled: maxRelError,
      healthLiveDuringJob: during,
      healthLiveSlowestProbes: slowest,
    };
  } finally {
    agent.destroy();
    await api.stop();
  }
}

/** Node options for the coordinator's process alone (e.g. BENCH_COORDINATOR_NODE_ARGS="--cpu-prof"). */
const COORDINATOR_NODE_ARGS = (process.env.BENCH_COORDINATOR_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** Where the coordinator's output goes once it stops (e.g. with --trace-gc above); unset: nowhere. */
const COORDINATOR_OUT = process.env.BENCH_COORDINATOR_OUT;
/**
 * What a 4096² job's completion asks of the coordinator once both 64 MiB products are back (read
 * back into shared memory): the sanity scan of each and their comparison within tolerance, their
 * bytes differing in the last bits (as GPUs of two makes give). Timed on the event loop, as before,
 * and through the result-check thread, in this process, with a 2 ms ticker measuring how long the
 * loop was held.
 */
async function resultChecks(): Promise<Record<string, unknown>> {
  const N = 4096;
  const sha = (c: string): string => c.repeat(64);
  const spec = parseJobSpec({
    version: 1,
    kind: 'matmul',
    maxPricePerUnit: '1',
    inputs: ['a', 'b'].map((name, i) => ({
      name,
      ref: `sha256:${sha(String(i))}`,
      dtype: 'float32',
      shape: [N, N],
      sha256: sha(String(i)),
    })),
  });
  const product = (hash: string, jitter: number) => {
    const bytes = new Uint8Array(new SharedArrayBuffer(N * N * 4));
    const values = new Float32Array(bytes.buffer);
    for (let i = 0; i < values.length; i++) values[i] = Math.sin(i) * 40 * (1 + (i % 7 === 0 ? jitter : 0));
    return Object.assign(tensorView('c', 'float32', [N, N], bytes), { sha256: sha(hash) });
  };
  const a = product('a', 0);
  const b = product('b', 1e-7);
  const held = async (work: () => Promise<unknown>): Promise<Record<string, number>> => {
    const gaps: number[] = [];
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      gaps.push(now - last);
      last = now;
    }, 2);
    const started = performance.now();
    await new Promise((r) => setTimeout(r, 20));
    await work();
    const ms = performance.now() - started - 20;
    await new Promise((r) => setTimeout(r, 20));
    clearInterval(ticker);
    const sorted = gaps.sort((x, y) => x - y);
    return {
      ms: round(ms),
      loopHeldMaxMs: round(sorted[sorted.length - 1] ?? 0),
      loopHeldP99Ms: round(percentile(sorted, 99)),
    };
  };
  let agreeOnLoop = false;
  let agreeOffLoop = false;
  // warm both paths once (JIT, the thread's start)
  compareResults([a], [b], { spec });
  await compareResultsOffLoop([a], [b], { spec });
  const onLoop = await held(async () => {
    checkResultSanity(spec, [a]);
    checkResultSanity(spec, [b]);
    agreeOnLoop = compareResults([a], [b], { spec }).agree;
  });
  const offLoop = await held(async () => {
    await checkResultSanityOffLoop(spec, [a]);
    await checkResultSanityOffLoop(spec, [b]);
    agreeOffLoop = (await compareResultsOffLoop([a], [b], { spec })).agree;
  });
  if (!agreeOnLoop || !agreeOffLoop) throw new Error('the two products should agree within tolerance');
  return { outputs: '2 × float32[4096,4096], bytes differ', onEventLoop: onLoop, onCheckThread: offLoop };
}

/** BENCH_TENSORS_PART=transfers, checks or matmul runs one part (to iterate on it); unset runs all. */
const PART = process.env.BENCH_TENSORS_PART ?? 'all';

export async function run(): Promise<Record<string, unknown>> {
  if (PART === 'checks') return { resultChecks4096: await resultChecks() };
  const db = await createBenchDatabase();
  if (PART === 'matmul') {
    const prefix = `bench-tensors-${randomBytes(4).toString('hex')}-mm`;
    try {
      return { matmul4096EndToEnd: await matmulEndToEnd(db.url, prefix) };
    } finally {
      await deleteRedisPrefix(prefix).catch(() => undefined);
      await db.drop();
      await rm(join('/tmp', prefix), { recursive: true, force: true });
    }
  }
  const prefix = `bench-tensors-${randomBytes(4).toString('hex')}`;
  const api = await startApi(db.url, prefix);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  let stopped = false;
  try {
    const figures: Record<string, unknown> = {};
    // made before the probes start: filling 256 MiB would stall this process's own event loop
    const tensors = SIZES_MIB.map((mib) => ({ mib, data: tensorData(mib) }));
    // the same probes with nothing else running: what this (shared) machine gives at best
    const idle = startHealthProber(api.url, HEALTH_INTERVAL_MS);
    await idle.ready;
    await new Promise((r) => setTimeout(r, IDLE_PROBE_MS));
    figures.healthLiveIdle = latencyFigures((await idle.stop()).latencies);
    const health = startHealthProber(api.url, HEALTH_INTERVAL_MS);
    await health.ready;
    let variant = 0;
    const client = new GpumeshClient({ baseUrl: api.url.origin, apiKey: api.key });
    /**
     * `data` uploaded twice, made new each time (its first element changed: no two uploads share a
     * hash): by the SDK (raw bytes, dtype and shape in the query) and by a node:http client (`.npy` in
     * 1 MiB writes); then the SDK's upload downloaded three ways: by the SDK (the bytes in one array,
     * as a developer's program holds them), by the node:http client counting them, and by curl (a
     * process of its own). The SDK's download is the first read of a file written with O_DIRECT,
     * from the disk; the other two read it from the page cache (directIoVersusPageCache compares).
     */
    const roundTrip = async (
      data: Buffer,
    ): Promise<{
      ref: string;
      uploadMs: number;
      httpClientUploadMs: number;
      downloadMs: number;
      httpClientDownloadMs: number;
      curlDownloadMs: number | null;
    }> => {
      const shape = [data.byteLength / 4096, 1024]; // float32 rows of 4 KiB
      const expected = data.byteLength + encodeNpyHeader('float32', shape).byteLength;
      data.writeFloatLE(1 + ++variant / 1024, 0);
      let started = performance.now();
      const { ref } = await client.uploadTensor(
        new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4),
        shape,
      );
      const uploadMs = performance.now() - started;
      const last = data[data.byteLength - 1];
      data.writeFloatLE(1 + ++variant / 1024, 0);
      started = performance.now();
      await uploadNpy(agent, api.url, api.key, shape, data);
      const httpClientUploadMs = performance.now() - started;
      started = performance.now();
      const npy = await client.tensorNpy(ref);
      const downloadMs = performance.now() - started;
      if (npy.byteLength !== expected || npy[npy.byteLength - 1] !== last) {
        throw new Error(`SDK download of ${ref}: ${npy.byteLength} bytes, or not the ones uploaded`);
      }
      started = performance.now();
      const bytes = await httpClientDownload(agent, api.url, api.key, ref);
      const httpClientDownloadMs = performance.now() - started;
      if (bytes !== expected) throw new Error(`node:http download of ${ref}: ${bytes} bytes`);
      return {
        ref,
        uploadMs,
        httpClientUploadMs,
        downloadMs,
        httpClientDownloadMs,
        curlDownloadMs: await curlDownloadMs(api, ref, bytes),
      };
    };
    // the process's first transfer pays for what warms up once (query plans, lazy modules, buffers)
    const first = await roundTrip(tensors[0].data);
    figures[`${tensors[0].mib}MiBFirst`] = {
      uploadMBps: mbps(tensors[0].data.byteLength, first.uploadMs),
      downloadMBps: mbps(tensors[0].data.byteLength, first.downloadMs),
    };
    // then each size TRANSFER_REPEATS times: the median says what a transfer gets, min/max how much
    // this shared machine moved it
    for (const { mib, data } of tensors) {
      const runs = [];
      for (let i = 0; i < TRANSFER_REPEATS; i++) runs.push(await roundTrip(data));
      const up = runs.map((r) => mbps(data.byteLength, r.uploadMs));
      const httpClientUp = runs.map((r) => mbps(data.byteLength, r.httpClientUploadMs));
      const down = runs.map((r) => mbps(data.byteLength, r.downloadMs));
      const httpClient = runs.map((r) => mbps(data.byteLength, r.httpClientDownloadMs));
      const curl = runs.flatMap((r) =>
        r.curlDownloadMs === null ? [] : [mbps(data.byteLength, r.curlDownloadMs)],
      );
      figures[`${mib}MiB`] = {
        uploadMBps: median(up),
        uploadMBpsHttpClient: median(httpClientUp),
        downloadMBps: median(down),
        downloadMBpsHttpClient: median(httpClient),
        ...(curl.length > 0 ? { downloadMBpsCurl: median(curl) } : {}),
        uploadMBpsRuns: up,
        uploadMBpsHttpClientRuns: httpClientUp,
        downloadMBpsRuns: down,
        downloadMBpsHttpClientRuns: httpClient,
        ...(curl.length > 0 ? { downloadMBpsCurlRuns: curl } : {}),
      };
    }
    figures.healthLiveDuringTransfers = latencyFigures((await health.stop()).latencies);
    const largest = tensors[tensors.length - 1];
    figures[`cli${largest.mib}MiB`] = await cliRoundTrip(
      api,
      (await roundTrip(largest.data)).ref,
      largest.mib,
    );
    figures.directIoVersusPageCache = await directIoVersusPageCache(api, tensors);
    figures.jsonVersusNpy = await jsonVersusNpy(agent, api.url, api.key);
    figures.matmul64MiBRefs = await largeRefSubmit(agent, api.url, api.key, tensors[0].data);
    figures.resultChecks4096 = await resultChecks();
    await api.stop();
    stopped = true;
    if (PART === 'transfers') return figures;
    figures.matmul4096EndToEnd = await matmulEndToEnd(db.url, `${prefix}-mm`).catch((err: unknown) => ({
      error: err instanceof Error ? err.message.slice(0, 2000) : String(err),
    }));
    return figures;
  } finally {
    agent.destroy();
    if (!stopped) await api.stop();
    await deleteRedisPrefix(prefix).catch(() => undefined);
    await deleteRedisPrefix(`${prefix}-mm`).catch(() => undefined);
    await db.drop();
    await rm(join('/tmp', prefix), { recursive: true, force: true });
    await rm(join('/tmp', `${prefix}-mm`), { recursive: true, force: true });
  }
}
