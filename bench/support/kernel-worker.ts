// A worker thread for the compute benchmark. It loads what it measures, says ready, waits for 'go' so
// that every worker starts together, measures and posts the result:
//   ceiling: the wasm SIMD ceiling of its core (best mix, best round);
//   paired:  rounds of the ceiling kernel and of a resident n² matmul on the wasm backend with each
//            matmul kernel (gpumesh's gemm, XNNPACK), alternated, so that the machine's noise weighs
//            on all alike; medians and the median ratios.
import { parentPort, workerData } from 'node:worker_threads';

import {
  ceilingProbe,
  loadTf,
  measureWasmSimdCeiling,
  readInto,
  seededValues,
  useWasmMatmulKernel,
  type Tf,
  type WasmMatmulKernel,
} from '@gpumesh/compute';

import { percentile } from '../support.js';

export interface KernelWorkerData {
  readonly mode: 'ceiling' | 'paired';
  readonly n: number;
  readonly minMs: number;
}

export interface KernelWorkerResult {
  readonly ceilingGflops: number;
  /** The matmul with the kernel jobs use (gemm). */
  readonly matmulGflops?: number;
  readonly ratio?: number;
  /** The same matmul with tfjs-backend-wasm's own kernel (XNNPACK). */
  readonly xnnpackGflops?: number;
  readonly xnnpackRatio?: number;
  /** Median over rounds of gemm / XNNPACK. */
  readonly gemmOverXnnpack?: number;
  readonly rounds?: number;
}

const data = workerData as KernelWorkerData;
const port = parentPort;
if (!port) throw new Error('kernel-worker must run in a worker thread');

const median = (xs: number[]): number =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

const loaded = data.mode === 'paired' ? await loadTf('wasm') : undefined;

async function paired(tf: Tf): Promise<KernelWorkerResult> {
  const n = data.n;
  const a = tf.tensor2d(seededValues(n * n, 3), [n, n]);
  const b = tf.tensor2d(seededValues(n * n, 4), [n, n]);
  const out = new Float32Array(n * n);
  const matmul = async (kernel: WasmMatmulKernel): Promise<number> => {
    useWasmMatmulKernel(tf, kernel);
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    await readInto(tf, c, out); // as timeMatmul: the result read back
    c.dispose();
    return (2 * n ** 3) / ((performance.now() - t0) * 1e6);
  };
  const mix = measureWasmSimdCeiling({ roundMs: 20, rounds: 2 });
  const probe = ceilingProbe(mix.muls, mix.adds, 50);
  await matmul('gemm'); // warm-up
  await matmul('xnnpack');
  const ceilings: number[] = [];
  const matmuls: number[] = [];
  const ratios: number[] = [];
  const xnnpacks: number[] = [];
  const xnnpackRatios: number[] = [];
  const gains: number[] = [];
  const end = performance.now() + data.minMs;
  while (performance.now() < end || ratios.length < 5) {
    const c = probe();
    const m = ((await matmul('gemm')) + (await matmul('gemm'))) / 2;
    const x = ((await matmul('xnnpack')) + (await matmul('xnnpack'))) / 2;
    ceilings.push(c);
    matmuls.push(m);
    ratios.push(m / c);
    xnnpacks.push(x);
    xnnpackRatios.push(x / c);
    gains.push(m / x);
  }
  a.dispose();
  b.dispose();
  return {
    ceilingGflops: median(ceilings),
    matmulGflops: median(matmuls),
    ratio: median(ratios),
    xnnpackGflops: median(xnnpacks),
    xnnpackRatio: median(xnnpackRatios),
    gemmOverXnnpack: median(gains),
    rounds: ratios.length,
  };
}

port.once('message', () => {
  void (
    loaded
      ? paired(loaded.tf)
      : Promise.resolve({ ceilingGflops: measureWasmSimdCeiling({ roundMs: data.minMs / 25 }).gflops })
  ).then((result) => port.postMessage(result));
});
port.postMessage('ready');
