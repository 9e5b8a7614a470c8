import fc from 'fast-check';
import { Wallet, getAddress } from 'ethers';
import { describe, expect, it } from 'vitest';
import {
  MAX_STORED_SPENDING_CAP,
  capHeadroom,
  debitableWithinCap,
  fitsSpendingCap,
  signSpendingCap,
  spendingCapDomain,
  spendingCapSigner,
  storedSpendingCap,
} from './spending-cap.js';

const amount = fc.bigInt({ min: 0n, max: 10n ** 30n });

describe('spending cap arithmetic', () => {
  it('admits a sequence of spends exactly while their sum stays within the cap', () => {
    fc.assert(
      fc.property(amount, fc.array(amount, { maxLength: 50 }), (cap, spends) => {
        let committed = 0n;
        for (const s of spends) {
          const fits = fitsSpendingCap(cap, committed, s);
          expect(fits).toBe(s <= capHeadroom(cap, committed));
          if (fits) committed += s;
          expect(committed <= cap).toBe(true);
        }
      }),
    );
  });

  it('never debits beyond the balance nor past the cap', () => {
    fc.assert(
      // The contract keeps spent <= cap (caps only rise, debits stay within them).
      fc.property(amount, amount, amount, amount, (owed, balance, a, b) => {
        const [spent, cap] = a <= b ? [a, b] : [b, a];
        const d = debitableWithinCap(owed, balance, spent, cap);
        if (d === null) {
          expect(spent + (owed < balance ? owed : balance) > cap).toBe(true);
        } else {
          expect(d <= owed && d <= balance).toBe(true);
          expect(spent + d <= cap).toBe(true);
          expect(d).toBe(owed < balance ? owed : balance);
        }
      }),
    );
  });

  it('stores caps beyond uint128 as the uint128 maximum, and only those', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }), (cap) => {
        const stored = storedSpendingCap(cap);
        expect(stored <= MAX_STORED_SPENDING_CAP).toBe(true);
        expect(stored === cap).toBe(cap <= MAX_STORED_SPENDING_CAP);
      }),
    );
  });
});

describe('spending cap signatures', () => {
  const domain = spendingCapDomain(31337, '0x5FbDB2315678afecb367f032d93F642f64180aa3');

  it('recovers the signer of its own cap, and no one else for another cap or domain', async () => {
    const wallet = Wallet.createRandom();
    const signed = await signSpendingCap(wallet, domain, 1_000n);
    expect(signed.account).toBe(getAddress(wallet.address));
    expect(spendingCapSigner(domain, wallet.address, 1_000n, signed.signature)).toBe(signed.account);
    expect(spendingCapSigner(domain, wallet.address, 1_001n, signed.signature)).not.toBe(signed.account);
    const other = spendingCapDomain(1, domain.verifyingContract);
    expect(spendingCapSigner(other, wallet.address, 1_000n, signed.signature)).not.toBe(signed.account);
    expect(spendingCapSigner(domain, wallet.address, 1_000n, '0x1234')).toBeNull();
  });
});
