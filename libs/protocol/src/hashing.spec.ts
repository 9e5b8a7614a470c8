import { describe, expect, it } from 'vitest';

import { hashOutputs, hashParsedSpec, hashSpec, hashTensors, sha256Hex } from './hashing.js';
import { parseJobSpec } from './job-spec.js';
import { decodeTensor, encodeTensor } from './tensor.js';
import { matmulSpecInput } from './test-fixtures.js';

describe('hashing', () => {
  it('sha256Hex matches the known vector', () => {
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('hashSpec ignores defaults being explicit and key order', () => {
    const input = matmulSpecInput();
    const explicit = { ...parseJobSpec(input) };
    const reordered = Object.fromEntries(Object.entries(explicit).reverse());
    expect(hashSpec(input as never)).toBe(hashSpec(explicit));
    expect(hashSpec(reordered as never)).toBe(hashSpec(explicit));
    expect(hashSpec({ ...explicit, redundancy: 2 })).not.toBe(hashSpec(explicit));
  });

  it('hashParsedSpec of a parsed spec is its hashSpec', () => {
    const parsed = parseJobSpec(matmulSpecInput());
    expect(hashParsedSpec(parsed)).toBe(hashSpec(parsed));
    expect(hashParsedSpec({ ...parsed, redundancy: 3 })).toBe(hashSpec({ ...parsed, redundancy: 3 }));
    expect(hashParsedSpec({ ...parsed, redundancy: 3 })).not.toBe(hashParsedSpec(parsed));
  });

  it('hashTensors is order-independent and equal for wire and decoded forms', () => {
    const a = encodeTensor('a', 'float32', [2], Float32Array.from([1, 2]));
    const b = encodeTensor('b', 'int32', [1], Int32Array.from([7]));
    expect(hashTensors([a, b])).toBe(hashTensors([b, a]));
    expect(hashTensors([a, b])).toBe(hashTensors([decodeTensor(a), decodeTensor(b)]));
    expect(hashTensors([a])).not.toBe(hashTensors([{ ...a, shape: [1, 2] }]));
  });

  it('input and output hashes of the same tensors differ (domain separation)', () => {
    const a = encodeTensor('a', 'float32', [1], Float32Array.from([1]));
    expect(hashOutputs([a])).not.toBe(hashTensors([a]));
    expect(hashOutputs([a])).toMatch(/^[0-9a-f]{64}$/);
  });
});
