import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Job } from '#prisma';
import { LedgerAccounts } from '../ledger/ledger-accounts.js';
import { VerificationAccounts } from '../verification/verification-accounts.js';
import { effectPostings } from './jobs.repository.js';

function job(cost: bigint): Job {
  return { id: 'j', accountId: 'a', cost } as unknown as Job;
}

const sum = (xs: { amount: bigint }[]): bigint => xs.reduce((s, x) => s + x.amount, 0n);

/** The ledger transaction a completed job posts: what it charges, and to whom. */
describe('effectPostings (settle)', () => {
  const settle = fc
    .record({
      cost: fc.bigInt({ min: 0n, max: 10n ** 15n }),
      shares: fc.array(fc.bigInt({ min: 0n, max: 10n ** 12n }), { minLength: 1, maxLength: 3 }),
      feeBps: fc.integer({ min: 0, max: 10_000 }),
      hold: fc.boolean(),
    })
    .filter((c) => c.shares.reduce((s, x) => s + x, 0n) <= c.cost);

  it('balances, never charges more than was reserved, and charges the fee with the work it is on', () => {
    fc.assert(
      fc.property(settle, ({ cost, shares, feeBps, hold }) => {
        const payments = shares.map((amount, i) => ({ peerId: `p${i}`, amount }));
        const tx = effectPostings(job(cost), { kind: 'settle', payments, feeBps, hold });
        expect(tx).not.toBeNull();
        const postings = tx!.postings;
        expect(sum(postings)).toBe(0n);
        const reserved = postings.filter((p) => p.account === LedgerAccounts.reserved('a'));
        expect(sum(reserved)).toBe(-cost);
        const refunded = sum(postings.filter((p) => p.account === LedgerAccounts.available('a')));
        const charged = cost - refunded;
        expect(charged).toBe(shares.reduce((s, x) => s + x, 0n));
        expect(refunded).toBeGreaterThanOrEqual(0n);
        // Fee: on hold it waits beside each provider's held credit; otherwise it is the platform's now.
        const fee = sum(
          postings.filter((p) => p.account === LedgerAccounts.fees || p.account.endsWith(':held-fee')),
        );
        const expectedFee = shares.reduce((s, x) => s + (x * BigInt(feeBps)) / 10_000n, 0n);
        expect(fee).toBe(expectedFee);
        for (const [i, share] of shares.entries()) {
          const credit = hold ? VerificationAccounts.held(`p${i}`) : LedgerAccounts.providerEarned(`p${i}`);
          const heldFee = hold ? VerificationAccounts.heldFee(`p${i}`) : null;
          const credited = sum(postings.filter((p) => p.account === credit));
          const feeOn = heldFee ? sum(postings.filter((p) => p.account === heldFee)) : 0n;
          expect(credited).toBe(share - (share * BigInt(feeBps)) / 10_000n);
          if (hold) expect(feeOn).toBe((share * BigInt(feeBps)) / 10_000n);
        }
        if (hold) expect(postings.some((p) => p.account === LedgerAccounts.fees)).toBe(false);
      }),
    );
  });

  it('refuses to pay more than the reservation', () => {
    expect(() =>
      effectPostings(job(10n), { kind: 'settle', payments: [{ peerId: 'p', amount: 11n }], feeBps: 0 }),
    ).toThrow(/more than its reservation/);
  });

  it('releases the whole reservation', () => {
    expect(effectPostings(job(7n), { kind: 'release' })?.postings).toEqual([
      { account: LedgerAccounts.reserved('a'), amount: -7n },
      { account: LedgerAccounts.available('a'), amount: 7n },
    ]);
  });
});
