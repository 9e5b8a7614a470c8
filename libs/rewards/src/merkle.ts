import { fromHex, toHex } from './hex.js';
import { keccak256Bytes } from './keccak.js';

/**
 * A Merkle tree of sorted pairs, compatible with OpenZeppelin `MerkleProof`: a parent is
 * `keccak256(min(a, b) ‖ max(a, b))`, an odd node at the end of a layer moves up unchanged, so a
 * proof of 100,000 leaves has at most 17 siblings. Leaves stay in the order given (the epoch file's
 * index order). Layers are flat byte arrays, 32 bytes a node.
 */
export interface MerkleTree {
  /** 0x root; the keccak256 of empty bytes for an empty tree (no leaf can prove against it). */
  readonly root: string;
  readonly leafCount: number;
  /** Siblings of leaf `i`, bottom up, as 0x hex. */
  proof(i: number): string[];
  /** Number of layers above the leaves (the longest proof). */
  readonly depth: number;
}

/** keccak256 of empty input: the root of a tree without leaves. */
export const EMPTY_TREE_ROOT = '0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470';

function lessThan(buf: Uint8Array, a: number, b: number): boolean {
  for (let k = 0; k < 32; k++) {
    const x = buf[a + k];
    const y = buf[b + k];
    if (x !== y) return x < y;
  }
  return false;
}

/** Builds the tree over 32-byte leaf hashes. */
export function buildMerkleTree(leaves: readonly Uint8Array[]): MerkleTree {
  const n = leaves.length;
  const layers: Uint8Array[] = [];
  const first = new Uint8Array(n * 32);
  for (let i = 0; i < n; i++) {
    if (leaves[i].length !== 32) throw new Error(`leaf ${i} is not 32 bytes`);
    first.set(leaves[i], i * 32);
  }
  layers.push(first);
  const pair = new Uint8Array(64);
  let current = first;
  let count = n;
  while (count > 1) {
    const nextCount = (count + 1) >> 1;
    const next = new Uint8Array(nextCount * 32);
    for (let i = 0; i + 1 < count; i += 2) {
      const a = i * 32;
      const b = a + 32;
      if (lessThan(current, b, a)) {
        pair.set(current.subarray(b, b + 32), 0);
        pair.set(current.subarray(a, a + 32), 32);
      } else {
        pair.set(current.subarray(a, a + 64), 0);
      }
      next.set(keccak256Bytes(pair), (i >> 1) * 32);
    }
    if (count % 2 === 1) next.set(current.subarray((count - 1) * 32, count * 32), (nextCount - 1) * 32);
    layers.push(next);
    current = next;
    count = nextCount;
  }
  const root = n === 0 ? EMPTY_TREE_ROOT : toHex(current.subarray(0, 32));
  return {
    root,
    leafCount: n,
    depth: layers.length - 1,
    proof(i: number): string[] {
      if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`no leaf ${i} in a tree of ${n}`);
      const out: string[] = [];
      let index = i;
      let size = n;
      for (let level = 0; level < layers.length - 1; level++) {
        const sibling = index ^ 1;
        if (sibling < size) out.push(toHex(layers[level].subarray(sibling * 32, sibling * 32 + 32)));
        index >>= 1;
        size = (size + 1) >> 1;
      }
      return out;
    },
  };
}

/** Folds `proof` over `leaf` like `MerkleProof.processProof` and compares with `root`. */
export function verifyMerkleProof(
  proof: readonly string[],
  root: string,
  leaf: string | Uint8Array,
): boolean {
  let computed = typeof leaf === 'string' ? fromHex(leaf) : leaf;
  const pair = new Uint8Array(64);
  for (const sibling of proof) {
    const s = fromHex(sibling);
    const both = new Uint8Array(64);
    both.set(computed, 0);
    both.set(s, 32);
    if (lessThan(both, 32, 0)) {
      pair.set(s, 0);
      pair.set(computed, 32);
    } else {
      pair.set(both);
    }
    computed = keccak256Bytes(pair);
  }
  return toHex(computed) === root.toLowerCase();
}
