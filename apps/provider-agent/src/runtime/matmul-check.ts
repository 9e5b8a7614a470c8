import { readInto, seededValues, type Tf } from '@gpumesh/compute';

/** Deterministic pseudo-random float32 values (from @gpumesh/compute, where the benches and tests get them). */
export { seededValues };

/** Plain-JS reference C = A·B in float64 accumulation (row-major, A m×k, B k×n). */
export function referenceMatmul(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      const row = p * n;
      const out = i * n;
      for (let j = 0; j < n; j++) c[out + j] += av * b[row + j];
    }
  }
  return c;
}

/** Largest |x − y| / (1 + |y|) over the two arrays. */
export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const e = Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i]));
    if (!(e <= worst)) worst = Number.isNaN(e) ? Number.POSITIVE_INFINITY : e;
  }
  return worst;
}

export interface MatmulCheck {
  readonly ok: boolean;
  readonly maxRelError: number;
  readonly shape: readonly [number, number, number];
}

/** Runs a non-square matmul on the active backend and compares it with `referenceMatmul`. */
export async function checkMatmul(tf: Tf, m = 67, k = 129, n = 95, tolerance = 1e-4): Promise<MatmulCheck> {
  const a = seededValues(m * k, 1);
  const b = seededValues(k * n, 2);
  const c = tf.tidy(() => tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n])));
  try {
    const got = await c.data();
    const err = maxRelativeError(got as Float32Array, referenceMatmul(a, b, m, k, n));
    return { ok: err <= tolerance, maxRelError: err, shape: [m, k, n] };
  } finally {
    c.dispose();
  }
}

export interface MatmulTiming {
  readonly n: number;
  readonly iterations: number;
  readonly totalMs: number;
  /** Sustained rate over all timed iterations: 2n³·iterations / time. */
  readonly gflops: number;
  /** Rate of the fastest single iteration. */
  readonly peakGflops: number;
}

/**
 * Times n×n·n×n float32 matmuls on the active backend, reading each result back (so asynchronous
 * backends are really finished) into one reused array: one warm-up, then iterations until `minMs`
 * passed (at least `minIterations`, at most `maxIterations`).
 */
export async function timeMatmul(
  tf: Tf,
  n: number,
  opts: { minMs?: number; minIterations?: number; maxIterations?: number } = {},
): Promise<MatmulTiming> {
  const minMs = opts.minMs ?? 200;
  const minIterations = opts.minIterations ?? 2;
  const maxIterations = opts.maxIterations ?? 1000;
  const a = tf.tensor2d(seededValues(n * n, 3), [n, n]);
  const b = tf.tensor2d(seededValues(n * n, 4), [n, n]);
  const out = new Float32Array(n * n);
  try {
    const once = async (): Promise<number> => {
      const t0 = performance.now();
      const c = tf.matMul(a, b);
      await readInto(tf, c, out);
      c.dispose();
      return performance.now() - t0;
    };
    await once();
    let total = 0;
    let best = Number.POSITIVE_INFINITY;
    let iterations = 0;
    while (iterations < maxIterations && (iterations < minIterations || total < minMs)) {
      const ms = await once();
      total += ms;
      best = Math.min(best, ms);
      iterations++;
    }
    const flop = 2 * n ** 3;
    return {
      n,
      iterations,
      totalMs: total,
      gflops: (flop * iterations) / (total * 1e6),
      peakGflops: flop / (best * 1e6),
    };
  } finally {
    a.dispose();
    b.dispose();
  }
}
