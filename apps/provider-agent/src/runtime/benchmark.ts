import { loadTf, measureWasmSimdCeiling, type WebgpuAdapterInfo } from '@gpumesh/compute';
import type { Backend } from '@gpumesh/protocol';

import { checkMatmul, timeMatmul, type MatmulTiming } from './matmul-check.js';
import { runMatmulSweep, SWEEP_SIZES, type SweepOptions, type SweepPoint } from './matmul-sweep.js';

export const DEFAULT_BENCH_SIZES: readonly number[] = [128, 256, 512, 768, 1024];

export interface BenchmarkProgress {
  /** Sizes finished so far (0..total). */
  readonly done: number;
  readonly total: number;
  readonly size: number;
  /** Sustained GFLOP/s of the size just finished. */
  readonly gflops: number;
}

export interface BenchmarkOptions {
  /** Backend to measure (loaded in this thread); default wasm. */
  readonly backend?: Backend;
  readonly sizes?: readonly number[];
  /** Minimum timed milliseconds per size (default 400). */
  readonly minMsPerSize?: number;
  /** Called after each size, e.g. to advance a cli-progress bar. */
  readonly onProgress?: (progress: BenchmarkProgress) => void;
}

export interface BenchmarkResult {
  readonly backend: Backend;
  readonly version: string;
  readonly results: readonly MatmulTiming[];
  /** Best sustained GFLOP/s over the sizes (what goes into the advert). */
  readonly bestGflops: number;
  readonly bestSize: number;
  /** The matmul check run before timing: the figures count only when it matched the reference. */
  readonly check: { readonly ok: true; readonly maxRelError: number };
  /** webgpu only: the adapter measured (a software one is CPU-class). */
  readonly adapter?: WebgpuAdapterInfo;
  /**
   * wasm and cpu backends: the wasm SIMD float32 ceiling of this core, measured (GFLOP/s), and the
   * share of it the best size reached.
   */
  readonly ceilingGflops?: number;
  readonly ratioOfCeiling?: number;
}

/** Float32 matmul GFLOP/s sweep over square sizes on one backend in this thread. */
export async function runMatmulBenchmark(options: BenchmarkOptions = {}): Promise<BenchmarkResult> {
  const backend = options.backend ?? 'wasm';
  const sizes = options.sizes ?? DEFAULT_BENCH_SIZES;
  if (sizes.length === 0 || !sizes.every((n) => Number.isInteger(n) && n > 0 && n <= 8192)) {
    throw new Error('benchmark sizes must be integers in 1..8192');
  }
  const loaded = await loadTf(backend);
  const check = await checkMatmul(loaded.tf);
  if (!check.ok) {
    throw new Error(
      `${backend} computed a wrong matmul (max relative error ${check.maxRelError}): not benchmarked`,
    );
  }
  const results: MatmulTiming[] = [];
  for (const n of sizes) {
    const timing = await timeMatmul(loaded.tf, n, { minMs: options.minMsPerSize ?? 400, minIterations: 3 });
    results.push(timing);
    options.onProgress?.({ done: results.length, total: sizes.length, size: n, gflops: timing.gflops });
  }
  const best = results.reduce((a, b) => (b.gflops > a.gflops ? b : a));
  // Native backends have other ceilings (AVX, the GPU); the wasm one is measured in about half a second.
  const ceiling =
    backend === 'wasm' || backend === 'cpu'
      ? measureWasmSimdCeiling({ roundMs: 30, rounds: 3 }).gflops
      : undefined;
  return {
    backend,
    version: loaded.version,
    results,
    bestGflops: Math.round(best.gflops * 10) / 10,
    bestSize: best.n,
    check: { ok: true, maxRelError: check.maxRelError },
    ...(loaded.adapter === undefined ? {} : { adapter: loaded.adapter }),
    ...(ceiling === undefined
      ? {}
      : {
          ceilingGflops: Math.round(ceiling * 10) / 10,
          ratioOfCeiling: Math.round((best.gflops / ceiling) * 1000) / 1000,
        }),
  };
}

/** What `benchmark --sweep` (and so `gpu-check`) measures on one backend. */
export interface SweepBenchmarkResult {
  readonly backend: Backend;
  readonly version: string;
  readonly points: readonly SweepPoint[];
  /** Best sustained GFLOP/s among the sizes whose product passed its check (null: none did). */
  readonly bestGflops: number | null;
  readonly bestSize: number | null;
  /** Every measured size passed its check. */
  readonly allChecked: boolean;
  /** webgpu only: the adapter measured (a software one is CPU-class). */
  readonly adapter?: WebgpuAdapterInfo;
}

/**
 * The gpu-check sweep on one backend loaded in this thread: 1024² to 8192² (or `sizes`), timed on the
 * device and each product checked against a float64 reference (see matmul-sweep.ts).
 */
export async function runSweepBenchmark(
  backend: Backend,
  options: SweepOptions = {},
): Promise<SweepBenchmarkResult> {
  const sizes = options.sizes ?? SWEEP_SIZES;
  if (sizes.length === 0 || !sizes.every((n) => Number.isInteger(n) && n > 0 && n <= 16384)) {
    throw new Error('sweep sizes must be integers in 1..16384');
  }
  const loaded = await loadTf(backend);
  const check = await checkMatmul(loaded.tf);
  if (!check.ok) {
    throw new Error(
      `${backend} computed a wrong matmul (max relative error ${check.maxRelError}): not swept`,
    );
  }
  const points = await runMatmulSweep(loaded.tf, { ...options, sizes });
  const measured = points.filter((p): p is Extract<SweepPoint, { gflops: number }> => 'gflops' in p);
  const good = measured.filter((p) => p.check.ok);
  const best = good.reduce<(typeof good)[number] | null>(
    (a, b) => (a === null || b.gflops > a.gflops ? b : a),
    null,
  );
  return {
    backend,
    version: loaded.version,
    points,
    bestGflops: best === null ? null : Math.round(best.gflops * 10) / 10,
    bestSize: best?.n ?? null,
    allChecked: measured.length > 0 && good.length === measured.length,
    ...(loaded.adapter === undefined ? {} : { adapter: loaded.adapter }),
  };
}
