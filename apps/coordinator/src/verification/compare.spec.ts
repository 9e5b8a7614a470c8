import { describe, expect, it } from 'vitest';
import { encodeTensor, parseJobSpec, tensorView, type TensorRef } from '@gpumesh/protocol';
import { UNREAD_OUTPUTS_REASON, compareResults } from './compare.js';

const spec = parseJobSpec({
  version: 1,
  kind: 'matmul',
  maxPricePerUnit: '1',
  inputs: [
    encodeTensor('a', 'float32', [2, 2], new Float32Array([1, 2, 3, 4])),
    encodeTensor('b', 'float32', [2, 2], new Float32Array([1, 0, 0, 1])),
  ],
});

function ref(sha: string): TensorRef {
  const sha256 = sha.repeat(64);
  return { name: 'c', ref: `sha256:${sha256}`, dtype: 'float32', shape: [2, 2], sha256 };
}

function loaded(values: number[], sha: string): ReturnType<typeof tensorView> {
  const bytes = new Uint8Array(new Float32Array(values).buffer);
  return Object.assign(tensorView('c', 'float32', [2, 2], bytes), { sha256: sha.repeat(64) });
}

describe('compareResults with outputs by ref', () => {
  it('agrees bit-identical outputs by their hash, read back or not', () => {
    expect(compareResults([ref('a')], [ref('a')], { spec }).agree).toBe(true);
    expect(compareResults([loaded([1, 2, 3, 4], 'a')], [loaded([9, 9, 9, 9], 'a')], { spec }).agree).toBe(
      true,
    );
  });

  it('compares read-back outputs of different hashes within tolerance', () => {
    const close = compareResults([loaded([1, 2, 3, 4], 'a')], [loaded([1, 2, 3, 4.000001], 'b')], { spec });
    expect(close.agree).toBe(true);
    const far = compareResults([loaded([1, 2, 3, 4], 'a')], [loaded([1, 2, 3, 40], 'b')], { spec });
    expect(far.agree).toBe(false);
  });

  it('does not agree outputs left by ref with different hashes, and says why', () => {
    const verdict = compareResults([ref('a')], [ref('b')], { spec });
    expect(verdict).toMatchObject({ agree: false, reason: UNREAD_OUTPUTS_REASON });
  });
});
