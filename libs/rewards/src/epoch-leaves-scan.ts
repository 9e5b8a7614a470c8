import type { EpochLeaf } from './epoch-file.js';

/**
 * The `leaves` array of an epoch file read straight from its bytes, for the watcher's audit: in a
 * 100,000-provider file it is two thirds of 80 MB and a million receipts, and `JSON.parse` of it,
 * with a `Set` of the receipt ids, was most of the audit's time (objects and strings by the million,
 * and the garbage collection after them).
 *
 * The scan accepts exactly the canonical form (`serializeEpochFile`: sorted keys, no whitespace,
 * decimal strings without leading zeros, receipt ids of printable ASCII without escapes) and gives up
 * (`null`) on anything else, a repeated receipt id included; the caller then parses the whole file
 * and the full audit names what is wrong. What it accepts is a well-formed `leaves` value, and its
 * positions and receipt facts are those of what `JSON.parse` makes of the same bytes
 * (`epoch-leaves-scan.spec.ts`).
 *
 * Receipts are not made into objects or strings: each leaf's amounts are summed, and the ids are
 * checked for repeats over the whole file by their hashes (sorted, and compared byte for byte only
 * where two hashes meet).
 */
export interface ScannedLeaves {
  /** Each leaf but its receipts, in file order. */
  readonly positions: LeafPosition[];
  readonly receipts: ReceiptFacts;
  /** Offset of the array's `[`, and just past its closing `]`. */
  readonly start: number;
  readonly end: number; /** The array's JSON text (of the bytes as they were scanned, not of a buffer changed since). */
  readonly json: () => string;
}

/** A leaf without its receipts: what the audit's arithmetic and continuity checks read. */
export type LeafPosition = Omit<EpochLeaf, 'receipts'>;

/**
 * Per leaf (in file order): the sum of its receipts' amounts, how many there are, whether one is
 * zero. No receipt id appears twice in the file.
 */
export interface ReceiptFacts {
  readonly sums: readonly bigint[];
  readonly counts: Int32Array;
  readonly zero: Uint8Array;
}

// Canonical JSON read byte by byte: each helper answers the offset past what it read, or -1 when the
// bytes are not exactly the canonical form.
const QUOTE = 0x22;
const COMMA = 0x2c;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;
const BACKSLASH = 0x5c;
const ZERO = 0x30;
const NINE = 0x39;
const LOWER_A = 0x61;
const LOWER_F = 0x66;

/** Up to 15 digits a decimal is below 2^53: exact as a number (an index is then a safe integer). */
const EXACT_DIGITS = 15;

/** The bytes of an ASCII literal. */
function ascii(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

/** `bytes[p...]` starts with `lit`: the offset past it, or -1. */
function literal(bytes: Uint8Array, p: number, lit: Uint8Array): number {
  if (p < 0 || p + lit.length > bytes.length) return -1;
  for (let i = 0; i < lit.length; i++) if (bytes[p + i] !== lit[i]) return -1;
  return p + lit.length;
}

/** Canonical decimal digits at `p` (`0`, or no leading zero): the offset past them, or -1. */
function digits(bytes: Uint8Array, p: number): number {
  if (p < 0) return -1;
  const at = p;
  while (p < bytes.length && bytes[p] >= ZERO && bytes[p] <= NINE) p++;
  return p === at || (bytes[at] === ZERO && p - at > 1) ? -1 : p;
}

/** The value of the digits `bytes[at, end)` (at most `EXACT_DIGITS` of them). */
function digitsValue(bytes: Uint8Array, at: number, end: number): number {
  let v = 0;
  for (let p = at; p < end; p++) v = v * 10 + (bytes[p] - ZERO);
  return v;
}

/** `count` lower-case hex digits at `p`: the offset past them, or -1. */
function hexDigits(bytes: Uint8Array, p: number, count: number): number {
  if (p < 0 || p + count > bytes.length) return -1;
  for (let i = 0; i < count; i++) {
    const c = bytes[p + i];
    if (!((c >= ZERO && c <= NINE) || (c >= LOWER_A && c <= LOWER_F))) return -1;
  }
  return p + count;
}

/** A growable array's next size. */
function grown<T extends Int32Array | Uint8Array>(from: T): T {
  const to = new (from.constructor as new (n: number) => T)(from.length * 2);
  to.set(from);
  return to;
}

const LEAVES_OPEN = ascii('[');
const LEAF_ACCOUNT = ascii('{"account":"0x');
const LEAF_CUMULATIVE = ascii('","cumulativeAmount":"');
const LEAF_EPOCH = ascii('","epochAmount":"');
const LEAF_INDEX = ascii('","index":');
const LEAF_PREVIOUS = ascii(',"previousAmount":"');
const LEAF_RECEIPTS = ascii('","receipts":[');
const RECEIPT_AMOUNT = ascii('{"amount":"');
const RECEIPT_ID = ascii('","id":"');
const ADDRESS_HEX_DIGITS = 40;
/** 2^53: below it a sum of numbers is exact (the same bound as `sumReceipts`). */
const EXACT = Number.MAX_SAFE_INTEGER + 1;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** Growable columns of the receipt ids seen: where each lies in the bytes and its hash. */
class ReceiptIds {
  starts = new Int32Array(1 << 16);
  lengths = new Int32Array(1 << 16);
  hashes = new Int32Array(1 << 16);
  size = 0;

  add(start: number, length: number, hash: number): void {
    const i = this.size++;
    if (i === this.starts.length) {
      this.starts = grown(this.starts);
      this.lengths = grown(this.lengths);
      this.hashes = grown(this.hashes);
    }
    this.starts[i] = start;
    this.lengths[i] = length;
    this.hashes[i] = hash;
  }

  /** Some id appears twice (ids of equal hash compared byte for byte). */
  hasRepeat(bytes: Uint8Array): boolean {
    const hashes = this.hashes.subarray(0, this.size);
    const sorted = hashes.slice().sort();
    let shared: Set<number> | null = null;
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i] === sorted[i - 1]) (shared ??= new Set()).add(sorted[i]);
    }
    if (shared === null) return false;
    // A few hundred pairs of a million ids share a 32-bit hash by chance: compare those.
    const byHash = new Map<number, number[]>();
    for (let i = 0; i < hashes.length; i++) {
      if (!shared.has(hashes[i])) continue;
      const group = byHash.get(hashes[i]);
      if (group === undefined) {
        byHash.set(hashes[i], [i]);
        continue;
      }
      for (const j of group) if (this.same(bytes, i, j)) return true;
      group.push(i);
    }
    return false;
  }

  private same(bytes: Uint8Array, i: number, j: number): boolean {
    const length = this.lengths[i];
    if (this.lengths[j] !== length) return false;
    const a = this.starts[i];
    const b = this.starts[j];
    for (let k = 0; k < length; k++) if (bytes[a + k] !== bytes[b + k]) return false;
    return true;
  }
}

/**
 * Scans the canonical `leaves` array starting at `bytes[at]` (its `[`) and ending before `limit`.
 * Null when the bytes there are not exactly the canonical form, or a receipt id repeats.
 */
export function scanEpochLeaves(input: Uint8Array, at: number, limit = input.length): ScannedLeaves | null {
  if (limit > input.length || limit >= 2 ** 31) return null;
  // A plain Uint8Array view (not a Buffer): element reads stay on one fast path.
  const bytes = new Uint8Array(input.buffer, input.byteOffset, limit);
  // The bytes as one Latin-1 string (a char per byte), sliced for each string value kept: only the
  // chars of bytes the scan accepted are read, all ASCII, so the slices are the values' text.
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const positions: LeafPosition[] = [];
  const sums: bigint[] = [];
  let counts = new Int32Array(1 << 12);
  let zero = new Uint8Array(1 << 12);
  const ids = new ReceiptIds();

  let p = literal(bytes, at, LEAVES_OPEN);
  if (p < 0) return null;
  if (bytes[p] === CLOSE_BRACKET) p++;
  else {
    for (;;) {
      const n = positions.length;
      if (n === counts.length) {
        counts = grown(counts);
        zero = grown(zero);
      }
      // {"account":"0x<40 hex>","cumulativeAmount":"<d>","epochAmount":"<d>","index":<d>,
      //  "previousAmount":"<d>","receipts":[<receipt>,...]}
      p = literal(bytes, p, LEAF_ACCOUNT);
      if (p < 0) return null;
      const accountAt = p - 2;
      p = hexDigits(bytes, p, ADDRESS_HEX_DIGITS);
      if (p < 0) return null;
      const account = text.slice(accountAt, p);
      p = literal(bytes, p, LEAF_CUMULATIVE);
      if (p < 0) return null;
      let end = digits(bytes, p);
      if (end < 0) return null;
      const cumulativeAmount = text.slice(p, end);
      p = literal(bytes, end, LEAF_EPOCH);
      if (p < 0) return null;
      end = digits(bytes, p);
      if (end < 0) return null;
      const epochAmount = text.slice(p, end);
      p = literal(bytes, end, LEAF_INDEX);
      if (p < 0) return null;
      end = digits(bytes, p);
      if (end < 0 || end - p > EXACT_DIGITS) return null;
      const index = digitsValue(bytes, p, end);
      p = literal(bytes, end, LEAF_PREVIOUS);
      if (p < 0) return null;
      end = digits(bytes, p);
      if (end < 0) return null;
      const previousAmount = text.slice(p, end);
      p = literal(bytes, end, LEAF_RECEIPTS);
      if (p < 0) return null;

      // {"amount":"<d>","id":"<printable ASCII but " and \>"}
      let big = 0n;
      let small = 0;
      let count = 0;
      if (bytes[p] === CLOSE_BRACKET) p++;
      else {
        for (;;) {
          p = literal(bytes, p, RECEIPT_AMOUNT);
          if (p < 0) return null;
          end = digits(bytes, p);
          if (end < 0) return null;
          if (end - p <= EXACT_DIGITS) {
            const amount = digitsValue(bytes, p, end);
            if (amount === 0) zero[n] = 1;
            small += amount;
            if (small >= EXACT / 2) {
              big += BigInt(small);
              small = 0;
            }
          } else {
            big += BigInt(text.slice(p, end));
          }
          p = literal(bytes, end, RECEIPT_ID);
          if (p < 0) return null;
          const idAt = p;
          let hash = FNV_OFFSET;
          for (;;) {
            if (p >= bytes.length) return null;
            const c = bytes[p];
            if (c === QUOTE) break;
            if (c < 0x20 || c > 0x7e || c === BACKSLASH) return null;
            hash = Math.imul(hash ^ c, FNV_PRIME);
            p++;
          }
          if (p === idAt) return null;
          ids.add(idAt, p - idAt, hash);
          count++;
          // "} then , or ]
          if (bytes[p + 1] !== CLOSE_BRACE) return null;
          const c = bytes[p + 2];
          p += 3;
          if (c === CLOSE_BRACKET) break;
          if (c !== COMMA) return null;
        }
      }
      if (bytes[p] !== CLOSE_BRACE) return null;
      sums.push(big + BigInt(small));
      counts[n] = count;
      positions.push({ index, account, cumulativeAmount, previousAmount, epochAmount });
      const c = bytes[p + 1];
      p += 2;
      if (c === CLOSE_BRACKET) break;
      if (c !== COMMA) return null;
    }
  }
  if (p > bytes.length || ids.hasRepeat(bytes)) return null;
  const n = positions.length;
  return {
    positions,
    receipts: { sums, counts: counts.subarray(0, n), zero: zero.subarray(0, n) },
    start: at,
    end: p,
    json: () => text.slice(at, p),
  };
}
