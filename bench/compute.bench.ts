// Compute benchmark: float32 matmul GFLOP/s per available tfjs backend at 1024², beside the ceiling of
// this CPU (the wasm SIMD ceiling measured here, and the nominal figure); the matmul kernel in 1 and 2
// worker threads running side by side (GFLOP/s per worker, scaling), with gpumesh's wasm matmul kernel
// and tfjs's own; training an MLP with each; and 1024² matmul jobs through the executor pool with 1 and
// 2 slots (wire decoding and encoding included).
//   npx tsc -p tsconfig.build.json && node dist/bench/compute.bench.js   (or npm run bench -- --only compute)
import { once } from 'node:events';
import { availableParallelism, cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import { resolvePackage, useWasmMatmulKernel, type Tf, type WasmMatmulKernel } from '@gpumesh/compute';
import { BACKENDS, encodeTensor, parseJobSpec, type Backend } from '@gpumesh/protocol';

import {
  BACKEND_PACKAGES,
  createExecutorPool,
  loadTf,
  resolveBackend,
  seededValues,
  timeMatmul,
} from '@gpumesh/agent/runtime';
import type { KernelWorkerData, KernelWorkerResult } from './support/kernel-worker.js';

/**
 * Nominal 128-bit WASM SIMD fp32 ceiling of one core from /work/shared/TOOLCHAIN.md ("CPU here": Xeon,
 * Sapphire Rapids class, 2.6 GHz: 2 FMA ports × 4 lanes × 2 FLOP ≈ 42 GFLOP/s). Hosts differ (the
 * machine may be another CPU), so the benchmark also measures the ceiling (`measureWasmSimdCeiling`).
 */
export const WASM_SIMD_CEILING_GFLOPS_PER_CORE = 42;
/** Native AVX-512 fp32 peak a core (TOOLCHAIN.md); the ceiling for the tensorflow (libtensorflow) backend. */
export const NATIVE_CEILING_GFLOPS_PER_CORE = 166;

const N = 1024;
const KERNEL_MIN_MS = 4000;
const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;

function ceilingFor(backend: Backend, wasmCeiling: number): number | null {
  if (backend === 'wasm' || backend === 'cpu') return wasmCeiling;
  if (backend === 'tensorflow') return NATIVE_CEILING_GFLOPS_PER_CORE * availableParallelism();
  return null;
}

async function perBackend(wasmCeiling: number): Promise<Record<string, unknown>> {
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
    const ceiling = ceilingFor(backend, wasmCeiling);
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
      ...(backend === 'wasm' ? await wasmKernels(loaded.tf, loaded.matmulKernel ?? 'gemm', t.gflops) : {}),
      ...(loaded.simd === undefined ? {} : { simd: loaded.simd, threads: loaded.threads }),
    };
  }
  return out;
}

/**
 * The wasm figures beside the nominal ceiling, and the same matmul with XNNPACK's kernel; `kernel` is
 * the one `gflops` was measured with (GPUMESH_WASM_MATMUL), restored after.
 */
async function wasmKernels(
  tf: Tf,
  kernel: WasmMatmulKernel,
  gflops: number,
): Promise<Record<string, unknown>> {
  useWasmMatmulKernel(tf, 'xnnpack');
  const x = await timeMatmul(tf, N, { minMs: 1500, minIterations: 5 });
  useWasmMatmulKernel(tf, kernel);
  return {
    matmulKernel: kernel,
    ratioOfNominalCeiling: round(gflops / WASM_SIMD_CEILING_GFLOPS_PER_CORE, 3),
    xnnpackGflops: round(x.gflops),
    ...(kernel === 'gemm' ? { gemmOverXnnpack: round(gflops / x.gflops, 2) } : {}),
  };
}

/**
 * Training on the wasm backend with each matmul kernel, alternated (twice each): a 784-512-512-10 MLP
 * (relu, softmax, Adam), one epoch of 2,048 samples in batches of 256. Backpropagation multiplies by
 * transposed weights and activations, which tfjs's own kernel runs on a slow path.
 */
async function trainKernels(tf: Tf, kernel: WasmMatmulKernel): Promise<Record<string, number>> {
  const samples = 2048;
  const x = tf.tensor2d(seededValues(samples * 784, 7), [samples, 784]);
  const labels = Array.from({ length: samples }, (_, i) => (i * 7) % 10);
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
  const init = (seed: number): ReturnType<Tf['initializers']['glorotUniform']> =>
    tf.initializers.glorotUniform({ seed });
  // Same seeds, same data: both kernels must train to the same loss (within float32 rounding).
  const losses: Record<string, number> = {};
  const epoch = async (kernel: WasmMatmulKernel): Promise<number> => {
    useWasmMatmulKernel(tf, kernel);
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [784], units: 512, activation: 'relu', kernelInitializer: init(1) }),
        tf.layers.dense({ units: 512, activation: 'relu', kernelInitializer: init(2) }),
        tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(3) }),
      ],
    });
    model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
    const t0 = performance.now();
    const history = await model.fit(x, y, { epochs: 1, batchSize: 256, shuffle: false, verbose: 0 });
    const seconds = (performance.now() - t0) / 1000;
    model.dispose();
    losses[kernel] = history.history.loss[0] as number;
    return samples / seconds;
  };
  const gemm: number[] = [];
  const xnnpack: number[] = [];
  for (let round = 0; round < 2; round++) {
    gemm.push(await epoch('gemm'));
    xnnpack.push(await epoch('xnnpack'));
  }
  useWasmMatmulKernel(tf, kernel);
  tf.dispose([x, y]);
  const best = (xs: number[]): number => Math.max(...xs);
  return {
    gemmSamplesPerSecond: round(best(gemm)),
    xnnpackSamplesPerSecond: round(best(xnnpack)),
    gemmOverXnnpack: round(best(gemm) / best(xnnpack), 2),
    gemmLoss: losses.gemm,
    xnnpackLoss: losses.xnnpack,
  };
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

/** Runs `count` kernel workers that start together; their results in order. */
async function inWorkers(count: number, data: KernelWorkerData): Promise<KernelWorkerResult[]> {
  const url = new URL('./support/kernel-worker.js', import.meta.url);
  const workers = Array.from({ length: count }, () => new Worker(url, { workerData: data }));
  try {
    await Promise.all(workers.map((w) => once(w, 'message'))); // loaded
    const results = workers.map((w) => once(w, 'message') as Promise<[KernelWorkerResult]>);
    for (const w of workers) w.postMessage('go');
    return (await Promise.all(results)).map(([r]) => r);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/** The wasm SIMD ceiling measured on one core, and on two at once (how far two cores scale at best). */
async function ceiling(): Promise<Record<string, number>> {
  const one = await inWorkers(1, { mode: 'ceiling', n: 0, minMs: 1500 });
  const two = await inWorkers(2, { mode: 'ceiling', n: 0, minMs: 1500 });
  const both = sum(two.map((r) => r.ceilingGflops));
  return {
    gflopsPerCore: round(one[0].ceilingGflops),
    twoThreadsGflops: round(both),
    twoThreadsScaling: round(both / one[0].ceilingGflops, 2),
  };
}

/**
 * The 1024² matmul kernel (tensors resident, as in the agent's timed proof) in 1 and 2 workers at once,
 * each alternating rounds of it with rounds of the ceiling kernel on its own core: the median ratio of
 * the two is the share of the ceiling each worker reaches, with the machine's noise on both sides.
 */
async function kernelWorkers(): Promise<Record<string, unknown>> {
  const data: KernelWorkerData = { mode: 'paired', n: N, minMs: KERNEL_MIN_MS };
  const one = await inWorkers(1, data);
  const two = await inWorkers(2, data);
  const each = (rs: KernelWorkerResult[]): Record<string, number[]> => ({
    matmulGflops: rs.map((r) => round(r.matmulGflops ?? 0)),
    ceilingGflops: rs.map((r) => round(r.ceilingGflops)),
    ratioOfCeiling: rs.map((r) => round(r.ratio ?? 0, 3)),
    xnnpackGflops: rs.map((r) => round(r.xnnpackGflops ?? 0)),
    xnnpackRatioOfCeiling: rs.map((r) => round(r.xnnpackRatio ?? 0, 3)),
    gemmOverXnnpack: rs.map((r) => round(r.gemmOverXnnpack ?? 0, 2)),
    rounds: rs.map((r) => r.rounds ?? 0),
  });
  const matmul = (rs: KernelWorkerResult[]): number => sum(rs.map((r) => r.matmulGflops ?? 0));
  return {
    one: each(one),
    two: { ...each(two), aggregateGflops: round(matmul(two)) },
    worstRatioOfCeiling: round(Math.min(...[...one, ...two].map((r) => r.ratio ?? 0)), 3),
    scaling: round(matmul(two) / matmul(one), 2),
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const measured = await ceiling();
  const backends = await perBackend(measured.gflopsPerCore);
  const wasm = await loadTf('wasm');
  const trainMlp = await trainKernels(wasm.tf, wasm.matmulKernel ?? 'gemm');
  const kernel = await kernelWorkers();
  const one = await workers(1, 8);
  const two = await workers(2, 8);
  return {
    matmulSize: N,
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    wasmSimdCeilingGflopsPerCore: WASM_SIMD_CEILING_GFLOPS_PER_CORE,
    measuredWasmSimdCeiling: measured,
    backends,
    kernelWorkers: kernel,
    trainMlp,
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
