// A binary Merkle tree over the messages one batch signature covers. Leaves and inner nodes are
// hashed under different prefixes (0x00, 0x01), so a leaf can never pass for a node. A level with an
// odd count carries its last node up unpaired; `index` and `size` say at each level whether the
// node has a sibling, so a proof is just the sibling hashes from the leaf up.
import { hash } from 'node:crypto';

const LEAF = 0;
const NODE = 1;

/** SHA-256 of a leaf's bytes (lower-case hex). */
export function batchLeafHash(bytes: Uint8Array): string {
  const input = Buffer.allocUnsafe(1 + bytes.byteLength);
  input[0] = LEAF;
  input.set(bytes, 1);
  return hash('sha256', input, 'hex');
}

function nodeHash(left: string, right: string): string {
  const input = Buffer.allocUnsafe(65);
  input[0] = NODE;
  // The envelope schema admits only 64 hex digits a hash; anything shorter would leave zero bytes.
  input.fill(0, 1);
  input.write(left, 1, 32, 'hex');
  input.write(right, 33, 32, 'hex');
  return hash('sha256', input, 'hex');
}

/** The root of `leaves` and, for each leaf, its proof (sibling hashes from the bottom up). */
export function batchTree(leaves: readonly string[]): { root: string; proofs: string[][] } {
  if (leaves.length === 0) throw new RangeError('a batch needs at least one leaf');
  const proofs: string[][] = leaves.map(() => []);
  // positions[i]: where leaf i's ancestor sits on the current level.
  const positions = leaves.map((_, i) => i);
  let level = [...leaves];
  while (level.length > 1) {
    const next: string[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? nodeHash(level[i], level[i + 1]) : level[i]);
    }
    for (let leaf = 0; leaf < leaves.length; leaf++) {
      const at = positions[leaf];
      const sibling = at ^ 1;
      if (sibling < level.length) proofs[leaf].push(level[sibling]);
      positions[leaf] = at >> 1;
    }
    level = next;
  }
  return { root: level[0], proofs };
}

/**
 * The root that `proof` leads to from `leaf` at `index` of a batch of `size`, or null when the proof
 * has the wrong number of hashes for that position.
 */
export function batchRootOf(
  leaf: string,
  index: number,
  size: number,
  proof: readonly string[],
): string | null {
  let hash = leaf;
  let at = index;
  let width = size;
  let used = 0;
  while (width > 1) {
    const sibling = at ^ 1;
    if (sibling < width) {
      if (used >= proof.length) return null;
      const other = proof[used++];
      hash = (at & 1) === 0 ? nodeHash(hash, other) : nodeHash(other, hash);
    }
    at >>= 1;
    width = Math.ceil(width / 2);
  }
  return used === proof.length ? hash : null;
}
