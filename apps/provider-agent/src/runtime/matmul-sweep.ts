// The matmul sweep of `gpu-check`: square float32 matmuls from 1024² up, timed back to back on the
// device, each size's result checked against a float64 reference. A full float64 matmul of 8192² is
// 1.1 TFLOP in JavaScript (minutes), so the check multiplies by a random vector instead (Freivalds):
// C·x against A·(B·x), both in float64, which costs three n² matrix-vector products and still catches a
// wrong tile, a wrong transpose or reduced-precision arithmetic (TF32) in C.
import { readInto, seededValues, type Tf } from '@gpumesh/compute';

/** The sweep's sizes: 1024² to 8192². */
export const SWEEP_SIZES: readonly number[] = [1024, 2048, 4096, 8192];

/**
 * Largest relative L2 error ‖C·x − A·(B·x)‖ / ‖A·(B·x)‖ accepted. Measured here on 256² to 2048²:
 * float32 products gave 2.9e-7 (wasm) to 8.2e-7 (webgpu on llvmpipe, growing about as √n, so ≈ 2e-6
 * at 8192²); the exact product of TF32-rounded inputs (10-bit mantissa, what cuBLAS does on Ampere
 * and newer unless NVIDIA_TF32_OVERRIDE=0) gave 2.4e-4 to 2.6e-4. 5e-5 sits between the two.
 */
export const SWEEP_CHECK_TOLERANCE = 5e-5;

/** The random-vector check of one product. */
export interface ProductCheck {
  readonly ok: boolean;
  /** ‖C·x − A·(B·x)‖₂ / ‖A·(B·x)‖₂ in float64. */
  readonly relError: number;
  readonly tolerance: number;
}

/**
 * Checks C = A·B (all n×n, row-major float32) with a random float64 vector: the relative L2 error of
 * C·x against A·(B·x). Three matrix-vector products, O(n²).
 */
export function checkProductWithVector(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  n: number,
  tolerance = SWEEP_CHECK_TOLERANCE,
  seed = 5,
): ProductCheck {
  if (a.length < n * n || b.length < n * n || c.length < n * n) {
    throw new RangeError(`checkProductWithVector: arrays shorter than ${n}²`);
  }
  const x = Float64Array.from(seededValues(n, seed));
  const matVec = (m: Float32Array, v: Float64Array): Float64Array => {
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      const row = i * n;
      for (let j = 0; j < n; j++) s += m[row + j] * v[j];
      y[i] = s;
    }
    return y;
  };
  const expected = matVec(a, matVec(b, x));
  const got = matVec(c, x);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < n; i++) {
    diff += (got[i] - expected[i]) ** 2;
    norm += expected[i] ** 2;
  }
  const relError = norm === 0 ? (diff === 0 ? 0 : Number.POSITIVE_INFINITY) : Math.sqrt(diff / norm);
  // NaN (a NaN in C) is never ok.
  return { ok: relError <= tolerance, relError, tolerance };
}

/** One size of the sweep: measured and checked, or skipped with the reason. */
export type SweepPoint =
  | {
      readonly n: number;
      readonly iterations: number;
      /** Wall time of the timed matmuls, queued back to back and synchronised once. */
      readonly totalMs: number;
      /** Sustained rate: 2n³·iterations / totalMs. */
      readonly gflops: number;
      /** Reading one n×n result back to the host (not in `gflops`). */
      readonly readbackMs: number;
      readonly check: ProductCheck;
    }
  | { readonly n: number; readonly skipped: string }
  /** The size could not run (out of GPU memory, a buffer over the adapter's limits…): no figure, no verdict. */
  | { readonly n: number; readonly failed: string };

export interface SweepOptions {
  readonly sizes?: readonly number[];
  /** Minimum timed milliseconds a size (default 1000). */
  readonly minMs?: number;
  readonly minIterations?: number;
  readonly maxIterations?: number;
  /**
   * A size whose timed matmuls would take longer than this, estimated from the size before at its
   * rate, is skipped (default 120 s: the plain cpu backend would need hours for 8192²).
   */
  readonly maxSecondsPerSize?: number;
  readonly tolerance?: number;
  readonly onPoint?: (point: SweepPoint) => void;
}

/** Waits until everything queued before `t` ran, reading one value (not the whole result). */
async function sync(tf: Tf, t: ReturnType<Tf['matMul']>): Promise<void> {
  const one = tf.slice(t, [0, 0], [1, 1]);
  try {
    await one.data();
  } finally {
    one.dispose();
  }
}

/** Times `count` n×n matmuls queued back to back; ms. */
async function timeBatch(tf: Tf, a: ReturnType<Tf['tensor2d']>, b: typeof a, count: number): Promise<number> {
  const t0 = performance.now();
  let last: ReturnType<Tf['matMul']> | undefined;
  for (let i = 0; i < count; i++) {
    const c = tf.matMul(a, b);
    last?.dispose();
    last = c;
  }
  if (last) {
    try {
      await sync(tf, last);
    } finally {
      last.dispose();
    }
  }
  return performance.now() - t0;
}

/** Measures and checks one size on the active backend. */
export async function sweepSize(
  tf: Tf,
  n: number,
  opts: Pick<SweepOptions, 'minMs' | 'minIterations' | 'maxIterations' | 'tolerance'> = {},
): Promise<Extract<SweepPoint, { gflops: number }>> {
  const minMs = opts.minMs ?? 1000;
  const minIterations = opts.minIterations ?? 3;
  const maxIterations = opts.maxIterations ?? 5000;
  const av = seededValues(n * n, 3);
  const bv = seededValues(n * n, 4);
  const a = tf.tensor2d(av, [n, n]);
  const b = tf.tensor2d(bv, [n, n]);
  try {
    await timeBatch(tf, a, b, 1); // warm-up: shader compilation, buffer pools
    const once = Math.max(await timeBatch(tf, a, b, 1), 0.01);
    let iterations = Math.min(maxIterations, Math.max(minIterations, Math.ceil(minMs / once)));
    let totalMs = await timeBatch(tf, a, b, iterations);
    if (totalMs < minMs / 2 && iterations < maxIterations) {
      // The single run overestimated (a synchronisation costs more than a queued matmul): again, longer.
      iterations = Math.min(maxIterations, Math.ceil((iterations * minMs) / Math.max(totalMs, 0.01)));
      totalMs = await timeBatch(tf, a, b, iterations);
    }
    const c = tf.matMul(a, b);
    const out = new Float32Array(n * n);
    const r0 = performance.now();
    try {
      await readInto(tf, c, out);
    } finally {
      c.dispose();
    }
    const readbackMs = performance.now() - r0;
    return {
      n,
      iterations,
      totalMs: Math.round(totalMs * 10) / 10,
      gflops: Math.round(((2 * n ** 3 * iterations) / (totalMs * 1e6)) * 100) / 100,
      readbackMs: Math.round(readbackMs * 10) / 10,
      check: checkProductWithVector(av, bv, out, n, opts.tolerance),
    };
  } finally {
    a.dispose();
    b.dispose();
  }
}

/**
 * The estimated seconds of a size's timed matmuls at the rate the size before reached (at least
 * `minIterations` of them plus the warm-up), or null without a rate.
 */
export function estimateSeconds(n: number, gflops: number | null, minIterations = 3): number | null {
  if (gflops === null || !(gflops > 0)) return null;
  return ((minIterations + 2) * 2 * n ** 3) / (gflops * 1e9);
}

/** The sweep over `sizes` on the active backend (sizes too slow at the rate measured so far are skipped). */
export async function runMatmulSweep(tf: Tf, options: SweepOptions = {}): Promise<SweepPoint[]> {
  const sizes = options.sizes ?? SWEEP_SIZES;
  const budget = options.maxSecondsPerSize ?? 120;
  const points: SweepPoint[] = [];
  let rate: number | null = null;
  for (const n of sizes) {
    const estimate = estimateSeconds(n, rate, options.minIterations ?? 3);
    let point: SweepPoint;
    const failedBefore = points.find((p) => 'failed' in p);
    if (failedBefore !== undefined) {
      point = { n, skipped: `${failedBefore.n}² failed` };
    } else if (estimate !== null && estimate > budget) {
      point = {
        n,
        skipped: `would take about ${Math.round(estimate)} s at ${rate?.toFixed(1)} GFLOP/s (limit ${budget} s)`,
      };
    } else {
      try {
        const measured = await sweepSize(tf, n, options);
        rate = measured.gflops;
        point = measured;
      } catch (err) {
        point = { n, failed: err instanceof Error ? err.message : String(err) };
      }
    }
    points.push(point);
    options.onPoint?.(point);
  }
  return points;
}
