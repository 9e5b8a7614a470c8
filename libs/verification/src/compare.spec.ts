import { describe, expect, it } from 'vitest';

import { computeReference } from '@gpumesh/compute';
import { encodeTensor, parseJobSpec } from '@gpumesh/protocol';

import { compareOutputs } from './compare.js';
import { matmulJob, providerOutputs, type Cheat } from './test-fixtures.js';
import { FLOAT_RELATIVE_L2_TOLERANCE } from './tolerance.js';

const f = (values: number[], name = 'y'): ReturnType<typeof encodeTensor> =>
  encodeTensor(name, 'float32', [values.length], Float32Array.from(values));
const i32 = (values: number[]): ReturnType<typeof encodeTensor> =>
  encodeTensor('k', 'int32', [values.length], Int32Array.from(values));

describe('compareOutputs without a context (the flat historic bound)', () => {
  it('accepts last-bit float differences and rejects real ones', () => {
    expect(compareOutputs([f([1, 2, 3])], [f([1.0000001, 2, 2.9999998])]).agree).toBe(true);
    const wrong = compareOutputs([f([1, 2, 3])], [f([1, 2, 3.1])]);
    expect(wrong.agree).toBe(false);
    expect(wrong.reason).toContain('output y');
    expect(wrong.bound.relativeL2).toBe(FLOAT_RELATIVE_L2_TOLERANCE);
    expect(wrong.margin).toBeLessThan(1);
  });

  it('checks names, counts, dtypes and shapes, and integers and bools exactly', () => {
    expect(compareOutputs([i32([1, 2])], [i32([1, 2])]).agree).toBe(true);
    const int = compareOutputs([i32([1, 2])], [i32([1, 3])]);
    expect(int).toMatchObject({ agree: false, reason: 'output k[1]: 2 vs 3 (int32 must match exactly)' });
    const bool = (v: number[]): ReturnType<typeof encodeTensor> =>
      encodeTensor('m', 'bool', [v.length], Uint8Array.from(v));
    expect(compareOutputs([bool([1, 0])], [bool([1, 1])]).agree).toBe(false);
    expect(compareOutputs([f([1, 2])], [f([1, 2, 3])]).reason).toBe('output y: shape [2] vs [3]');
    expect(compareOutputs([f([1])], [f([1], 'z')]).reason).toBe('output y missing');
    expect(compareOutputs([f([1])], []).reason).toBe('1 outputs vs 0');
    expect(compareOutputs([f([1])], [encodeTensor('y', 'int32', [1], Int32Array.from([1]))]).reason).toBe(
      'output y: dtype float32 vs int32',
    );
  });

  it('requires NaN and ±Inf at the same places', () => {
    expect(compareOutputs([f([NaN, Infinity, 1])], [f([NaN, Infinity, 1])]).agree).toBe(true);
    const nan = compareOutputs([f([NaN, 1])], [f([0, 1])]);
    expect(nan.agree).toBe(false);
    expect(nan.reason).toContain('non-finite');
    expect(compareOutputs([f([Infinity])], [f([-Infinity])]).agree).toBe(false);
    expect(compareOutputs([f([1e38 * 10])], [f([3.4e38])]).agree).toBe(false);
  });

  it('compares all-zero and tiny outputs sensibly', () => {
    expect(compareOutputs([f([0, 0])], [f([0, 0])]).agree).toBe(true);
    expect(compareOutputs([f([1e-20, 0])], [f([1e-20, 0])]).agree).toBe(true);
    expect(compareOutputs([f([0, 0])], [f([0, 1e-3])]).agree).toBe(false);
  });
});

describe('compareOutputs with the job as context', () => {
  it('lets honest backends (wasm vs cpu) agree and scales the bound with K', async () => {
    const small = matmulJob(8, 16, 8);
    const large = matmulJob(8, 2048, 8);
    const s = compareOutputs(
      await computeReference(small.spec, { backend: 'cpu' }),
      await computeReference(small.spec, { backend: 'wasm' }),
      small,
    );
    const l = compareOutputs(
      await computeReference(large.spec, { backend: 'cpu' }),
      await computeReference(large.spec, { backend: 'wasm' }),
      large,
    );
    expect(s.agree).toBe(true);
    expect(l.agree).toBe(true);
    expect(l.margin).toBeGreaterThan(4);
    expect(l.tensors[0].bound.absolute).toBeGreaterThan(s.tensors[0].bound.absolute);
  });

  it.each<Cheat>(['few-wrong', 'noise-1e-3', 'zeros', 'stale'])(
    'puts the %s cheat outside the bounds (small and large K)',
    async (cheat) => {
      for (const [m, k, n] of [
        [8, 64, 8],
        [16, 4096, 16],
      ] as const) {
        const job = matmulJob(m, k, n);
        const reference = await computeReference(job.spec, { backend: 'cpu' });
        const verdict = compareOutputs(reference, await providerOutputs(job.spec, cheat), job);
        expect(verdict.agree, `${cheat} at K=${k}`).toBe(false);
        expect(verdict.margin).toBeLessThan(1);
        expect(verdict.reason).toMatch(/output c/);
      }
    },
  );

  it('does not punish cancellation: a result near zero from large operands', () => {
    // Rows of A orthogonal to the columns of B: C is ~0 while |A||B| is large.
    const k = 512;
    const a = new Float32Array(k).map((_, i) => (i % 2 === 0 ? 1000 : -1000));
    const b = new Float32Array(k).fill(1.1);
    const spec = parseJobSpec({
      version: 1,
      kind: 'matmul',
      maxPricePerUnit: '1',
      inputs: [encodeTensor('a', 'float32', [1, k], a), encodeTensor('b', 'float32', [k, 1], b)],
    });
    const c = (v: number): ReturnType<typeof encodeTensor> =>
      encodeTensor('c', 'float32', [1, 1], Float32Array.from([v]));
    // Two summation orders of this sum can differ by a few ulps of the partial sums (~1100).
    expect(compareOutputs([c(0)], [c(0.000244140625)], { spec }).agree).toBe(true);
    expect(compareOutputs([c(0)], [c(5)], { spec }).agree).toBe(false);
  });

  it('compares int32 matmul outputs exactly', async () => {
    const spec = parseJobSpec({
      version: 1,
      kind: 'matmul',
      maxPricePerUnit: '1',
      inputs: [
        encodeTensor('a', 'int32', [2, 2], Int32Array.from([1, 2, 3, 4])),
        encodeTensor('b', 'int32', [2, 2], Int32Array.from([5, 6, 7, 8])),
      ],
    });
    const [c] = await computeReference(spec);
    expect(compareOutputs([c], [c], { spec }).agree).toBe(true);
    const off = encodeTensor('c', 'int32', [2, 2], Int32Array.from([19, 22, 43, 51]));
    expect(compareOutputs([c], [off], { spec }).agree).toBe(false);
  });
});
