import type { TensorDto } from './generated.js';

export type TensorInput = TensorDto;

/** A tensor for a job spec from a typed array: little-endian bytes, base64. */
export function tensor(name: string, values: Float32Array | Int32Array, shape: readonly number[]): TensorDto {
  const { dtype, bytes } = tensorBytes(name, values, shape);
  return { name, dtype, shape: [...shape], data: Buffer.from(bytes).toString('base64') };
}

/** Whether this machine stores numbers little-endian, as the wire does. */
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/**
 * The little-endian element bytes of a typed array of `shape` (checked), and its dtype: a view of
 * the array's own bytes on a little-endian machine (not a copy: send them before changing the array).
 */
export function tensorBytes(
  name: string,
  values: Float32Array | Int32Array,
  shape: readonly number[],
): { dtype: 'float32' | 'int32'; bytes: Uint8Array } {
  const size = shape.reduce((a, b) => a * b, 1);
  if (!shape.every((d) => Number.isInteger(d) && d >= 0))
    throw new RangeError(`tensor ${name}: bad shape [${shape.join(', ')}]`);
  if (size !== values.length)
    throw new RangeError(
      `tensor ${name}: shape [${shape.join(', ')}] holds ${size} values, got ${values.length}`,
    );
  const dtype = values instanceof Float32Array ? 'float32' : 'int32';
  // the wire is little-endian, like every machine this runs on in practice: the values' own bytes
  if (LITTLE_ENDIAN)
    return { dtype, bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) =>
    dtype === 'float32' ? view.setFloat32(i * 4, v, true) : view.setInt32(i * 4, v, true),
  );
  return { dtype, bytes };
}

/** The values of a result tensor as a typed array. */
export function decodeTensor(t: TensorDto): Float32Array | Int32Array | Uint8Array {
  const bytes = Buffer.from(t.data, 'base64');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (t.dtype === 'bool') return new Uint8Array(bytes);
  const n = bytes.byteLength / 4;
  const out = t.dtype === 'float32' ? new Float32Array(n) : new Int32Array(n);
  for (let i = 0; i < n; i++)
    out[i] = t.dtype === 'float32' ? view.getFloat32(i * 4, true) : view.getInt32(i * 4, true);
  return out;
}
