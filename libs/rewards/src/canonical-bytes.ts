// Reading canonical JSON (what `serializeEpochFile` writes: sorted keys, no whitespace, canonical
// decimals, lower-case hex) straight from its bytes, for the audit's scans of the leaves
// (epoch-leaves-scan.ts) and of the tree dump (tree-dump-scan.ts). Each reader answers the offset
// past what it read, or -1 when the bytes there are not exactly the canonical form.

export const QUOTE = 0x22;
export const COMMA = 0x2c;
export const CLOSE_BRACKET = 0x5d;
export const CLOSE_BRACE = 0x7d;
export const BACKSLASH = 0x5c;
const ZERO = 0x30;
const NINE = 0x39;

/** Up to 15 digits a decimal is below 2^53: exact as a number (an index is then a safe integer). */
export const EXACT_DIGITS = 15;

/** The value of each byte as a lower-case hex digit, or -1. */
const HEX_VALUE = (() => {
  const table = new Int8Array(256).fill(-1);
  for (let c = 0; c < 16; c++) table['0123456789abcdef'.charCodeAt(c)] = c;
  return table;
})();

/** The bytes of an ASCII literal. */
export function ascii(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

/** `bytes[p...]` starts with `lit`: the offset past it, or -1. */
export function literal(bytes: Uint8Array, p: number, lit: Uint8Array): number {
  if (p < 0 || p + lit.length > bytes.length) return -1;
  for (let i = 0; i < lit.length; i++) if (bytes[p + i] !== lit[i]) return -1;
  return p + lit.length;
}

/** Canonical decimal digits at `p` (`0`, or no leading zero): the offset past them, or -1. */
export function digits(bytes: Uint8Array, p: number): number {
  if (p < 0) return -1;
  const at = p;
  while (p < bytes.length && bytes[p] >= ZERO && bytes[p] <= NINE) p++;
  return p === at || (bytes[at] === ZERO && p - at > 1) ? -1 : p;
}

/** The value of the digits `bytes[at, end)` (at most `EXACT_DIGITS` of them). */
export function digitsValue(bytes: Uint8Array, at: number, end: number): number {
  let v = 0;
  for (let p = at; p < end; p++) v = v * 10 + (bytes[p] - ZERO);
  return v;
}

/** `count` lower-case hex digits at `p`: the offset past them, or -1. */
export function hexDigits(bytes: Uint8Array, p: number, count: number): number {
  if (p < 0 || p + count > bytes.length) return -1;
  for (let i = 0; i < count; i++) if (HEX_VALUE[bytes[p + i]] < 0) return -1;
  return p + count;
}

/**
 * `2 * length` lower-case hex digits at `p` decoded into `out[at, at + length)`: the offset past
 * them, or -1 (`out` is then partly written).
 */
export function hexBytes(bytes: Uint8Array, p: number, out: Uint8Array, at: number, length: number): number {
  if (p < 0 || p + 2 * length > bytes.length) return -1;
  for (let i = 0; i < length; i++) {
    const hi = HEX_VALUE[bytes[p + 2 * i]];
    const lo = HEX_VALUE[bytes[p + 2 * i + 1]];
    if (hi < 0 || lo < 0) return -1;
    out[at + i] = (hi << 4) | lo;
  }
  return p + 2 * length;
}

/**
 * The Latin-1 text of ranges of `bytes` (ASCII, once a reader accepted them): `text(start, end)`.
 * One Buffer view for all of them (a view per call cost more than the scan of a file's leaves).
 */
export function latin1Text(bytes: Uint8Array): (start: number, end: number) => string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return (start, end) => buf.toString('latin1', start, end);
}

/** A growable array's next size. */
export function grown<T extends Int32Array | Uint8Array | Float64Array>(from: T): T {
  const to = new (from.constructor as new (n: number) => T)(from.length * 2);
  to.set(from);
  return to;
}
