import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { MAX_TENSOR_RANK } from './constants.js';
import { decodeNpy, encodeNpy, encodeNpyHeader, NpyFormatError, readNpyHeader } from './npy.js';
import { BYTES_PER_ELEMENT, DTYPES } from './tensor.js';

// Written by NumPy 1.24 (`np.save`), kept as hex so the test needs no Python.
const FROM_NUMPY = {
  float32_2x3:
    '934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a000000000000803f0000004000004040000080400000a040',
  int32_3:
    '934e554d5059010076007b276465736372273a20273c6934272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a01000000feffffff03000000',
  bool_scalar:
    '934e554d5059010076007b276465736372273a20277c6231272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a01',
  float32_0x4:
    '934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028302c2034292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a',
};
const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

describe('.npy codec', () => {
  it('reads files NumPy wrote', () => {
    const f = decodeNpy(hex(FROM_NUMPY.float32_2x3));
    expect(f.dtype).toBe('float32');
    expect(f.shape).toEqual([2, 3]);
    expect([...new Float32Array(f.data.slice().buffer)]).toEqual([0, 1, 2, 3, 4, 5]);
    const i = decodeNpy(hex(FROM_NUMPY.int32_3));
    expect([i.dtype, i.shape]).toEqual(['int32', [3]]);
    expect([...new Int32Array(i.data.slice().buffer)]).toEqual([1, -2, 3]);
    const b = decodeNpy(hex(FROM_NUMPY.bool_scalar));
    expect([b.dtype, b.shape, [...b.data]]).toEqual(['bool', [], [1]]);
    const e = decodeNpy(hex(FROM_NUMPY.float32_0x4));
    expect([e.shape, e.data.length]).toEqual([[0, 4], 0]);
  });

  it('writes what NumPy writes, byte for byte, for these arrays', () => {
    const f = decodeNpy(hex(FROM_NUMPY.float32_2x3));
    expect(Buffer.from(encodeNpy('float32', [2, 3], f.data)).toString('hex')).toBe(FROM_NUMPY.float32_2x3);
    const i = decodeNpy(hex(FROM_NUMPY.int32_3));
    expect(Buffer.from(encodeNpy('int32', [3], i.data)).toString('hex')).toBe(FROM_NUMPY.int32_3);
  });

  it('round-trips every dtype and shape, with data 64-byte aligned', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...DTYPES),
        fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: MAX_TENSOR_RANK }),
        (dtype, shape) => {
          const n = shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[dtype];
          const data = new Uint8Array(n).map((_, k) => (k * 37) & (dtype === 'bool' ? 1 : 0xff));
          const file = encodeNpy(dtype, shape, data);
          const header = encodeNpyHeader(dtype, shape);
          expect(header.length % 64).toBe(0);
          const back = decodeNpy(file);
          expect(back.dtype).toBe(dtype);
          expect(back.shape).toEqual(shape);
          expect(Buffer.from(back.data).equals(Buffer.from(data))).toBe(true);
        },
      ),
    );
  });

  it('asks for more bytes until the header is complete, whatever the split', () => {
    const file = hex(FROM_NUMPY.float32_2x3);
    let seen = 0;
    for (let cut = 0; cut <= file.length; cut++) {
      const r = readNpyHeader(file.subarray(0, cut));
      if ('need' in r) expect(r.need).toBeGreaterThan(cut);
      else {
        expect(r).toEqual({ dtype: 'float32', shape: [2, 3], dataOffset: 128, dataLength: 24 });
        seen++;
      }
    }
    expect(seen).toBe(file.length - 128 + 1);
  });

  it('refuses what it cannot take, saying why', () => {
    const bad = (text: string, version = 1): Uint8Array => {
      const dict = Buffer.from(text.padEnd(117, ' ') + '\n', 'latin1');
      const out = new Uint8Array(10 + dict.length);
      out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
      new DataView(out.buffer).setUint16(8, dict.length, true);
      out.set(dict, 10);
      return out;
    };
    expect(() => readNpyHeader(Buffer.from('PK\x03\x04 zip'))).toThrow(/not a \.npy file/);
    expect(() => readNpyHeader(bad("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"))).toThrow(
      /'<f8' is not supported.*float32/,
    );
    expect(() => readNpyHeader(bad("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }"))).toThrow(
      NpyFormatError,
    );
    expect(() => readNpyHeader(bad("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }"))).toThrow(
      /Fortran order/,
    );
    expect(() => readNpyHeader(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }"))).toThrow(
      /not a whole number/,
    );
    expect(() =>
      readNpyHeader(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1), }")),
    ).toThrow(/rank 7/);
    expect(() => readNpyHeader(bad("{'descr': '<f4', 'shape': (2,), }"))).toThrow(/must name/);
    expect(() => readNpyHeader(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 4))).toThrow(
      /version 4/,
    );
    expect(() => decodeNpy(hex(FROM_NUMPY.float32_2x3).subarray(0, 140))).toThrow(/needs 24/);
  });
});
