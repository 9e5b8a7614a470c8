// Tensors as binary (issue 21 part 2): upload and download MB/s of .npy bodies on loopback through a
// coordinator in its own process (role api), /health/live latency while they run, and the same
// bytes through the JSON/base64 job path beside the .npy + ref path, as a ratio.
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { encodeNpyHeader, encodeTensor } from '@gpumesh/protocol';
import {
  BENCH_REDIS_URL,
  createBenchDatabase,
  deleteRedisPrefix,
  httpJson,
  percentile,
  round,
} from './support.js';

const MIB = 1024 * 1024;
/** Tensor sizes to move, in MiB (BENCH_TENSORS_GIB=1 adds 1 GiB). */
const SIZES_MIB = [64, 256, ...(process.env.BENCH_TENSORS_GIB === '1' ? [1024] : [])];
const CHUNK = MIB;
const HEALTH_INTERVAL_MS = 20;
const IDLE_PROBE_MS = 3000;
/** The JSON/base64 comparison: two float32 matrices of this shape (each 2 MiB; 5.6 MB of JSON). */
const JSON_SHAPE = [512, 1024] as const;

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
): Promise<{ url: URL; key: string; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [mainJs, '--role', 'api', '--agents', '0', '--port', '0', '--dev', '--data-dir', join('/tmp', prefix)],
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

/** GETs a tensor as `.npy`, counting the bytes without keeping them. */
function downloadNpy(agent: Agent, base: URL, key: string, ref: string): Promise<number> {
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
        res.on('data', (c: Buffer) => (bytes += c.byteLength));
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

/** Probes /health/live every HEALTH_INTERVAL_MS until stopped; returns the latencies. */
function probeHealth(base: URL): { stop: () => Promise<number[]> } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      const res = await httpJson(agent, base, 'GET', '/health/live', {});
      if (res.status !== 200) throw new Error(`/health/live: ${res.status}`);
      latencies.push(performance.now() - started);
      await new Promise((r) => setTimeout(r, HEALTH_INTERVAL_MS));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      agent.destroy();
      return latencies;
    },
  };
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
 * the inline caps; the 4 MiB product fits the result cap, which a 4096² product does not yet): the
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

export async function run(): Promise<Record<string, unknown>> {
  const db = await createBenchDatabase();
  const prefix = `bench-tensors-${randomBytes(4).toString('hex')}`;
  const api = await startApi(db.url, prefix);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  try {
    const figures: Record<string, unknown> = {};
    // made before the probes start: filling 256 MiB would stall this process's own event loop
    const tensors = SIZES_MIB.map((mib) => ({ mib, data: tensorData(mib) }));
    // the same probes with nothing else running: what this (shared) machine gives at best
    const idle = probeHealth(api.url);
    await new Promise((r) => setTimeout(r, IDLE_PROBE_MS));
    figures.healthLiveIdle = latencyFigures(await idle.stop());
    const health = probeHealth(api.url);
    for (const { mib, data } of tensors) {
      const shape = [mib * 256, 1024]; // float32 rows of 4 KiB
      let started = performance.now();
      const ref = await uploadNpy(agent, api.url, api.key, shape, data);
      const uploadMs = performance.now() - started;
      started = performance.now();
      const bytes = await downloadNpy(agent, api.url, api.key, ref);
      const downloadMs = performance.now() - started;
      figures[`${mib}MiB`] = {
        uploadMBps: mbps(data.byteLength, uploadMs),
        downloadMBps: mbps(bytes, downloadMs),
        uploadMs: round(uploadMs),
        downloadMs: round(downloadMs),
      };
    }
    figures.healthLiveDuringTransfers = latencyFigures(await health.stop());
    figures.jsonVersusNpy = await jsonVersusNpy(agent, api.url, api.key);
    figures.matmul64MiBRefs = await largeRefSubmit(agent, api.url, api.key, tensors[0].data);
    return figures;
  } finally {
    agent.destroy();
    await api.stop();
    await deleteRedisPrefix(prefix).catch(() => undefined);
    await db.drop();
    await rm(join('/tmp', prefix), { recursive: true, force: true });
  }
}
