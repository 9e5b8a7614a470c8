import { SimpleMerkleTree, StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { AbiCoder, keccak256, randomBytes } from 'ethers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { fromHex, toHex } from './hex.js';
import { keccak256Bytes, keccak256Hex } from './keccak.js';
import { encodeLeaf, leafHash, leafHasher } from './leaf.js';
import { buildMerkleTree, EMPTY_TREE_ROOT, verifyMerkleProof } from './merkle.js';

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

const CHAIN_ID = 31337;
const DISTRIBUTOR = `0x${'d1'.repeat(20)}`;
const ZERO_ADDRESS = `0x${'00'.repeat(20)}`;

describe('leaf encoding', () => {
  it('is abi.encode(uint256 chainId, address distributor, uint256, address, uint256), double hashed', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        fc.nat(),
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        // Amounts are uint64 on chain (one word write); wider ones take the general path.
        fc.oneof(
          fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
          fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }),
        ),
        (chainId, rawDistributor, index, raw, amount) => {
          const distributor = toHex(rawDistributor);
          const account = toHex(raw);
          const leaf = { chainId, distributor, index, account, cumulativeAmount: amount };
          const abi = AbiCoder.defaultAbiCoder().encode(
            ['uint256', 'address', 'uint256', 'address', 'uint256'],
            [chainId, distributor, index, account, amount],
          );
          expect(toHex(encodeLeaf(leaf))).toBe(abi);
          expect(leafHash(leaf)).toBe(keccak256(keccak256(abi)));
          // The batch hasher of a tree's leaves gives the same hash.
          expect(toHex(leafHasher({ chainId, distributor })(index, account, amount))).toBe(leafHash(leaf));
        },
      ),
    );
  });

  it('binds a leaf to its chain and distributor', () => {
    const leaf = {
      chainId: CHAIN_ID,
      distributor: DISTRIBUTOR,
      index: 3,
      account: ZERO_ADDRESS,
      cumulativeAmount: 5n,
    };
    expect(leafHash({ ...leaf, chainId: 1 })).not.toBe(leafHash(leaf));
    expect(leafHash({ ...leaf, distributor: `0x${'d2'.repeat(20)}` })).not.toBe(leafHash(leaf));
  });

  it('rejects malformed input', () => {
    const ok = {
      chainId: CHAIN_ID,
      distributor: DISTRIBUTOR,
      index: 0,
      account: ZERO_ADDRESS,
      cumulativeAmount: 0n,
    };
    expect(() => encodeLeaf({ ...ok, index: -1 })).toThrow();
    expect(() => encodeLeaf({ ...ok, account: '0x1234' })).toThrow();
    expect(() => encodeLeaf({ ...ok, distributor: '0x1234' })).toThrow();
    expect(() => encodeLeaf({ ...ok, chainId: 1.5 })).toThrow();
    expect(() => encodeLeaf({ ...ok, cumulativeAmount: -1n })).toThrow();
  });
});

describe('buildMerkleTree', () => {
  it("is OpenZeppelin's standard tree, node for node, with proofs that verify, for every size up to 40", () => {
    expect(buildMerkleTree([]).root).toBe(EMPTY_TREE_ROOT);
    for (let n = 1; n <= 40; n++) {
      const leaves = Array.from({ length: n }, () => randomBytes(32));
      const tree = buildMerkleTree(leaves);
      const oz = SimpleMerkleTree.of(leaves.map((l) => toHex(l)));
      expect(tree.root).toBe(oz.root);
      expect(tree.nodes()).toEqual(oz.dump().tree);
      for (let i = 0; i < n; i++) {
        const proof = tree.proof(i);
        expect(proof).toEqual(oz.getProof(toHex(leaves[i])));
        expect(proof.length).toBeLessThanOrEqual(tree.depth);
        expect(verifyMerkleProof(proof, tree.root, leaves[i])).toBe(true);
        if (proof.length > 0) {
          const broken = [...proof];
          broken[0] = toHex(randomBytes(32));
          expect(verifyMerkleProof(broken, tree.root, leaves[i])).toBe(false);
        }
      }
    }
  });

  it('finds the first node a given dump gets wrong, or none', () => {
    const tree = buildMerkleTree(Array.from({ length: 9 }, () => randomBytes(32)));
    const nodes = tree.nodes();
    expect(tree.firstNodeMismatch(nodes)).toBe(-1);
    for (const at of [0, 5, nodes.length - 1]) {
      const changed = [...nodes];
      changed[at] = toHex(randomBytes(32));
      expect(tree.firstNodeMismatch(changed)).toBe(at);
      changed[at] = nodes[at].toUpperCase().replace('0X', '0x');
      expect(tree.firstNodeMismatch(changed)).toBe(at);
    }
    expect(tree.firstNodeMismatch(nodes.slice(0, -1))).toBe(nodes.length - 1);
    expect(tree.firstNodeMismatch([...nodes, nodes[0]])).toBe(nodes.length);
    // Same characters in other places: one node a digit short, the next a digit long.
    const shifted = [...nodes];
    shifted[2] = nodes[2].slice(0, -1);
    shifted[3] = nodes[2].slice(-1) + nodes[3];
    expect(tree.firstNodeMismatch(shifted)).toBe(2);
    expect(buildMerkleTree([]).firstNodeMismatch([])).toBe(-1);
  });

  it('sorts leaves whose hashes share a long prefix like OpenZeppelin', () => {
    const prefix = randomBytes(8);
    const leaves = Array.from({ length: 9 }, () => {
      const leaf = randomBytes(32);
      leaf.set(prefix, 0);
      return leaf;
    });
    expect(buildMerkleTree(leaves).nodes()).toEqual(
      SimpleMerkleTree.of(leaves.map((l) => toHex(l))).dump().tree,
    );
  });

  it('loads as a StandardMerkleTree from its leaves: same root for domain-separated leaves', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.bigInt({ min: 0n, max: 10n ** 18n })),
          {
            minLength: 1,
            maxLength: 25,
          },
        ),
        (entries) => {
          const values = entries.map(([raw, amount], index) => [
            String(CHAIN_ID),
            DISTRIBUTOR,
            String(index),
            toHex(raw),
            amount.toString(),
          ]);
          const tree = buildMerkleTree(
            entries.map(([raw, amount], index) =>
              fromHex(
                leafHash({
                  chainId: CHAIN_ID,
                  distributor: DISTRIBUTOR,
                  index,
                  account: toHex(raw),
                  cumulativeAmount: amount,
                }),
              ),
            ),
          );
          const oz = StandardMerkleTree.of(values, ['uint256', 'address', 'uint256', 'address', 'uint256']);
          expect(tree.root).toBe(oz.root);
          expect(tree.nodes()).toEqual(oz.dump().tree);
          values.forEach((_, i) => expect(tree.treeIndex(i)).toBe(oz.dump().values[i].treeIndex));
        },
      ),
      { numRuns: 30 },
    );
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
