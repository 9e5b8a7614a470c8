import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  LedgerAccounts,
  accountName,
  developerAccount,
  parseAccount,
  payeeOf,
  payoutAccount,
  peerOfAccount,
  providerAccount,
  systemAccount,
  type ParsedAccount,
} from './accounts.js';

const segment = fc.string({ minLength: 1, maxLength: 60 }).filter((s) => !s.includes(':'));
const peerId = fc.oneof(segment, fc.constant('12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'));
const address = fc
  .uint8Array({ minLength: 20, maxLength: 20 })
  .map((b) => `0x${Buffer.from(b).toString('hex')}`);

const parsedAccount: fc.Arbitrary<ParsedAccount> = fc.oneof(
  fc.record({
    owner: fc.constant('developer' as const),
    kind: fc.constantFrom('available' as const, 'reserved' as const),
    accountId: fc.oneof(fc.uuid(), segment),
  }),
  fc.record({
    owner: fc.constant('provider' as const),
    kind: fc.constantFrom('earned' as const, 'held' as const, 'held-fee' as const),
    peerId,
  }),
  fc.record({
    owner: fc.constant('payout' as const),
    kind: fc.constant('settled' as const),
    address,
    epoch: fc.nat(),
  }),
  fc.record({
    owner: fc.constant('system' as const),
    kind: fc.constantFrom('mint' as const, 'fees' as const, 'escrow' as const, 'escrow-shortfall' as const),
  }),
);

describe('ledger account names', () => {
  it('keeps the names the ledger has always used', () => {
    expect(LedgerAccounts.available('a1')).toBe('acct:a1:available');
    expect(LedgerAccounts.reserved('a1')).toBe('acct:a1:reserved');
    expect(LedgerAccounts.providerEarned('12D3Koo')).toBe('provider:12D3Koo:earned');
    expect(LedgerAccounts.held('12D3Koo')).toBe('provider:12D3Koo:held');
    expect(LedgerAccounts.heldFee('12D3Koo')).toBe('provider:12D3Koo:held-fee');
    expect(LedgerAccounts.settled('0xABCdef', 7)).toBe('provider:0xabcdef:settled:7');
    expect([
      LedgerAccounts.mint,
      LedgerAccounts.fees,
      LedgerAccounts.escrow,
      LedgerAccounts.shortfall,
    ]).toEqual(['system:mint', 'system:fees', 'system:escrow', 'system:escrow-shortfall']);
  });

  it('parses every name it builds back to what built it', () => {
    fc.assert(
      fc.property(parsedAccount, (account) => {
        expect(parseAccount(accountName(account))).toEqual(account);
      }),
    );
  });

  it('parses a name only when building its meaning gives the same name back', () => {
    const names = fc.oneof(
      fc.string(),
      fc
        .tuple(
          fc.constantFrom('acct', 'provider', 'system', 'developer', ''),
          fc.string({ maxLength: 8 }),
          fc.constantFrom('available', 'reserved', 'earned', 'held', 'held-fee', 'settled', 'fees', ''),
          fc.oneof(fc.constant(undefined), fc.constantFrom('0', '01', '7', '-1', 'x')),
        )
        .map((parts) => parts.filter((p) => p !== undefined).join(':')),
    );
    fc.assert(
      fc.property(names, (name) => {
        const parsed = parseAccount(name);
        if (parsed) expect(accountName(parsed)).toBe(name);
      }),
    );
  });

  it('refuses to build a name whose parts would not parse back', () => {
    expect(() => developerAccount('a:b', 'available')).toThrow(/invalid account id/);
    expect(() => providerAccount('', 'earned')).toThrow(/invalid peer id/);
    expect(() => payoutAccount('0xab', -1)).toThrow(/invalid epoch/);
    expect(() => payoutAccount('0xab', 1.5)).toThrow(/invalid epoch/);
  });

  it('tells what a name is', () => {
    expect(parseAccount('system:canary')).toBeNull();
    expect(parseAccount('provider:p:earned:1')).toBeNull();
    expect(parseAccount('provider:0xAB:settled:1')).toBeNull();
    expect(parseAccount('provider:0xab:settled:01')).toBeNull();
    expect(parseAccount(systemAccount('fees'))).toEqual({ owner: 'system', kind: 'fees' });
    expect(peerOfAccount('provider:p1:earned')).toBe('p1');
    expect(peerOfAccount('provider:p1:held', 'earned')).toBeNull();
    expect(peerOfAccount('provider:p1:held', 'held')).toBe('p1');
    expect(peerOfAccount('provider:0xab:settled:3')).toBeNull();
    expect(peerOfAccount('acct:p1:available')).toBeNull();
  });

  it('names the payee of an entry', () => {
    expect(payeeOf('provider:p1:held-fee')).toEqual({
      accountKind: 'held-fee',
      payeePeerId: 'p1',
      payoutAddress: null,
    });
    expect(payeeOf('provider:0xab:settled:3')).toEqual({
      accountKind: 'settled',
      payeePeerId: null,
      payoutAddress: '0xab',
    });
    expect(payeeOf('acct:a:reserved')).toEqual({
      accountKind: 'reserved',
      payeePeerId: null,
      payoutAddress: null,
    });
    expect(payeeOf('whatever')).toEqual({ accountKind: null, payeePeerId: null, payoutAddress: null });
  });
});
