import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { AbiCoder, ZeroHash } from 'ethers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  FUNDING_LEAF_ENCODING,
  committedBatches,
  encodeFundingLeaf,
  fundingBatches,
  fundingLeaf,
  fundingRootOf,
  fundingTree,
} from './funding.js';
import { toHex } from './hex.js';
import { verifyMerkleProof } from './merkle.js';

const debit = fc.record({
  account: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => `0x${Buffer.from(b).toString('hex')}`),
  amount: fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map(String),
});

describe('encodeFundingLeaf', () => {
  it("writes what ethers' ABI coder writes, for any batch, and refuses what it refuses", () => {
    const abi = AbiCoder.defaultAbiCoder();
    const address = fc
      .uint8Array({ minLength: 20, maxLength: 20 })
      .map((b) => `0x${Buffer.from(b).toString('hex')}`);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 48 }),
        address,
        fc
          .bigInt({ min: 0n, max: 2n ** 64n - 1n })
          .map(Number)
          .filter(Number.isSafeInteger),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.array(fc.tuple(address, fc.bigInt({ min: 0n, max: 2n ** 256n - 1n })), { maxLength: 8 }),
        (chainId, escrow, epoch, index, debits) => {
          const batch = { index, accounts: debits.map((d) => d[0]), amounts: debits.map((d) => d[1]) };
          const ours = encodeFundingLeaf({ chainId, escrow }, epoch, batch);
          const theirs = abi.encode(
            [...FUNDING_LEAF_ENCODING],
            [chainId, escrow, epoch, index, batch.accounts, batch.amounts],
          );
          expect(toHex(ours)).toBe(theirs);
        },
      ),
    );
    const domain = { chainId: 1, escrow: `0x${'11'.repeat(20)}` };
    const batch = { index: 0, accounts: [`0x${'22'.repeat(20)}`], amounts: [1n] };
    expect(() => encodeFundingLeaf(domain, 1, { ...batch, amounts: [2n ** 256n] })).toThrow(RangeError);
    expect(() => encodeFundingLeaf(domain, 1, { ...batch, amounts: [-1n] })).toThrow(RangeError);
    expect(() => encodeFundingLeaf(domain, 2 ** 64, batch)).toThrow(RangeError);
    expect(() => encodeFundingLeaf(domain, 1, { ...batch, index: 2 ** 32 })).toThrow(RangeError);
    expect(() => encodeFundingLeaf(domain, 1, { ...batch, accounts: ['0x12'] })).toThrow(TypeError);
    expect(() => encodeFundingLeaf(domain, 1, { ...batch, amounts: [] })).toThrow(RangeError);
  });
});

describe('fundingBatches', () => {
  it('covers every debit once, in order, in numbered batches of at most `size`', () => {
    fc.assert(
      fc.property(fc.array(debit, { maxLength: 300 }), fc.integer({ min: 1, max: 64 }), (debits, size) => {
        const batches = fundingBatches(debits, size);
        expect(batches.map((b) => b.index)).toEqual(batches.map((_, i) => i));
        expect(batches.every((b) => b.accounts.length >= 1 && b.accounts.length <= size)).toBe(true);
        expect(batches.flatMap((b) => b.accounts)).toEqual(debits.map((d) => d.account));
        const sum = (xs: readonly bigint[]): bigint => xs.reduce((s, x) => s + x, 0n);
        expect(sum(batches.flatMap((b) => b.amounts))).toBe(sum(debits.map((d) => BigInt(d.amount))));
        expect(fundingBatches(debits, size)).toEqual(batches);
      }),
    );
  });

  it('refuses a batch size that is not a positive integer', () => {
    expect(() => fundingBatches([], 0)).toThrow(RangeError);
    expect(() => fundingBatches([], 1.5)).toThrow(RangeError);
  });
});

describe('funding tree', () => {
  const domain = { chainId: 31337, escrow: `0x${'e5'.repeat(20)}` };
  const debits = (n: number): { account: string; amount: string }[] =>
    Array.from({ length: n }, (_, i) => ({
      account: `0x${(i + 1).toString(16).padStart(40, '0')}`,
      amount: String(1_000 + i),
    }));

  it("is OpenZeppelin's standard tree over the batches' leaf values", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 7 }), (n, size) => {
        const batches = fundingBatches(debits(n), size);
        const values = batches.map((b) => [domain.chainId, domain.escrow, 9, b.index, b.accounts, b.amounts]);
        const oz = StandardMerkleTree.of(values, [...FUNDING_LEAF_ENCODING]);
        expect(fundingTree(domain, 9, batches)!.root).toBe(oz.root);
        expect(fundingRootOf(domain, 9, debits(n), size)).toBe(oz.root);
        // Leaf i's proof verifies against the root, as `JobEscrow.debit` checks it.
        const tree = fundingTree(domain, 9, batches)!;
        batches.forEach((b, i) => {
          expect(verifyMerkleProof(tree.proof(i), tree.root, fundingLeaf(domain, 9, b))).toBe(true);
        });
      }),
      { numRuns: 30 },
    );
  });

  it('binds each batch to its chain, escrow and epoch', () => {
    const [batch] = fundingBatches(debits(3), 3);
    const leaf = toHex(fundingLeaf(domain, 1, batch));
    expect(toHex(fundingLeaf({ ...domain, chainId: 1 }, 1, batch))).not.toBe(leaf);
    expect(toHex(fundingLeaf({ ...domain, escrow: `0x${'e6'.repeat(20)}` }, 1, batch))).not.toBe(leaf);
    expect(toHex(fundingLeaf(domain, 2, batch))).not.toBe(leaf);
    expect(fundingRootOf(domain, 1, [], 100)).toBe(ZeroHash);
  });

  it("rebuilds every batch and proof from a file, and refuses a file whose root its debits don't give", () => {
    const file = { epoch: 4, chainId: domain.chainId, debits: debits(5) };
    const funding = { escrow: domain.escrow, batchSize: 2, root: fundingRootOf(domain, 4, file.debits, 2) };
    const batches = committedBatches({ ...file, funding });
    expect(batches.map((b) => b.accounts.length)).toEqual([2, 2, 1]);
    for (const b of batches)
      expect(verifyMerkleProof(b.proof, funding.root, fundingLeaf(domain, 4, b))).toBe(true);
    expect(committedBatches({ ...file, debits: [], funding: { ...funding, root: ZeroHash } })).toEqual([]);
    const tampered = file.debits.map((d, i) => (i === 0 ? { ...d, amount: '1' } : d));
    expect(() => committedBatches({ ...file, debits: tampered, funding })).toThrow(/funding root/);
    expect(() => committedBatches({ ...file, funding: { ...funding, batchSize: 3 } })).toThrow(
      /funding root/,
    );
    expect(() => committedBatches({ ...file, funding: null })).toThrow(/no escrow funding/);
  });
});
