// Compute benchmark: float32 matmul GFLOP/s per available tfjs backend at 1024², beside the ceiling of
// this CPU, and executor throughput with 1 vs 2 worker threads (scaling).
//   npx tsc -p tsconfig.build.json && node dist/bench/compute.bench.js   (or npm run bench -- --only compute)
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';

import { resolvePackage } from '#compute';
import { BACKENDS, encodeTensor, parseJobSpec, type Backend } from '#protocol';

import {
  BACKEND_PACKAGES,
  createExecutorPool,
  loadTf,
  resolveBackend,
  seededValues,
  timeMatmul,
} from '../apps/provider-agent/src/runtime/index.js';

/**
 * 128-bit WASM SIMD fp32 ceiling of one core of this workplace's CPU (Xeon, Sapphire Rapids class,
 * 2.6 GHz): 2 FMA ports × 4 lanes × 2 FLOP × 2.6 GHz ≈ 42 GFLOP/s. Source: /work/shared/TOOLCHAIN.md
 * ("CPU here"), which also gives ≈ 166 GFLOP/s a core natively with AVX-512.
 */
export const WASM_SIMD_CEILING_GFLOPS_PER_CORE = 42;
/** Native AVX-512 fp32 peak a core (TOOLCHAIN.md); the ceiling for the tensorflow (libtensorflow) backend. */
export const NATIVE_CEILING_GFLOPS_PER_CORE = 166;

const N = 1024;
const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;

function ceilingFor(backend: Backend): number | null {
  if (backend === 'wasm' || backend === 'cpu') return WASM_SIMD_CEILING_GFLOPS_PER_CORE;
  if (backend === 'tensorflow') return NATIVE_CEILING_GFLOPS_PER_CORE * availableParallelism();
  return null;
}

async function perBackend(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const backend of BACKENDS) {
    if (resolvePackage(BACKEND_PACKAGES[backend]) === null) {
      out[backend] = { available: false, reason: `${BACKEND_PACKAGES[backend]} is not installed` };
      continue;
    }
    if (backend === 'tensorflow-gpu') {
      // Proven in a child process (CUDA library checks, TF device log); never loaded in this one.
      const report = await resolveBackend({ force: backend }).catch((err: Error) => err.message);
      out[backend] =
        typeof report === 'string' ? { available: false, reason: report } : { available: true, ...report };
      continue;
    }
    const loaded = await loadTf(backend);
    // The plain cpu backend needs ~2.5 s per 1024² matmul: two timed iterations are enough.
    const t = await timeMatmul(
      loaded.tf,
      N,
      backend === 'cpu' ? { minMs: 0, minIterations: 2 } : { minMs: 1500, minIterations: 5 },
    );
    const ceiling = ceilingFor(backend);
    out[backend] = {
      available: true,
      version: loaded.version,
      size: N,
      iterations: t.iterations,
      gflops: round(t.gflops),
      peakGflops: round(t.peakGflops),
      msPerMatmul: round(t.totalMs / t.iterations),
      ceilingGflops: ceiling,
      ratioOfCeiling: ceiling === null ? null : round(t.gflops / ceiling, 3),
      ...(loaded.simd === undefined ? {} : { simd: loaded.simd, threads: loaded.threads }),
    };
  }
  return out;
}

async function workers(slots: number, jobsPerSlot: number): Promise<Record<string, number>> {
  const pool = await createExecutorPool({ slots, backend: 'wasm', memoryLimitMb: 1024 });
  try {
    const a = encodeTensor('a', 'float32', [N, N], seededValues(N * N, 1));
    const b = encodeTensor('b', 'float32', [N, N], seededValues(N * N, 2));
    const spec = parseJobSpec({ version: 1, kind: 'matmul', inputs: [a, b], maxPricePerUnit: '1' });
    const job = (i: number): ReturnType<typeof pool.run> =>
      pool.run({ jobId: '3b0f1d2e-8c4a-4f6b-9e21-7a5c3d9b1f00', attempt: i + 1, spec });
    await Promise.all(Array.from({ length: slots }, (_, i) => job(i))); // warm-up every worker
    const jobs = slots * jobsPerSlot;
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: jobs }, (_, i) => job(i)));
    const seconds = (performance.now() - t0) / 1000;
    const flop = 2 * N ** 3;
    const runMs = results.reduce((s, r) => s + r.timings.runMs, 0) / results.length;
    return {
      slots,
      jobs,
      seconds: round(seconds, 2),
      jobsPerSecond: round(jobs / seconds, 2),
      aggregateGflops: round((flop * jobs) / seconds / 1e9),
      perWorkerComputeGflops: round(flop / (runMs * 1e6)),
      meanRunMs: round(runMs),
    };
  } finally {
    await pool.close();
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const backends = await perBackend();
  const one = await workers(1, 8);
  const two = await workers(2, 8);
  return {
    matmulSize: N,
    cores: availableParallelism(),
    wasmSimdCeilingGflopsPerCore: WASM_SIMD_CEILING_GFLOPS_PER_CORE,
    backends,
    workers: { one, two, scaling: round(two.aggregateGflops / one.aggregateGflops, 2) },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run()
    .then((figures) => console.log(JSON.stringify(figures, null, 2)))
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
