import {
  ascii,
  CLOSE_BRACE,
  CLOSE_BRACKET,
  COMMA,
  digits,
  digitsValue,
  EXACT_DIGITS,
  hexBytes,
  hexDigits,
  latin1Text,
  literal,
} from './canonical-bytes.js';
import { keccak256Bytes } from './keccak.js';
import { LEAF_ENCODING, writeSafeInteger, writeUint256 } from './leaf.js';
import { buildMerkleTree } from './merkle.js';
import type { TreeDumpVerdict } from './tree-dump-check.js';

/**
 * `checkTreeDumpText` read straight from the dump's bytes, for the audit's worker: in a
 * 100,000-provider file the dump is 28 MB, and `JSON.parse` of it (300,000 strings, their regular
 * expressions, the hex of every node and the garbage collection after them) cost as much as hashing
 * the tree.
 *
 * It accepts exactly the canonical form (`serializeEpochFile`: sorted keys, no whitespace, canonical
 * decimals, lower-case hex, OpenZeppelin's leaf encoding, at least one value) and answers null on
 * anything else; the caller then parses the text (`checkTreeDumpText`). On what it accepts, its
 * verdict is `checkTreeDumpText`'s (`tree-dump-scan.spec.ts`): the same kind, root and values, and
 * for an unsure one, the same reason.
 */
export function scanTreeDump(input: Uint8Array): TreeDumpVerdict | null {
  // A plain Uint8Array view (not a Buffer): element reads stay on one fast path.
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const unsure = (why: string): TreeDumpVerdict => ({ kind: 'unsure', why });
  const text = latin1Text(bytes);

  // The nodes: `"0x<64 hex>"`, comma-separated.
  let p = literal(bytes, 0, DUMP_OPEN);
  if (p < 0) return null;
  // Each node takes 67 bytes of the text at least: room for all of them.
  const nodes = new Uint8Array(Math.floor(bytes.length / 67) * 32);
  let nodeCount = 0;
  if (bytes[p] === CLOSE_BRACKET) p++;
  else {
    for (;;) {
      if ((nodeCount + 1) * 32 > nodes.length) return null;
      p = literal(bytes, p, NODE_OPEN);
      p = hexBytes(bytes, p, nodes, nodeCount * 32, 32);
      if (p < 0 || bytes[p] !== QUOTE_BYTE) return null;
      nodeCount++;
      const c = bytes[p + 1];
      p += 2;
      if (c === CLOSE_BRACKET) break;
      if (c !== COMMA) return null;
    }
  }

  // The values: `{"treeIndex":<d>,"value":["<chain id>","0x<distributor>","<index>","0x<account>","<amount>"]}`.
  p = literal(bytes, p, VALUES_OPEN);
  if (p < 0 || bytes[p] === CLOSE_BRACKET) return null; // no values: the text's verdict names it
  // Each value takes more than 120 bytes of the text.
  const capacity = Math.ceil(bytes.length / 120);
  const treeIndices = new Float64Array(capacity);
  const indices = new Float64Array(capacity);
  const leaves: Uint8Array[] = [];
  const accounts = Buffer.allocUnsafe(capacity * ACCOUNT_CHARS);
  const amountRanges = new Int32Array(capacity * 2);
  let amountChars = 0;
  // The encoded leaf (`encodeLeaf`): the chain id and distributor words written from the first value.
  const encoded = Buffer.alloc(LEAF_WORDS * 32);
  let chainAt = -1;
  let chainEnd = -1;
  let distributorAt = -1;
  let severalDomains = false;
  let n = 0;
  for (;;) {
    if (n === capacity) return null;
    p = literal(bytes, p, VALUE_OPEN);
    let end = digits(bytes, p);
    if (end < 0 || end - p > EXACT_DIGITS) return null;
    treeIndices[n] = digitsValue(bytes, p, end);

    p = literal(bytes, end, VALUE_CHAIN);
    end = digits(bytes, p);
    if (end < 0 || end - p > EXACT_DIGITS) return null;
    const chainId = digitsValue(bytes, p, end);
    if (chainId >= MAX_WORD_INTEGER) return null; // the text's encoder refuses it
    if (n === 0) {
      chainAt = p;
      chainEnd = end;
      writeSafeInteger(encoded, 0, chainId, 'chain id');
    } else if (!sameBytes(bytes, chainAt, chainEnd, p, end)) severalDomains = true;

    p = literal(bytes, end, NEXT_ADDRESS);
    if (n === 0) {
      distributorAt = p;
      p = hexBytes(bytes, p, encoded, 32 + 12, 20);
    } else {
      if (p >= 0 && !sameBytes(bytes, distributorAt, distributorAt + ADDRESS_HEX, p, p + ADDRESS_HEX))
        severalDomains = true;
      p = hexDigits(bytes, p, ADDRESS_HEX);
    }

    p = literal(bytes, p, NEXT_STRING);
    end = digits(bytes, p);
    if (end < 0 || end - p > EXACT_DIGITS) return null;
    const index = digitsValue(bytes, p, end);
    if (index >= MAX_WORD_INTEGER) return null;
    indices[n] = index;
    writeSafeInteger(encoded, 64, index, 'index');

    p = literal(bytes, end, NEXT_ADDRESS);
    const accountAt = p;
    p = hexBytes(bytes, p, encoded, 96 + 12, 20);
    if (p < 0) return null;
    accounts[n * ACCOUNT_CHARS] = 0x30; // 0
    accounts[n * ACCOUNT_CHARS + 1] = 0x78; // x
    accounts.set(bytes.subarray(accountAt, p), n * ACCOUNT_CHARS + 2);

    p = literal(bytes, p, NEXT_STRING);
    end = digits(bytes, p);
    if (end < 0) return null;
    const amount = end - p <= EXACT_DIGITS ? BigInt(digitsValue(bytes, p, end)) : BigInt(text(p, end));
    if (amount > UINT256_MAX) return null; // the text's encoder refuses it
    writeUint256(encoded, 128, amount);
    amountRanges[2 * n] = p;
    amountRanges[2 * n + 1] = end;
    amountChars += end - p + 1;

    p = literal(bytes, end, VALUE_CLOSE);
    if (p < 0) return null;
    leaves.push(keccak256Bytes(keccak256Bytes(encoded)));
    n++;
    const c = bytes[p];
    p++;
    if (c === CLOSE_BRACKET) break;
    if (c !== COMMA) return null;
  }
  if (bytes[p] !== CLOSE_BRACE || p + 1 !== bytes.length) return null;

  // What `checkTreeDumpText` finds, in its order.
  if (severalDomains) return unsure('values of several domains');
  const tree = buildMerkleTree(leaves);
  if (nodeCount !== 2 * n - 1 || !tree.hasNodes(nodes.subarray(0, nodeCount * 32)))
    return unsure('the nodes are not the values’ tree');
  for (let i = 0; i < n; i++) if (treeIndices[i] !== tree.treeIndex(i)) return unsure('a value is misplaced');

  const amounts = Buffer.allocUnsafe(amountChars - 1);
  let at = 0;
  for (let i = 0; i < n; i++) {
    if (i > 0) amounts[at++] = COMMA;
    const start = amountRanges[2 * i];
    const stop = amountRanges[2 * i + 1];
    amounts.set(bytes.subarray(start, stop), at);
    at += stop - start;
  }
  return {
    kind: 'faithful',
    root: tree.root,
    chainId: text(chainAt, chainEnd),
    distributor: text(distributorAt - 2, distributorAt + ADDRESS_HEX),
    indices: indices.slice(0, n),
    accounts: accounts.toString('latin1', 0, n * ACCOUNT_CHARS),
    amounts: amounts.toString('latin1'),
  };
}

const QUOTE_BYTE = 0x22;
const ADDRESS_HEX = 40;
const ACCOUNT_CHARS = 2 + ADDRESS_HEX;
const LEAF_WORDS = LEAF_ENCODING.length;
/** `leaf.ts` writes an integer word's low 6 bytes: from 2^48 on, its encoder refuses the value. */
const MAX_WORD_INTEGER = 2 ** 48;
const UINT256_MAX = (1n << 256n) - 1n;

const DUMP_OPEN = ascii(`{"format":"standard-v1","leafEncoding":${JSON.stringify(LEAF_ENCODING)},"tree":[`);
const NODE_OPEN = ascii('"0x');
const VALUES_OPEN = ascii(',"values":[');
const VALUE_OPEN = ascii('{"treeIndex":');
const VALUE_CHAIN = ascii(',"value":["');
const NEXT_ADDRESS = ascii('","0x');
const NEXT_STRING = ascii('","');
const VALUE_CLOSE = ascii('"]}');

/** `bytes[a, aEnd)` and `bytes[b, bEnd)` hold the same bytes. */
function sameBytes(bytes: Uint8Array, a: number, aEnd: number, b: number, bEnd: number): boolean {
  if (aEnd - a !== bEnd - b) return false;
  for (let k = 0; k < aEnd - a; k++) if (bytes[a + k] !== bytes[b + k]) return false;
  return true;
}
