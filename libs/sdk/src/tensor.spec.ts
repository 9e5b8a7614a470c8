import { describe, expect, it } from 'vitest';
import { decodeTensor, tensor } from './tensor.js';

describe('tensor', () => {
  it('round-trips float32 and int32 values', () => {
    const f = tensor('a', new Float32Array([1, 2, 3, 4]), [2, 2]);
    expect(f).toMatchObject({ dtype: 'float32', shape: [2, 2], data: 'AACAPwAAAEAAAEBAAACAQA==' });
    expect([...decodeTensor(f)]).toEqual([1, 2, 3, 4]);
    expect([...decodeTensor(tensor('b', new Int32Array([-1, 7]), [2]))]).toEqual([-1, 7]);
  });
  it('rejects a shape that does not match the values', () => {
    expect(() => tensor('a', new Float32Array(3), [2, 2])).toThrow(/holds 4 values, got 3/);
  });
});
