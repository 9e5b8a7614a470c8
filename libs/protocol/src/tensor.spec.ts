import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { MAX_TENSOR_BYTES, MAX_TENSOR_RANK } from './constants.js';
import { ProtocolValidationError } from './errors.js';
import {
  decodeTensor,
  encodeTensor,
  firstNonFinite,
  parseTensorWire,
  safeParseTensorWire,
  type DType,
} from './tensor.js';

const shapeArb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 0, maxLength: 4 });

function valuesFor(dtype: DType, count: number): fc.Arbitrary<Float32Array | Int32Array | Uint8Array> {
  if (dtype === 'float32') {
    return fc
      .array(fc.float({ noNaN: true }), { minLength: count, maxLength: count })
      .map((v) => Float32Array.from(v));
  }
  if (dtype === 'int32') {
    return fc
      .array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { minLength: count, maxLength: count })
      .map((v) => Int32Array.from(v));
  }
  return fc
    .array(fc.integer({ min: 0, max: 1 }), { minLength: count, maxLength: count })
    .map((v) => Uint8Array.from(v));
}

const tensorArb = fc
  .tuple(fc.constantFrom<DType>('float32', 'int32', 'bool'), shapeArb)
  .chain(([dtype, shape]) =>
    valuesFor(
      dtype,
      shape.reduce((a, d) => a * d, 1),
    ).map((values) => ({ dtype, shape, values })),
  );

function thrown(fn: () => unknown): ProtocolValidationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolValidationError) return err;
    throw err;
  }
  throw new Error('expected a ProtocolValidationError');
}

describe('encodeTensor / decodeTensor', () => {
  it('round-trips every dtype and shape (property)', () => {
    fc.assert(
      fc.property(tensorArb, ({ dtype, shape, values }) => {
        const wire = encodeTensor('t', dtype, shape, values as never);
        const viaJson = JSON.parse(JSON.stringify(wire)) as unknown;
        const decoded = decodeTensor(viaJson);
        expect(decoded.dtype).toBe(dtype);
        expect(decoded.shape).toEqual(shape);
        expect(decoded.values.constructor).toBe(values.constructor);
        expect(Array.from(decoded.values)).toEqual(Array.from(values));
      }),
    );
  });

  it('keeps float32 bit patterns (NaN, -0, Infinity) intact', () => {
    const values = Float32Array.from([NaN, -0, Infinity, -Infinity, 1e-45]);
    const decoded = decodeTensor(encodeTensor('f', 'float32', [5], values));
    expect(new Uint8Array(decoded.values.buffer)).toEqual(new Uint8Array(values.buffer));
  });

  it('encodes little-endian bytes as base64', () => {
    expect(encodeTensor('i', 'int32', [1], Int32Array.from([1])).data).toBe(
      Buffer.from([1, 0, 0, 0]).toString('base64'),
    );
  });

  it('rejects a values array of the wrong length or type, naming the tensor', () => {
    expect(thrown(() => encodeTensor('w', 'float32', [2, 2], new Float32Array(3))).message).toMatch(
      /tensor "w".*4 elements/,
    );
    expect(thrown(() => encodeTensor('w', 'float32', [2], Int32Array.from([1, 2]) as never)).message).toMatch(
      /tensor "w".*Float32Array/,
    );
    expect(thrown(() => encodeTensor('b', 'bool', [1], Uint8Array.from([2]))).message).toMatch(
      /tensor "b".*0 or 1/,
    );
  });

  it('rejects oversize tensors with TENSOR_TOO_LARGE before allocating', () => {
    const err = thrown(() => encodeTensor('big', 'float32', [4096, 4097], new Float32Array(1)));
    expect(err.code).toBe('TENSOR_TOO_LARGE');
    expect(err.message).toContain('tensor "big"');
    const wire = thrown(() =>
      parseTensorWire({ name: 'huge', dtype: 'float32', shape: [1 << 20, 1 << 20], data: 'AAAA' }),
    );
    expect(wire.code).toBe('TENSOR_TOO_LARGE');
    expect(wire.message).toContain('shape: tensor "huge"');
  });

  it('rejects oversize tensors for any shape beyond the cap (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 1 << 16 }), { minLength: 1, maxLength: MAX_TENSOR_RANK }),
        (shape) => {
          const elements = shape.reduce((a, d) => a * d, 1);
          fc.pre(elements * 4 > MAX_TENSOR_BYTES);
          const result = safeParseTensorWire({ name: 'x', dtype: 'float32', shape, data: '' });
          expect(result.success).toBe(false);
          if (!result.success) expect(result.error.code).toBe('TENSOR_TOO_LARGE');
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects rank above MAX_TENSOR_RANK and non-positive dims, naming the field', () => {
    const wire = encodeTensor('r', 'bool', [1], Uint8Array.from([1]));
    const tooDeep = safeParseTensorWire({ ...wire, shape: [1, 1, 1, 1, 1, 1, 1] });
    expect(!tooDeep.success && tooDeep.error.message).toMatch(/shape: expected rank <= 6/);
    const zero = safeParseTensorWire({ ...wire, shape: [0] });
    expect(!zero.success && zero.error.message).toMatch(/shape: expected array of positive integers/);
  });

  it('rejects data whose byte length does not match the shape', () => {
    const wire = encodeTensor('m', 'float32', [2], Float32Array.from([1, 2]));
    const err = thrown(() => decodeTensor({ ...wire, shape: [3] }));
    expect(err.message).toMatch(/data: tensor "m": expected 12 bytes for float32\[3\], got 8/);
  });

  it('rejects malformed and non-canonical base64', () => {
    expect(safeParseTensorWire({ name: 'b', dtype: 'bool', shape: [3], data: 'AAA*' }).success).toBe(false);
    // "AAE=" decodes to [0, 1]; "AAF=" has non-zero padding bits and decodes to the same bytes.
    expect(
      thrown(() => decodeTensor({ name: 'b', dtype: 'bool', shape: [2], data: 'AAF=' })).message,
    ).toMatch(/canonical base64/);
  });

  it('accepts padding only at the end, and only the standard alphabet', () => {
    const ok = (data: string, shape: number[]): boolean =>
      safeParseTensorWire({ name: 'b', dtype: 'bool', shape, data }).success;
    expect(ok('AAE=', [2])).toBe(true);
    expect(ok('AA==', [1])).toBe(true);
    expect(ok('A=AA', [2])).toBe(false); // '=' inside
    expect(ok('AA=A', [2])).toBe(false);
    expect(ok('A===', [1])).toBe(false);
    expect(ok('AA-_', [3])).toBe(false); // base64url, which Buffer.from would accept
    expect(ok('AA\nA', [3])).toBe(false);
    expect(ok('AAA', [2])).toBe(false); // unpadded
  });

  it('decodes into a caller-given buffer: same values, a view of that memory (property)', () => {
    const target = new Uint8Array(new SharedArrayBuffer(4096 + 8), 8);
    fc.assert(
      fc.property(tensorArb, ({ dtype, shape, values }) => {
        fc.pre(values.byteLength <= 4096);
        const wire = encodeTensor('t', dtype, shape, values as never);
        const decoded = decodeTensor(wire, target);
        expect(decoded.values.buffer).toBe(target.buffer);
        expect(decoded.values.byteOffset).toBe(8);
        expect(decoded.values.constructor).toBe(values.constructor);
        expect(Array.from(decoded.values)).toEqual(Array.from(values));
      }),
    );
    expect(() =>
      decodeTensor(encodeTensor('f', 'float32', [2], new Float32Array(2)), target.subarray(1)),
    ).toThrow(RangeError);
    expect(() =>
      decodeTensor(encodeTensor('f', 'float32', [2], new Float32Array(2)), new Uint8Array(4)),
    ).toThrow(RangeError);
    expect(
      thrown(() => decodeTensor({ name: 'b', dtype: 'bool', shape: [2], data: 'AAF=' }, target)).message,
    ).toMatch(/canonical base64/);
  });

  it('rejects bool bytes other than 0 and 1 on decode', () => {
    expect(
      thrown(() => decodeTensor({ name: 'b', dtype: 'bool', shape: [1], data: 'Ag==' })).message,
    ).toMatch(/tensor "b".*0 or 1/);
  });

  it('rejects unknown fields and bad names', () => {
    const wire = encodeTensor('ok', 'int32', [1], Int32Array.from([1]));
    const extra = safeParseTensorWire({ ...wire, extra: 1 });
    expect(!extra.success && extra.error.message).toContain('extra: unknown field');
    expect(() => encodeTensor('bad name', 'int32', [1], Int32Array.from([1]))).toThrow(/tensor "bad name"/);
  });
});

describe('firstNonFinite', () => {
  it('finds the first NaN or infinity of a float32 tensor, and nothing in finite ones', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 64 }),
        fc.nat(),
        fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
        (values, at, bad) => {
          const finite = encodeTensor('x', 'float32', [values.length], Float32Array.from(values));
          expect(firstNonFinite(finite)).toBeNull();
          const index = at % values.length;
          const poisoned = Float32Array.from(values);
          poisoned[index] = bad;
          if (index + 1 < poisoned.length) poisoned[index + 1] = Number.NaN;
          const found = firstNonFinite(encodeTensor('x', 'float32', [values.length], poisoned));
          expect(found?.index).toBe(index);
          expect(Object.is(found?.value, bad)).toBe(true);
        },
      ),
    );
  });

  it('never flags int32 or bool tensors', () => {
    expect(firstNonFinite(encodeTensor('i', 'int32', [3], Int32Array.from([-1, 0, 2 ** 31 - 1])))).toBeNull();
    expect(firstNonFinite(encodeTensor('b', 'bool', [2], Uint8Array.from([0, 1])))).toBeNull();
  });
});
