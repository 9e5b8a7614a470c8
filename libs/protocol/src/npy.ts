/**
 * NumPy's `.npy` format (versions 1.0, 2.0 and 3.0), for the dtypes a gpumesh tensor may carry:
 * little-endian float32 (`<f4`) and int32 (`<i4`), and bool (`|b1`). The header is read from a
 * prefix of the bytes so a stream can be parsed without holding the whole body; the data that
 * follows is the tensor's bytes exactly as on the wire (little-endian, C order).
 *
 * Format: `\x93NUMPY`, major, minor, a header length (uint16 LE in 1.0, uint32 LE in 2.0 and 3.0),
 * then a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded
 * with spaces and ending in `\n` so that the data starts on a 64-byte boundary.
 */
import { MAX_TENSOR_RANK } from './constants.js';
import { BYTES_PER_ELEMENT, type DType } from './tensor.js';

export const NPY_MEDIA_TYPE = 'application/x-npy';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** Bytes before the header dict in version 1.0 (magic, version, uint16 length). */
const PREAMBLE_V1 = 10;
/** Bytes before the header dict in versions 2.0 and 3.0 (uint32 length). */
const PREAMBLE_V2 = 12;
const ALIGNMENT = 64;
/** A header longer than this is not a tensor we would take (NumPy's own limit is 10,000 in 1.0). */
const MAX_HEADER_BYTES = 64 * 1024;

const DESCR_OF: Readonly<Record<DType, string>> = { float32: '<f4', int32: '<i4', bool: '|b1' };
const DTYPE_OF: Readonly<Record<string, DType>> = {
  '<f4': 'float32',
  '<i4': 'int32',
  '|b1': 'bool',
  // NumPy writes '|b1' for bool; '<b1' is the same single byte.
  '<b1': 'bool',
};

/** The `.npy` bytes are not a tensor gpumesh can take; the message says why and what to do. */
export class NpyFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NpyFormatError';
  }
}

export interface NpyHeader {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Bytes from the start of the file to the first data byte. */
  readonly dataOffset: number;
  /** Bytes of data the header announces: elements × bytes per element. */
  readonly dataLength: number;
}

/**
 * Reads the header from the first bytes of a `.npy` file. Returns `{ need }` with the number of
 * bytes required when `prefix` is too short to decide, and throws `NpyFormatError` when the bytes
 * cannot be a tensor gpumesh takes (bad magic, unsupported dtype or order, malformed shape).
 */
export function readNpyHeader(prefix: Uint8Array): NpyHeader | { readonly need: number } {
  const probe = Math.min(prefix.length, MAGIC.length);
  for (let i = 0; i < probe; i++) {
    if (prefix[i] !== MAGIC[i])
      throw new NpyFormatError('not a .npy file: it does not start with "\\x93NUMPY"');
  }
  if (prefix.length < PREAMBLE_V1) return { need: PREAMBLE_V2 };
  const major = prefix[6]!;
  if (major !== 1 && major !== 2 && major !== 3)
    throw new NpyFormatError(`.npy version ${major}.${prefix[7]} is not supported (1.0, 2.0 and 3.0 are)`);
  const preamble = major === 1 ? PREAMBLE_V1 : PREAMBLE_V2;
  if (prefix.length < preamble) return { need: preamble };
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerLength > MAX_HEADER_BYTES)
    throw new NpyFormatError(`.npy header of ${headerLength} bytes is longer than ${MAX_HEADER_BYTES}`);
  const dataOffset = preamble + headerLength;
  if (prefix.length < dataOffset) return { need: dataOffset };
  const text = Buffer.from(prefix.buffer, prefix.byteOffset + preamble, headerLength).toString(
    major === 3 ? 'utf8' : 'latin1',
  );
  const { dtype, shape } = parseHeaderDict(text);
  const elements = shape.reduce((a, b) => a * b, 1);
  return { dtype, shape, dataOffset, dataLength: elements * BYTES_PER_ELEMENT[dtype] };
}

function parseHeaderDict(text: string): { dtype: DType; shape: number[] } {
  const body = text.trim();
  if (!body.startsWith('{') || !body.endsWith('}'))
    throw new NpyFormatError('.npy header is not a dict literal');
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(body)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(body)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(body)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    throw new NpyFormatError(".npy header must name 'descr', 'fortran_order' and 'shape'");
  const dtype = DTYPE_OF[descr];
  if (dtype === undefined)
    throw new NpyFormatError(
      `.npy dtype '${descr}' is not supported: use little-endian float32 ('<f4'), int32 ('<i4') or bool ` +
        `(e.g. numpy's arr.astype('<f4'))`,
    );
  if (fortran === 'True')
    throw new NpyFormatError(
      '.npy in Fortran order is not supported: save a C-ordered array (np.ascontiguousarray)',
    );
  const parts = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length > MAX_TENSOR_RANK)
    throw new NpyFormatError(`.npy shape has rank ${parts.length}; at most ${MAX_TENSOR_RANK} is allowed`);
  const shape = parts.map((p) => {
    // NumPy may write `3L` on Python 2.
    const digits = p.endsWith('L') ? p.slice(0, -1) : p;
    if (!/^\d{1,15}$/.test(digits)) throw new NpyFormatError(`.npy shape entry "${p}" is not a whole number`);
    return Number(digits);
  });
  return { dtype, shape };
}

/** The `.npy` header (version 1.0, or 2.0 when the dict does not fit 65,535 bytes) for a C-ordered tensor. */
export function encodeNpyHeader(dtype: DType, shape: readonly number[]): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${DESCR_OF[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let preamble = PREAMBLE_V1;
  let padded = pad(dict, preamble);
  if (padded.length > 0xffff) {
    preamble = PREAMBLE_V2;
    padded = pad(dict, preamble);
  }
  const out = new Uint8Array(preamble + padded.length);
  out.set(MAGIC, 0);
  out[6] = preamble === PREAMBLE_V1 ? 1 : 2;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (preamble === PREAMBLE_V1) view.setUint16(8, padded.length, true);
  else view.setUint32(8, padded.length, true);
  out.set(Buffer.from(padded, 'latin1'), preamble);
  return out;
}

function pad(dict: string, preamble: number): string {
  const unpadded = preamble + dict.length + 1; // + '\n'
  const spaces = (ALIGNMENT - (unpadded % ALIGNMENT)) % ALIGNMENT;
  return `${dict}${' '.repeat(spaces)}\n`;
}

/** A whole `.npy` file: header then the tensor's little-endian bytes. */
export function encodeNpy(dtype: DType, shape: readonly number[], data: Uint8Array): Uint8Array {
  const expected = shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[dtype];
  if (data.byteLength !== expected)
    throw new NpyFormatError(
      `expected ${expected} bytes for ${dtype}[${shape.join(',')}], got ${data.byteLength}`,
    );
  const header = encodeNpyHeader(dtype, shape);
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header, 0);
  out.set(data, header.length);
  return out;
}

/** Decodes a whole `.npy` file held in memory; `data` is a view into `bytes`, not a copy. */
export function decodeNpy(bytes: Uint8Array): { dtype: DType; shape: readonly number[]; data: Uint8Array } {
  const header = readNpyHeader(bytes);
  if ('need' in header)
    throw new NpyFormatError(`.npy file is truncated: ${bytes.length} bytes, the header needs more`);
  const available = bytes.length - header.dataOffset;
  if (available !== header.dataLength)
    throw new NpyFormatError(
      `.npy data is ${available} bytes; ${header.dtype}[${header.shape.join(',')}] needs ${header.dataLength}`,
    );
  return {
    dtype: header.dtype,
    shape: header.shape,
    data: bytes.subarray(header.dataOffset, header.dataOffset + header.dataLength),
  };
}
