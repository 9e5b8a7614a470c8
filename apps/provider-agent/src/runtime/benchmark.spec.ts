import { describe, expect, it } from 'vitest';

import { runMatmulBenchmark, type BenchmarkProgress } from './benchmark.js';

describe('runMatmulBenchmark', () => {
  it('sweeps sizes on wasm, reports progress and the best sustained GFLOP/s', async () => {
    const progress: BenchmarkProgress[] = [];
    const r = await runMatmulBenchmark({
      backend: 'wasm',
      sizes: [64, 128, 256],
      minMsPerSize: 30,
      onProgress: (p) => progress.push(p),
    });
    expect(progress.map((p) => [p.done, p.total, p.size])).toEqual([
      [1, 3, 64],
      [2, 3, 128],
      [3, 3, 256],
    ]);
    expect(r.results).toHaveLength(3);
    expect(r.bestGflops).toBeGreaterThan(0.5);
    expect(r.bestGflops).toBeCloseTo(Math.max(...r.results.map((x) => x.gflops)), 1);
    expect(r.results.every((x) => x.iterations >= 3)).toBe(true);
    // The wasm SIMD ceiling of this core is measured beside it, above what a matmul reaches.
    expect(r.ceilingGflops).toBeGreaterThan(r.bestGflops);
    expect(r.ratioOfCeiling).toBeCloseTo(r.bestGflops / (r.ceilingGflops ?? 1), 1);
  });

  it('rejects nonsense sizes', async () => {
    await expect(runMatmulBenchmark({ sizes: [0] })).rejects.toThrow(/1\.\.8192/);
  });
});
