import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LedgerAccounts, parseAccount } from './accounts.js';
import type { LedgerPosting } from './ledger-accounts.js';
import {
  depositPostings,
  epochSweepPostings,
  jobEffectPostings,
  mintPostings,
  reservePostings,
  reversePostings,
  vestPostings,
  withdrawalPostings,
  type ReservedJob,
} from './postings.js';

const job = (cost: bigint): ReservedJob => ({ id: 'j', accountId: 'a', cost });
const sum = (xs: readonly { amount: bigint }[]): bigint => xs.reduce((s, x) => s + x.amount, 0n);
const on = (postings: readonly LedgerPosting[], account: string): bigint =>
  sum(postings.filter((p) => p.account === account));
const amount = fc.bigInt({ min: 0n, max: 10n ** 18n });
const fee = (x: bigint, bps: number): bigint => (x * BigInt(bps)) / 10_000n;

/** Every name a builder makes parses: nothing posts to an account the ledger cannot tell apart. */
function expectKnownAccounts(postings: readonly LedgerPosting[]): void {
  for (const p of postings) expect(parseAccount(p.account), p.account).not.toBeNull();
}

/** A completed job's settle transaction: what it charges, and to whom. */
describe('jobEffectPostings (settle)', () => {
  const settle = fc
    .record({
      cost: fc.bigInt({ min: 0n, max: 10n ** 15n }),
      shares: fc.array(fc.bigInt({ min: 0n, max: 10n ** 12n }), { minLength: 1, maxLength: 3 }),
      feeBps: fc.integer({ min: 0, max: 10_000 }),
      hold: fc.boolean(),
    })
    .filter((c) => c.shares.reduce((s, x) => s + x, 0n) <= c.cost);

  it('conserves money: postings sum to 0, the reservation is used up exactly, nothing but it is debited', () => {
    fc.assert(
      fc.property(settle, ({ cost, shares, feeBps, hold }) => {
        const payments = shares.map((amount, i) => ({ peerId: `p${i}`, amount }));
        const tx = jobEffectPostings(job(cost), { kind: 'settle', payments, feeBps, hold });
        expect(tx?.kind).toBe('settle');
        const postings = tx?.postings ?? [];
        expectKnownAccounts(postings);
        expect(sum(postings)).toBe(0n);
        expect(on(postings, LedgerAccounts.reserved('a'))).toBe(-cost);
        // No negative amounts: every posting but the reservation's debit is a credit.
        for (const p of postings.filter((x) => x.account !== LedgerAccounts.reserved('a'))) {
          expect(p.amount).toBeGreaterThanOrEqual(0n);
        }
      }),
    );
  });

  it('charges what was paid, never more than was reserved, and the fee on it with the work', () => {
    fc.assert(
      fc.property(settle, ({ cost, shares, feeBps, hold }) => {
        const payments = shares.map((amount, i) => ({ peerId: `p${i}`, amount }));
        const postings =
          jobEffectPostings(job(cost), { kind: 'settle', payments, feeBps, hold })?.postings ?? [];
        const refunded = on(postings, LedgerAccounts.available('a'));
        const charged = cost - refunded;
        expect(refunded).toBeGreaterThanOrEqual(0n);
        expect(charged).toBeLessThanOrEqual(cost);
        expect(charged).toBe(shares.reduce((s, x) => s + x, 0n));
        // Fee: on hold it waits beside each provider's held credit; otherwise it is the platform's now.
        const fees = sum(
          postings.filter(
            (p) => p.account === LedgerAccounts.fees || parseAccount(p.account)?.kind === 'held-fee',
          ),
        );
        expect(fees).toBe(shares.reduce((s, x) => s + fee(x, feeBps), 0n));
        for (const [i, share] of shares.entries()) {
          const credit = hold ? LedgerAccounts.held(`p${i}`) : LedgerAccounts.providerEarned(`p${i}`);
          expect(on(postings, credit)).toBe(share - fee(share, feeBps));
          if (hold) expect(on(postings, LedgerAccounts.heldFee(`p${i}`))).toBe(fee(share, feeBps));
        }
        if (hold) expect(postings.some((p) => p.account === LedgerAccounts.fees)).toBe(false);
      }),
    );
  });

  it("takes each payment's fee from the offer it was signed into, whatever the fee of the day is", () => {
    fc.assert(
      fc.property(
        settle,
        fc.array(fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }), {
          minLength: 3,
          maxLength: 3,
        }),
        ({ cost, shares, feeBps, hold }, offered) => {
          const payments = shares.map((amount, i) => ({ peerId: `p${i}`, amount, feeBps: offered[i] }));
          const postings =
            jobEffectPostings(job(cost), { kind: 'settle', payments, feeBps, hold })?.postings ?? [];
          expect(sum(postings)).toBe(0n);
          for (const [i, share] of shares.entries()) {
            const bps = offered[i] ?? feeBps;
            const credit = hold ? LedgerAccounts.held(`p${i}`) : LedgerAccounts.providerEarned(`p${i}`);
            expect(on(postings, credit)).toBe(share - fee(share, bps));
          }
        },
      ),
    );
    // An admin raising the fee to 100 % after the offer takes nothing from it.
    const tx = jobEffectPostings(job(100n), {
      kind: 'settle',
      payments: [{ peerId: 'p0', amount: 100n, feeBps: 500 }],
      feeBps: 10_000,
    });
    expect(on(tx?.postings ?? [], LedgerAccounts.providerEarned('p0'))).toBe(95n);
  });

  it('refuses to pay more than the reservation, or a negative amount', () => {
    expect(() =>
      jobEffectPostings(job(10n), { kind: 'settle', payments: [{ peerId: 'p', amount: 11n }], feeBps: 0 }),
    ).toThrow(/more than its reservation/);
    expect(() =>
      jobEffectPostings(job(10n), {
        kind: 'settle',
        payments: [
          { peerId: 'p', amount: 12n },
          { peerId: 'q', amount: -3n },
        ],
        feeBps: 0,
      }),
    ).toThrow(/negative/);
  });

  it('releases the whole reservation, and posts nothing for no effect', () => {
    expect(jobEffectPostings(job(7n), { kind: 'release' })).toEqual({
      kind: 'release',
      postings: [
        { account: LedgerAccounts.reserved('a'), amount: -7n },
        { account: LedgerAccounts.available('a'), amount: 7n },
      ],
    });
    expect(jobEffectPostings(job(7n), { kind: 'none' })).toBeNull();
  });
});

describe('a job through the ledger', () => {
  it('reserve, settle on hold, then vest or reverse each credit: developer + providers + fees = what it held', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 15n }),
        fc.array(fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.boolean()), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.integer({ min: 0, max: 10_000 }),
        (extra, shares, feeBps) => {
          const cost = shares.reduce((s, [x]) => s + x, 0n) + extra;
          const payments = shares.map(([amount], i) => ({ peerId: `p${i}`, amount }));
          const txs = [
            reservePostings('a', cost),
            jobEffectPostings(job(cost), { kind: 'settle', payments, feeBps, hold: true }),
          ];
          const balances = new Map<string, bigint>();
          const apply = (postings: readonly LedgerPosting[]): void => {
            for (const p of postings) balances.set(p.account, (balances.get(p.account) ?? 0n) + p.amount);
          };
          for (const tx of txs) apply(tx?.postings ?? []);
          for (const [i, [share, vests]] of shares.entries()) {
            const credit = balances.get(LedgerAccounts.held(`p${i}`)) ?? 0n;
            const heldFee = balances.get(LedgerAccounts.heldFee(`p${i}`)) ?? 0n;
            expect(credit + heldFee).toBe(share);
            const tx = vests
              ? vestPostings(`p${i}`, credit, heldFee)
              : reversePostings('a', `p${i}`, credit, heldFee);
            expect(sum(tx.postings)).toBe(0n);
            expectKnownAccounts(tx.postings);
            apply(tx.postings);
          }
          // Every held account is empty, the reservation is used up, and money was only moved.
          for (const [account, balance] of balances) {
            const kind = parseAccount(account)?.kind;
            if (kind === 'held' || kind === 'held-fee' || kind === 'reserved') expect(balance).toBe(0n);
          }
          const vested = shares.filter(([, v]) => v).reduce((s, [x]) => s + x, 0n);
          const earned = [...balances]
            .filter(([account]) => parseAccount(account)?.kind === 'earned')
            .reduce((s, [, b]) => s + b, 0n);
          expect(earned + (balances.get(LedgerAccounts.fees) ?? 0n)).toBe(vested);
          expect(balances.get(LedgerAccounts.available('a'))).toBe(-vested);
          expect([...balances.values()].reduce((s, b) => s + b, 0n)).toBe(0n);
        },
      ),
    );
  });
});

describe('the other ledger transactions', () => {
  it('each balances and posts only to accounts the ledger knows', () => {
    fc.assert(
      fc.property(amount, amount, (x, y) => {
        const drafts = [
          reservePostings('a', x),
          vestPostings('p', x, y),
          reversePostings('a', 'p', x, y),
          depositPostings('a', x),
          withdrawalPostings('a', x, y),
          mintPostings('a', x),
        ];
        for (const d of drafts) {
          expect(sum(d.postings)).toBe(0n);
          expectKnownAccounts(d.postings);
        }
      }),
    );
  });

  it('takes a withdrawal off the available balance and books only the excess as a shortfall', () => {
    fc.assert(
      fc.property(amount, amount, (withdrawn, available) => {
        const { postings, shortfall } = withdrawalPostings('a', withdrawn, available);
        const debited = -on(postings, LedgerAccounts.available('a'));
        expect(debited).toBe(withdrawn < available ? withdrawn : available);
        expect(shortfall).toBe(withdrawn - debited);
        expect(on(postings, LedgerAccounts.shortfall)).toBe(-shortfall);
        expect(shortfall).toBeGreaterThanOrEqual(0n);
      }),
    );
  });

  it('sweeps an epoch to the settled accounts of the addresses paid', () => {
    fc.assert(
      fc.property(
        fc.array(amount, { minLength: 1, maxLength: 4 }),
        amount,
        fc.nat(),
        (earned, fees, epoch) => {
          const byPeer = new Map(earned.map((a, i) => [`p${i}`, { amount: a }]));
          const credits = [
            ...earned.map((a, i) => ({ provider: `0x${i.toString(16).padStart(40, '0')}`, amount: a })),
            { provider: `0x${'f'.repeat(40)}`, amount: fees },
          ];
          const tx = epochSweepPostings(epoch, { byPeer, fees }, credits);
          expect(tx.kind).toBe('epoch');
          expect(sum(tx.postings)).toBe(0n);
          expectKnownAccounts(tx.postings);
          for (const p of tx.postings) {
            const parsed = parseAccount(p.account);
            if (parsed?.owner === 'payout') expect(parsed.epoch).toBe(epoch);
          }
        },
      ),
    );
  });
});
