import { describe, expect, it } from 'vitest';
import { encodeTensor, parseJobSpec, type JobSpec, type TensorWire } from '@gpumesh/protocol';
import { checkResultSanity } from './sanity.js';

function matmul(m: number, k: number, n: number, fill = 0.5, params: Record<string, unknown> = {}): JobSpec {
  return parseJobSpec({
    version: 1,
    kind: 'matmul',
    inputs: [
      encodeTensor('a', 'float32', params.transposeA ? [k, m] : [m, k], new Float32Array(m * k).fill(fill)),
      encodeTensor('b', 'float32', params.transposeB ? [n, k] : [k, n], new Float32Array(k * n).fill(fill)),
    ],
    params,
    requirements: {},
    maxPricePerUnit: '1',
  });
}

function inference(batch: number, outputs?: string[], x?: Float32Array): JobSpec {
  return parseJobSpec({
    version: 1,
    kind: 'inference',
    model: { hash: 'ab'.repeat(32), format: 'layers' },
    inputs: [encodeTensor('x', 'float32', [batch, 3], x ?? new Float32Array(batch * 3).fill(1))],
    ...(outputs ? { outputs } : {}),
    requirements: {},
    maxPricePerUnit: '1',
  });
}

const f32 = (name: string, shape: number[], fill: number): TensorWire =>
  encodeTensor(name, 'float32', shape, new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill));

describe('checkResultSanity', () => {
  it('accepts a plausible matmul result, zeros included (only a comparison can tell those)', () => {
    expect(checkResultSanity(matmul(2, 3, 4), [f32('c', [2, 4], 0.75)])).toEqual({ ok: true });
    expect(checkResultSanity(matmul(2, 3, 4), [f32('c', [2, 4], 0)])).toEqual({ ok: true });
    // transposed operands: c is still [m, n]
    const t = matmul(2, 3, 4, 0.5, { transposeA: true, transposeB: true });
    expect(checkResultSanity(t, [f32('c', [2, 4], 0.75)]).ok).toBe(true);
  });

  it('refuses Inf and NaN from finite matmul inputs (NON_FINITE_OUTPUT)', () => {
    for (const bad of [Infinity, -Infinity, NaN]) {
      const r = checkResultSanity(matmul(2, 3, 4), [f32('c', [2, 4], bad)]);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.code).toBe('NON_FINITE_OUTPUT');
    }
  });

  it('accepts Inf when the inputs hold Inf, or when finite inputs can overflow float32', () => {
    const spec = matmul(2, 3, 4);
    const withInf = {
      ...spec,
      inputs: [f32('a', [2, 3], Infinity), spec.inputs[1]],
    } as JobSpec;
    expect(checkResultSanity(withInf, [f32('c', [2, 4], Infinity)]).ok).toBe(true);
    // 3 × 3e19 × 3e19 ≈ 2.7e39 > float32 max: an honest overflow
    expect(checkResultSanity(matmul(2, 3, 4, 3e19), [f32('c', [2, 4], Infinity)]).ok).toBe(true);
  });

  it('refuses a matmul result of the wrong shape, name, dtype or count', () => {
    const spec = matmul(2, 3, 4);
    const codes = [
      checkResultSanity(spec, [f32('c', [4, 2], 1)]),
      checkResultSanity(spec, [f32('c', [2, 4, 1], 1)]),
      checkResultSanity(spec, [f32('d', [2, 4], 1)]),
      checkResultSanity(spec, [f32('c', [2, 4], 1), f32('e', [2, 4], 1)]),
      checkResultSanity(spec, [encodeTensor('c', 'int32', [2, 4], new Int32Array(8))]),
      checkResultSanity(spec, []),
      checkResultSanity(spec, [{ name: 'c', dtype: 'float32', shape: [2, 4], data: 'AAAA' }]),
    ].map((r) => (r.ok ? 'ok' : r.code));
    expect(codes).toEqual([
      'BAD_OUTPUT_SHAPE',
      'BAD_OUTPUT_SHAPE',
      'BAD_OUTPUT_NAME',
      'BAD_OUTPUT_NAME',
      'BAD_OUTPUT_DTYPE',
      'NO_OUTPUTS',
      'BAD_OUTPUT_TENSOR',
    ]);
  });

  it('checks an inference result: batch dimension first, named outputs, finite from finite inputs', () => {
    expect(checkResultSanity(inference(5), [f32('y', [5, 2], 0.1)]).ok).toBe(true);
    expect(checkResultSanity(inference(5, ['p', 'q']), [f32('q', [5], 1), f32('p', [5, 7], 1)]).ok).toBe(
      true,
    );
    const code = (r: ReturnType<typeof checkResultSanity>): string => (r.ok ? 'ok' : r.code);
    expect(code(checkResultSanity(inference(5), [f32('y', [4, 2], 0.1)]))).toBe('BAD_OUTPUT_SHAPE');
    expect(code(checkResultSanity(inference(5), [f32('y', [], 0.1)]))).toBe('BAD_OUTPUT_SHAPE');
    expect(code(checkResultSanity(inference(5, ['p']), [f32('q', [5], 1)]))).toBe('BAD_OUTPUT_NAME');
    expect(code(checkResultSanity(inference(5), [f32('y', [5, 2], Infinity)]))).toBe('NON_FINITE_OUTPUT');
    // a NaN input may honestly give NaN outputs
    const nanIn = new Float32Array(15).fill(1);
    nanIn[4] = NaN;
    expect(checkResultSanity(inference(5, undefined, nanIn), [f32('y', [5, 2], NaN)]).ok).toBe(true);
  });
});
