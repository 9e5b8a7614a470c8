import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { EpochCreditBook } from './credit-book.js';
import { applyClaims, applySlash, claimPayout, splitSlash } from './payout-math.js';

describe('payout maths', () => {
  it('cumulative claims, in any order and any number, never pay more than the latest cumulative', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: 0n, max: 10n ** 12n }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.nat({ max: 29 }), { maxLength: 60 }),
        (increments, picks) => {
          const cumulative: bigint[] = [];
          let c = 0n;
          for (const inc of increments) cumulative.push((c += inc));
          const latest = cumulative[cumulative.length - 1];
          const claims = picks.map((p) => cumulative[p % cumulative.length]);
          const { paid, claimed } = applyClaims(claims);
          expect(paid).toBeLessThanOrEqual(latest);
          expect(paid).toBe(claimed);
          // Claiming the latest afterwards always tops up to exactly the latest.
          expect(paid + claimPayout(latest, claimed)).toBe(latest);
        },
      ),
    );
  });

  it('slashing takes bonded stake first, never more than there is, and conserves tokens', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 128n - 1n }),
        fc.bigInt({ min: 0n, max: 2n ** 128n - 1n }),
        fc.bigInt({ min: 0n, max: 2n ** 130n }),
        (bonded, unbonding, requested) => {
          const out = applySlash({ bonded, unbonding }, requested);
          expect(out.slashed).toBe(requested < bonded + unbonding ? requested : bonded + unbonding);
          expect(out.bonded + out.unbonding + out.slashed).toBe(bonded + unbonding);
          expect(out.bonded === 0n || out.unbonding === unbonding).toBe(true);
        },
      ),
    );
  });

  it('the credit book debits developers exactly what it credits providers', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: 9 }), fc.nat({ max: 4 }), fc.bigInt({ min: 1n, max: 10n ** 9n })), {
          maxLength: 200,
        }),
        (jobs) => {
          const book = new EpochCreditBook();
          jobs.forEach(([p, d, amount], i) =>
            book.credit(
              `0x${String(p).padStart(40, '0')}`,
              `0x${String(d).padStart(40, 'a')}`,
              amount,
              `j${i}`,
            ),
          );
          const credited = book
            .credits()
            .flatMap((c) => c.receipts)
            .reduce((s, r) => s + r.amount, 0n);
          const debited = book.debits().reduce((s, d) => s + d.amount, 0n);
          expect(credited).toBe(debited);
          expect(credited).toBe(book.total);
        },
      ),
    );
  });

  it('a slash splits into shares pro rata to the weights plus burnt dust below one unit per beneficiary', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 24n }),
        fc.array(fc.bigInt({ min: 1n, max: 10n ** 18n }), { maxLength: 64 }),
        (slashed, weights) => {
          const { shares, compensated, burnt } = splitSlash(slashed, weights);
          expect(compensated + burnt).toBe(slashed);
          expect(shares.reduce((a, x) => a + x, 0n)).toBe(compensated);
          expect(burnt).toBeGreaterThanOrEqual(0n);
          if (weights.length === 0) expect(burnt).toBe(slashed);
          else expect(burnt).toBeLessThan(BigInt(weights.length));
        },
      ),
    );
  });
});
