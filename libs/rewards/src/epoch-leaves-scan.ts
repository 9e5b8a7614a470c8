import {
  ascii,
  BACKSLASH,
  CLOSE_BRACE,
  CLOSE_BRACKET,
  COMMA,
  digits,
  digitsValue,
  EXACT_DIGITS,
  grown,
  hexDigits,
  latin1Text,
  literal,
  QUOTE,
} from './canonical-bytes.js';
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

  /**
   * Some id appears twice: the ids go into an open-addressing table by their hashes, and only ids of
   * equal hash are compared byte for byte (a few hundred pairs of a million ids share a 32-bit hash
   * by chance).
   */
  hasRepeat(bytes: Uint8Array): boolean {
    const bits = Math.max(4, Math.ceil(Math.log2(this.size * 2)));
    const mask = (1 << bits) - 1;
    const table = new Int32Array(1 << bits); // id number + 1, or 0 for an empty slot
    for (let i = 0; i < this.size; i++) {
      const hash = this.hashes[i];
      // Fibonacci hashing spreads the FNV hash's bits over the table's index.
      let slot = Math.imul(hash, 0x9e3779b1) >>> (32 - bits);
      for (let j = table[slot]; j !== 0; j = table[slot]) {
        if (this.hashes[j - 1] === hash && this.same(bytes, i, j - 1)) return true;
        slot = (slot + 1) & mask;
      }
      table[slot] = i + 1;
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
  // Each string value kept is decoded from the bytes the scan accepted (all ASCII), on its own: one
  // Latin-1 string of the whole 50 MB array cost more than the scan.
  const text = latin1Text(bytes);
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
      const account = text(accountAt, p);
      p = literal(bytes, p, LEAF_CUMULATIVE);
      if (p < 0) return null;
      let end = digits(bytes, p);
      if (end < 0) return null;
      const cumulativeAmount = text(p, end);
      p = literal(bytes, end, LEAF_EPOCH);
      if (p < 0) return null;
      end = digits(bytes, p);
      if (end < 0) return null;
      const epochAmount = text(p, end);
      p = literal(bytes, end, LEAF_INDEX);
      if (p < 0) return null;
      end = digits(bytes, p);
      if (end < 0 || end - p > EXACT_DIGITS) return null;
      const index = digitsValue(bytes, p, end);
      p = literal(bytes, end, LEAF_PREVIOUS);
      if (p < 0) return null;
      end = digits(bytes, p);
      if (end < 0) return null;
      const previousAmount = text(p, end);
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
            big += BigInt(text(p, end));
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
  // The array's bytes, copied: its text is made only if someone asks, and of the bytes as scanned.
  // (`slice` copies natively; `Buffer.from` of a Uint8Array copies it element by element.)
  const array = bytes.slice(at, p);
  return {
    positions,
    receipts: { sums, counts: counts.subarray(0, n), zero: zero.subarray(0, n) },
    start: at,
    end: p,
    json: () => latin1Text(array)(0, array.length),
  };
}
