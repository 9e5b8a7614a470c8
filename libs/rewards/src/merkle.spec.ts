import { AbiCoder, concat, keccak256, randomBytes } from 'ethers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { fromHex, toHex } from './hex.js';
import { keccak256Bytes, keccak256Hex } from './keccak.js';
import { encodeLeaf, leafHash } from './leaf.js';
import { buildMerkleTree, EMPTY_TREE_ROOT, verifyMerkleProof } from './merkle.js';

/** A slow, obviously-correct reference: OpenZeppelin sorted pairs, odd node carried up. */
function referenceRoot(leaves: string[]): string {
  if (leaves.length === 0) return keccak256('0x');
  let layer = leaves;
  while (layer.length > 1) {
    const next: string[] = [];
    for (let i = 0; i < layer.length; i += 2) {
      if (i + 1 === layer.length) next.push(layer[i]);
      else {
        const [a, b] =
          BigInt(layer[i]) < BigInt(layer[i + 1]) ? [layer[i], layer[i + 1]] : [layer[i + 1], layer[i]];
        next.push(keccak256(concat([a, b])));
      }
    }
    layer = next;
  }
  return layer[0];
}

describe('keccak', () => {
  it('matches ethers keccak256', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(keccak256Hex(bytes)).toBe(keccak256(bytes));
        expect(toHex(keccak256Bytes(bytes))).toBe(keccak256(bytes));
      }),
    );
    expect(keccak256Hex('')).toBe(EMPTY_TREE_ROOT);
  });
});

describe('leaf encoding', () => {
  it('is abi.encode(uint256, address, uint256), double hashed', () => {
    fc.assert(
      fc.property(
        fc.nat(),
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        (index, raw, amount) => {
          const account = toHex(raw);
          const abi = AbiCoder.defaultAbiCoder().encode(
            ['uint256', 'address', 'uint256'],
            [index, account, amount],
          );
          expect(toHex(encodeLeaf({ index, account, cumulativeAmount: amount }))).toBe(abi);
          expect(leafHash({ index, account, cumulativeAmount: amount })).toBe(keccak256(keccak256(abi)));
        },
      ),
    );
  });

  it('rejects malformed input', () => {
    expect(() => encodeLeaf({ index: -1, account: `0x${'00'.repeat(20)}`, cumulativeAmount: 0n })).toThrow();
    expect(() => encodeLeaf({ index: 0, account: '0x1234', cumulativeAmount: 0n })).toThrow();
    expect(() => encodeLeaf({ index: 0, account: `0x${'00'.repeat(20)}`, cumulativeAmount: -1n })).toThrow();
  });
});

describe('buildMerkleTree', () => {
  it('gives the reference root and proofs that verify, for every size up to 40', () => {
    for (let n = 0; n <= 40; n++) {
      const leaves = Array.from({ length: n }, () => randomBytes(32));
      const tree = buildMerkleTree(leaves);
      expect(tree.root).toBe(referenceRoot(leaves.map((l) => toHex(l))));
      for (let i = 0; i < n; i++) {
        const proof = tree.proof(i);
        expect(proof.length).toBeLessThanOrEqual(Math.ceil(Math.log2(Math.max(n, 1))));
        expect(verifyMerkleProof(proof, tree.root, leaves[i])).toBe(true);
        if (proof.length > 0) {
          const broken = [...proof];
          broken[0] = toHex(randomBytes(32));
          expect(verifyMerkleProof(broken, tree.root, leaves[i])).toBe(false);
        }
      }
    }
  });

  it('builds 100,000 leaves with proofs of at most 17 siblings', () => {
    const leaves = Array.from({ length: 100_000 }, (_, i) => fromHex(keccak256Hex(String(i))));
    const started = performance.now();
    const tree = buildMerkleTree(leaves);
    const ms = performance.now() - started;
    expect(tree.depth).toBe(17);
    expect(verifyMerkleProof(tree.proof(54_321), tree.root, leaves[54_321])).toBe(true);
    expect(ms).toBeLessThan(5_000); // the benchmark holds the 1 s target; this only catches a collapse
  });
});
