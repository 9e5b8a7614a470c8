import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LedgerAccounts } from './accounts.js';
import { decodeLedgerCursor, developerBalanceOf, encodeLedgerCursor } from './account-history.js';

describe('ledger history cursors', () => {
  it('round-trips every entry id', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }), (id) => {
        const cursor = encodeLedgerCursor({ id });
        expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(decodeLedgerCursor(cursor)).toBe(id);
      }),
    );
  });

  it('refuses what it did not hand out', () => {
    for (const text of ['', 'e0', 'e-1', 'e01', `e${2n ** 63n}`, '12', 'e1x', 'job|1']) {
      expect(decodeLedgerCursor(Buffer.from(text).toString('base64url')), text).toBeNull();
    }
  });
});

describe('developerBalanceOf', () => {
  it("names a developer's two balances and nothing else", () => {
    expect(developerBalanceOf(LedgerAccounts.available('a'))).toBe('available');
    expect(developerBalanceOf(LedgerAccounts.reserved('a'))).toBe('reserved');
    expect(developerBalanceOf(LedgerAccounts.fees)).toBeNull();
    expect(developerBalanceOf(LedgerAccounts.held('peer'))).toBeNull();
  });
});
