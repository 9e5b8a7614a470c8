import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assertBalanced, splitPayment } from './ledger-accounts.js';

describe('ledger maths', () => {
  it('rejects a transaction that does not sum to zero', () => {
    expect(() =>
      assertBalanced([
        { account: 'a', amount: 5n },
        { account: 'b', amount: -4n },
      ]),
    ).toThrow(/sum is 1/);
    expect(() =>
      assertBalanced([
        { account: 'a', amount: 5n },
        { account: 'b', amount: -5n },
      ]),
    ).not.toThrow();
  });

  it('splits a payment without creating or losing a base unit', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 30n }),
        fc.integer({ min: 0, max: 10_000 }),
        (gross, bps) => {
          const { provider, fee } = splitPayment(gross, bps);
          expect(provider + fee).toBe(gross);
          expect(fee >= 0n && provider >= 0n).toBe(true);
        },
      ),
    );
  });
});
