import { describe, expect, it } from 'vitest';

import { loadTf } from '@gpumesh/compute';

import { referenceMatmul, seededValues } from './matmul-check.js';
import {
  checkProductWithVector,
  estimateSeconds,
  runMatmulSweep,
  SWEEP_CHECK_TOLERANCE,
  type SweepPoint,
} from './matmul-sweep.js';

/** Rounds float32 values to TF32 (10-bit mantissa, round to nearest). */
function tf32(values: Float32Array): Float32Array {
  const f = Float32Array.from(values);
  const bits = new Uint32Array(f.buffer);
  for (let i = 0; i < bits.length; i++) bits[i] = ((bits[i] + 0x1000) & 0xffffe000) >>> 0;
  return f;
}

describe('checkProductWithVector (A·(B·x) against C·x in float64)', () => {
  const n = 96;
  const a = seededValues(n * n, 3);
  const b = seededValues(n * n, 4);
  const honest = Float32Array.from(referenceMatmul(a, b, n, n, n));

  it('accepts a float32 product', () => {
    const c = checkProductWithVector(a, b, honest, n);
    expect(c.ok).toBe(true);
    expect(c.relError).toBeLessThan(1e-6);
    expect(c.tolerance).toBe(SWEEP_CHECK_TOLERANCE);
  });

  it('rejects one wrong entry, a transposed product, a NaN, and TF32 arithmetic', () => {
    const oneWrong = Float32Array.from(honest);
    oneWrong[n * 40 + 17] += 1;
    expect(checkProductWithVector(a, b, oneWrong, n).ok).toBe(false);
    const transposed = Float32Array.from(referenceMatmul(b, a, n, n, n));
    expect(checkProductWithVector(a, b, transposed, n).ok).toBe(false);
    const nan = Float32Array.from(honest);
    nan[5] = Number.NaN;
    expect(checkProductWithVector(a, b, nan, n).ok).toBe(false);
    const reduced = Float32Array.from(referenceMatmul(tf32(a), tf32(b), n, n, n));
    const r = checkProductWithVector(a, b, reduced, n);
    expect(r.ok).toBe(false);
    expect(r.relError).toBeGreaterThan(1e-4);
  });

  it('refuses arrays shorter than n²', () => {
    expect(() => checkProductWithVector(a, b, honest.subarray(0, 10), n)).toThrow(RangeError);
  });
});

describe('runMatmulSweep', () => {
  it('times and checks each size on a real backend (wasm), skipping a size too slow for the budget', async () => {
    const { tf } = await loadTf('wasm');
    // tfjs is shared by the specs of a worker: what the sweep leaves is counted from here.
    const tensorsBefore = tf.memory().numTensors;
    const seen: SweepPoint[] = [];
    const points = await runMatmulSweep(tf, {
      sizes: [64, 128],
      minMs: 20,
      onPoint: (p) => seen.push(p),
    });
    expect(seen).toEqual(points);
    expect(points.map((p) => p.n)).toEqual([64, 128]);
    for (const p of points) {
      if (!('gflops' in p)) throw new Error(`size ${p.n} not measured: ${JSON.stringify(p)}`);
      expect(p.gflops).toBeGreaterThan(0);
      expect(p.iterations).toBeGreaterThanOrEqual(3);
      expect(p.check.ok).toBe(true);
      expect(p.check.relError).toBeLessThan(1e-6);
    }
    const tight = await runMatmulSweep(tf, { sizes: [64, 4096], minMs: 5, maxSecondsPerSize: 1 });
    expect('gflops' in tight[0]).toBe(true);
    expect(tight[1]).toMatchObject({ n: 4096, skipped: expect.stringMatching(/would take about \d+ s/) });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('records a size that cannot run and skips the larger ones', async () => {
    const { tf } = await loadTf('wasm');
    const tensorsBefore = tf.memory().numTensors;
    // A backend refusing 128² (as a GPU refuses a buffer over its limits): 64² still measured.
    const refusing = {
      ...tf,
      matMul: ((a, b) => {
        if (a instanceof tf.Tensor && a.shape[0] === 128)
          throw new Error('buffer size exceeds maxStorageBufferBindingSize');
        return tf.matMul(a, b);
      }) as typeof tf.matMul,
    };
    const points = await runMatmulSweep(refusing, { sizes: [64, 128, 256], minMs: 5 });
    expect('gflops' in points[0]).toBe(true);
    expect(points[1]).toEqual({ n: 128, failed: 'buffer size exceeds maxStorageBufferBindingSize' });
    expect(points[2]).toEqual({ n: 256, skipped: '128² failed' });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('estimates a size from the rate of the size before', () => {
    expect(estimateSeconds(8192, null)).toBeNull();
    // 5 matmuls of 8192² (1.1 TFLOP each) at 1 GFLOP/s: about 5497 s.
    expect(estimateSeconds(8192, 1)).toBeCloseTo((5 * 2 * 8192 ** 3) / 1e9, 6);
  });
});
