import { endianness } from 'node:os';

import { z } from 'zod';

import { ProtocolValidationError } from './errors.js';
import { MAX_TENSOR_BYTES, MAX_TENSOR_NAME_LENGTH, MAX_TENSOR_RANK } from './constants.js';
import { parseWith, safeParseWith, type SafeParseResult } from './validation.js';

/** Element types a tensor may carry on the wire. */
export const DTYPES = ['float32', 'int32', 'bool'] as const;

export const DTypeSchema = z.enum(DTYPES, { error: `expected one of ${DTYPES.join(', ')}` });

export type DType = z.output<typeof DTypeSchema>;

/** Bytes per element of each dtype; `bool` is one byte holding 0 or 1. */
export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = {
  float32: 4,
  int32: 4,
  bool: 1,
};

/** The typed array that holds each dtype's values once decoded. */
export interface TensorValuesByDType {
  float32: Float32Array;
  int32: Int32Array;
  bool: Uint8Array;
}

export type TensorValues = TensorValuesByDType[DType];

/** Base64 text long enough for `MAX_TENSOR_BYTES` decoded bytes. */
const MAX_BASE64_LENGTH = Math.ceil(MAX_TENSOR_BYTES / 3) * 4;
/**
 * A character outside the base64 alphabet and padding. Searching for one is ≈ 10× faster on MiB-sized
 * tensors than an anchored whole-string pattern (and, in V8, than the same class without `=`).
 */
const NOT_BASE64 = /[^A-Za-z0-9+/=]/;
const TENSOR_NAME = /^[A-Za-z0-9_.:/-]+$/;

export const TensorNameSchema = z
  .string({ error: 'expected tensor name' })
  .min(1, { error: 'expected non-empty tensor name' })
  .max(MAX_TENSOR_NAME_LENGTH, {
    error: `expected tensor name of at most ${MAX_TENSOR_NAME_LENGTH} characters`,
  })
  .regex(TENSOR_NAME, { error: 'expected tensor name of letters, digits and _ . : / -' });

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

export const ShapeSchema = z
  .array(z.number({ error: 'expected array of positive integers' }), {
    error: 'expected array of positive integers',
  })
  .superRefine((shape, ctx) => {
    if (!shape.every(isPositiveInt)) {
      ctx.addIssue({ code: 'custom', message: 'expected array of positive integers' });
    } else if (shape.length > MAX_TENSOR_RANK) {
      ctx.addIssue({ code: 'custom', message: `expected rank <= ${MAX_TENSOR_RANK} (MAX_TENSOR_RANK)` });
    }
  });

/**
 * Number of elements of `shape`, or `Infinity` once it passes what any size cap could allow
 * (so a hostile shape cannot overflow the arithmetic).
 */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > MAX_TENSOR_BYTES) return Number.POSITIVE_INFINITY;
  }
  return n;
}

/** Decoded byte length implied by `shape` and `dtype` (`Infinity` when absurdly large). */
export function tensorByteLength(dtype: DType, shape: readonly number[]): number {
  return elementCount(shape) * BYTES_PER_ELEMENT[dtype];
}

/** Decoded byte length of a padded base64 string, without decoding it; -1 if not valid base64. */
export function base64DecodedLength(data: string): number {
  if (data.length % 4 !== 0 || NOT_BASE64.test(data)) return -1;
  const padding = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  const firstPad = data.indexOf('=');
  if (firstPad !== -1 && firstPad < data.length - padding) return -1; // '=' only at the end
  return (data.length / 4) * 3 - padding;
}

const TensorWireObject = z.strictObject({
  name: TensorNameSchema,
  dtype: DTypeSchema,
  shape: ShapeSchema,
  data: z
    .string({ error: 'expected base64 string' })
    .max(MAX_BASE64_LENGTH, { error: `expected at most ${MAX_TENSOR_BYTES} bytes (MAX_TENSOR_BYTES)` }),
});

/** A tensor on the wire: little-endian element bytes as standard padded base64. */
export const TensorWireSchema = TensorWireObject.superRefine((t, ctx) => {
  if (!t.shape.every(isPositiveInt) || t.shape.length > MAX_TENSOR_RANK) return; // already reported
  const expected = tensorByteLength(t.dtype, t.shape);
  if (expected > MAX_TENSOR_BYTES) {
    ctx.addIssue({
      code: 'custom',
      path: ['shape'],
      message: `tensor "${t.name}" would be ${Number.isFinite(expected) ? expected : 'more than ' + MAX_TENSOR_BYTES} bytes; max is ${MAX_TENSOR_BYTES} (MAX_TENSOR_BYTES)`,
      params: { code: 'TENSOR_TOO_LARGE' },
    });
    return;
  }
  const actual = base64DecodedLength(t.data);
  if (actual < 0) {
    ctx.addIssue({ code: 'custom', path: ['data'], message: `tensor "${t.name}": expected padded base64` });
  } else if (actual !== expected) {
    ctx.addIssue({
      code: 'custom',
      path: ['data'],
      message: `tensor "${t.name}": expected ${expected} bytes for ${t.dtype}[${t.shape.join(',')}], got ${actual}`,
    });
  }
});

export type TensorWire = z.output<typeof TensorWireSchema>;

/** A tensor decoded from the wire; without a type argument, a union discriminated on `dtype`. */
export type DecodedTensor<D extends DType = DType> = D extends DType
  ? {
      readonly name: string;
      readonly dtype: D;
      readonly shape: readonly number[];
      readonly values: TensorValuesByDType[D];
    }
  : never;

export function parseTensorWire(input: unknown): TensorWire {
  return parseWith('TensorWire', TensorWireSchema, input);
}

export function safeParseTensorWire(input: unknown): SafeParseResult<TensorWire> {
  return safeParseWith('TensorWire', TensorWireSchema, input);
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

function tensorError(name: string, message: string, tooLarge = false): ProtocolValidationError {
  const path = `tensor "${name}"`;
  return new ProtocolValidationError(
    tooLarge ? 'TENSOR_TOO_LARGE' : 'INVALID_TENSOR',
    `${path}: ${message}`,
    [{ path, message }],
  );
}

function checkShape(name: string, dtype: DType, shape: readonly number[]): number {
  if (!shape.every(isPositiveInt)) throw tensorError(name, 'shape: expected array of positive integers');
  if (shape.length > MAX_TENSOR_RANK) throw tensorError(name, `shape: expected rank <= ${MAX_TENSOR_RANK}`);
  const bytes = tensorByteLength(dtype, shape);
  if (bytes > MAX_TENSOR_BYTES) {
    throw tensorError(name, `exceeds ${MAX_TENSOR_BYTES} bytes (MAX_TENSOR_BYTES)`, true);
  }
  return bytes;
}

/**
 * `bytes` as little-endian elements: on little-endian hosts `bytes` itself when `owned` (the caller may
 * keep it), else a copy; on big-endian hosts a copy with 4-byte words swapped. Large tensors pay for
 * every fresh buffer in page faults, so copies are made only where needed.
 */
function orderBytes(bytes: Uint8Array, elementSize: number, owned = false): Uint8Array {
  if (LITTLE_ENDIAN_HOST && owned) return bytes;
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  if (!LITTLE_ENDIAN_HOST && elementSize === 4) swapWords(copy);
  return copy;
}

/** Whether `bytes` is the whole of its own ArrayBuffer (not a slice of Node's shared Buffer pool). */
function ownsBuffer(bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength;
}

/**
 * Whether `data` (already checked to be padded base64 of the right length) is the canonical encoding:
 * Buffer.from ignores the unused bits of the last character before padding, so only the last four
 * characters can hide a second encoding of the same bytes.
 */
function isCanonicalBase64(data: string): boolean {
  if (!data.endsWith('=')) return true;
  const tail = data.slice(-4);
  return Buffer.from(tail, 'base64').toString('base64') === tail;
}

function expectedArrayName(dtype: DType): string {
  return dtype === 'float32' ? 'Float32Array' : dtype === 'int32' ? 'Int32Array' : 'Uint8Array';
}

function matchesDType(dtype: DType, values: TensorValues): boolean {
  if (dtype === 'float32') return values instanceof Float32Array;
  if (dtype === 'int32') return values instanceof Int32Array;
  return values instanceof Uint8Array;
}

/** Encodes a typed array as a wire tensor, checking shape, dtype, size caps and (for bool) 0/1 values. */
export function encodeTensor<D extends DType>(
  name: string,
  dtype: D,
  shape: readonly number[],
  values: TensorValuesByDType[D],
): TensorWire {
  if (!TensorNameSchema.safeParse(name).success) {
    throw tensorError(name, 'name: expected 1..128 letters, digits and _ . : / -');
  }
  if (!(DTYPES as readonly string[]).includes(dtype))
    throw tensorError(name, `dtype: unknown dtype ${dtype}`);
  const bytes = checkShape(name, dtype, shape);
  if (!matchesDType(dtype, values)) throw tensorError(name, `values: expected ${expectedArrayName(dtype)}`);
  if (values.byteLength !== bytes) {
    throw tensorError(name, `values: expected ${elementCount(shape)} elements, got ${values.length}`);
  }
  if (dtype === 'bool' && values.some((v) => v > 1)) throw tensorError(name, 'values: bool must be 0 or 1');
  const raw = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  // Only read: little-endian hosts encode the caller's bytes in place.
  const ordered = orderBytes(raw, BYTES_PER_ELEMENT[dtype], true);
  return {
    name,
    dtype,
    shape: [...shape],
    data: Buffer.from(ordered.buffer, ordered.byteOffset, ordered.byteLength).toString('base64'),
  };
}

/** Swaps every 4-byte word of `bytes` in place (big-endian hosts). */
function swapWords(bytes: Uint8Array): void {
  for (let i = 0; i + 3 < bytes.length; i += 4) {
    const a = bytes[i];
    const b = bytes[i + 1];
    bytes[i] = bytes[i + 3];
    bytes[i + 1] = bytes[i + 2];
    bytes[i + 2] = b;
    bytes[i + 3] = a;
  }
}

/**
 * Decodes a wire tensor (validated first) into a typed array of its dtype: a fresh one, or a view of
 * `into` (its first `tensorByteLength` bytes, 4-byte aligned) when given, so a caller that decodes many
 * large tensors can reuse memory it already has (fresh MiB-sized buffers cost page faults).
 */
export function decodeTensor(wire: unknown, into?: Uint8Array): DecodedTensor {
  return decodeTensorWire(parseTensorWire(wire), into);
}

/**
 * `decodeTensor` for a tensor already validated by `TensorWireSchema` (a parsed job spec's inputs):
 * skips the alphabet scan, still checks dtype, shape, size caps, length and canonical encoding.
 */
export function decodeTensorWire(t: TensorWire, into?: Uint8Array): DecodedTensor {
  if (!(DTYPES as readonly string[]).includes(t.dtype) || typeof t.data !== 'string') {
    throw tensorError(String(t.name), 'expected a validated wire tensor');
  }
  const bytes = checkShape(t.name, t.dtype, t.shape);
  let ordered: Uint8Array;
  if (into) {
    if (into.byteLength < bytes || into.byteOffset % 4 !== 0) {
      throw new RangeError(`decodeTensor: target of ${into.byteLength} bytes cannot hold ${bytes}`);
    }
    ordered = new Uint8Array(into.buffer, into.byteOffset, bytes);
    const written = Buffer.from(into.buffer, into.byteOffset, bytes).write(t.data, 'base64');
    if (written !== bytes) throw tensorError(t.name, `data: expected ${bytes} bytes, got ${written}`);
    if (!LITTLE_ENDIAN_HOST && BYTES_PER_ELEMENT[t.dtype] === 4) swapWords(ordered);
  } else {
    const buf = Buffer.from(t.data, 'base64');
    if (buf.byteLength !== bytes) {
      throw tensorError(t.name, `data: expected ${bytes} bytes, got ${buf.byteLength}`);
    }
    ordered = orderBytes(buf, BYTES_PER_ELEMENT[t.dtype], ownsBuffer(buf));
  }
  if (!isCanonicalBase64(t.data)) throw tensorError(t.name, 'data: expected canonical base64');
  if (t.dtype === 'bool' && ordered.some((v) => v > 1))
    throw tensorError(t.name, 'data: bool must be 0 or 1');
  return tensorView(t.name, t.dtype, t.shape, ordered);
}

/**
 * A tensor's typed array over `bytes`, its little-endian element bytes in host order (4-byte aligned
 * for float32 and int32): a view, nothing is copied or checked.
 */
export function tensorView(
  name: string,
  dtype: DType,
  shape: readonly number[],
  bytes: Uint8Array,
): DecodedTensor {
  const { buffer, byteOffset, byteLength } = bytes;
  switch (dtype) {
    case 'float32':
      return { name, dtype, shape: [...shape], values: new Float32Array(buffer, byteOffset, byteLength / 4) };
    case 'int32':
      return { name, dtype, shape: [...shape], values: new Int32Array(buffer, byteOffset, byteLength / 4) };
    case 'bool':
      return { name, dtype, shape: [...shape], values: new Uint8Array(buffer, byteOffset, byteLength) };
  }
}

/**
 * The raw little-endian bytes of a wire or decoded tensor, for hashing: read them, never write (for a
 * decoded tensor on a little-endian host they are a view of its values).
 */
export function tensorBytes(tensor: TensorWire | DecodedTensor): Uint8Array {
  if ('data' in tensor) return Buffer.from(tensor.data, 'base64');
  const v = tensor.values;
  // A view on little-endian hosts: callers only read (hash) it.
  return orderBytes(
    new Uint8Array(v.buffer, v.byteOffset, v.byteLength),
    BYTES_PER_ELEMENT[tensor.dtype],
    true,
  );
}

/**
 * Where the first NaN or ±Infinity of a validated wire tensor is, or null when every value is finite
 * (only float32 can hold either). Job inputs must be finite: no kernel of ours defines what they do.
 */
export function firstNonFinite(t: TensorWire): { index: number; value: number } | null {
  if (t.dtype !== 'float32') return null;
  const values = decodeTensorWire(t).values;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) return { index: i, value: v };
  }
  return null;
}
