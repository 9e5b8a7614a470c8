import { describe, expect, it } from 'vitest';
import { decodeTensor, tensor } from './tensor.js';
import { fromNpy, toNpy } from './npy.js';

describe('.npy helpers', () => {
  it('writes a tensor as the .npy NumPy writes and reads it back', () => {
    const t = tensor('c', Float32Array.from([1, 2.5, -3, 4, 5, 6]), [2, 3]);
    const npy = toNpy(t);
    const header = new TextDecoder().decode(npy.subarray(0, 128));
    expect([...npy.subarray(0, 8)]).toEqual([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0]);
    expect(header).toContain("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
    expect(npy.length).toBe(128 + 24);
    const back = fromNpy('c', npy);
    expect(back).toEqual(t);
    expect([...decodeTensor(back)]).toEqual([1, 2.5, -3, 4, 5, 6]);
  });

  it('refuses a truncated file', () => {
    const npy = toNpy(tensor('a', Int32Array.from([1, 2, 3]), [3]));
    expect(() => fromNpy('a', npy.subarray(0, npy.length - 1))).toThrow(/needs 12/);
  });
});
