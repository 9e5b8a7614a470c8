import { isAscii } from 'node:buffer';

/**
 * An epoch file cut in two at its top-level `tree` member, so two threads can parse it at once: the
 * head (everything but the tree dump, about two thirds of the bytes) and the dump.
 *
 * Canonical JSON (what a coordinator publishes) sorts keys, so `"tree":{` is the file's last member.
 * The cut is taken at the last `"tree":{` and is only a guess; it is right exactly when both halves
 * parse: `head` (the text before it, closed with `"tree":null}`) parses only if that `"tree"` is a key
 * of the outermost object (a JSON prefix fixes the parser's state, and the closing brace must end the
 * text), and then the whole text parses to the head's object with `tree` set to the dump's value
 * (`JSON.parse` keeps the last of repeated keys, as the head's `null` placeholder is replaced).
 * `epoch-auditor.spec.ts` checks this against `JSON.parse` of the whole text.
 */
export interface EpochFileSplit {
  /** The head's text, the tree member replaced by `"tree":null`. */
  head(): string;
  /** The tree dump's text (the member's value). */
  tree(): string;
  /** Offset (in the input's units: bytes or UTF-16 code units) of the `"tree":` member. */
  readonly memberAt: number;
  /** Offset where the dump's value starts. */
  readonly treeAt: number;
  /** Offset of the outermost object's closing brace (the dump's value ends just before it). */
  readonly endAt: number;
}

const TREE_MEMBER = '"tree":';
const TREE_MEMBER_OBJECT = `${TREE_MEMBER}{`;
const TREE_MEMBER_BYTES = Buffer.from(TREE_MEMBER_OBJECT, 'latin1');
export const NULL_TREE = `${TREE_MEMBER}null}`;
const CLOSING_BRACE = 0x7d;

function isJsonWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** UTF-8 text of `bytes`; ASCII (the usual epoch file) is copied as Latin-1, several times faster. */
export function decodeUtf8(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return isAscii(buf) ? buf.toString('latin1') : buf.toString('utf8');
}

/** Where to cut `input` (see `EpochFileSplit`), or null when it has no last `"tree":{` member. */
export function splitEpochFile(input: Uint8Array | string): EpochFileSplit | null {
  if (typeof input === 'string') {
    const keyAt = input.lastIndexOf(TREE_MEMBER_OBJECT);
    let endAt = input.length - 1;
    while (endAt > keyAt && isJsonWhitespace(input.charCodeAt(endAt))) endAt--;
    if (keyAt < 0 || input.charCodeAt(endAt) !== CLOSING_BRACE) return null;
    const treeAt = keyAt + TREE_MEMBER.length;
    return {
      memberAt: keyAt,
      treeAt,
      endAt,
      head: () => input.slice(0, keyAt) + NULL_TREE,
      tree: () => input.slice(treeAt, endAt),
    };
  }
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const keyAt = bytes.lastIndexOf(TREE_MEMBER_BYTES);
  let endAt = bytes.length - 1;
  while (endAt > keyAt && isJsonWhitespace(bytes[endAt])) endAt--;
  if (keyAt < 0 || bytes[endAt] !== CLOSING_BRACE) return null;
  const treeAt = keyAt + TREE_MEMBER.length;
  // Cut at an ASCII byte, so the halves decode to the two halves of the whole's text.
  return {
    memberAt: keyAt,
    treeAt,
    endAt,
    head: () => decodeUtf8(bytes.subarray(0, keyAt)) + NULL_TREE,
    tree: () => decodeUtf8(bytes.subarray(treeAt, endAt)),
  };
}
