import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { fundingBatches } from './funding.js';

const debit = fc.record({
  account: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => `0x${Buffer.from(b).toString('hex')}`),
  amount: fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map(String),
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
