import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SqlParams } from '../database/sql.service.js';
import { LedgerAccounts, payeeOf } from './accounts.js';
import { byLockOrder, planPostings, reserveInsertedJobsSql } from './ledger.repository.js';
import { epochSweepPostings, jobEffectPostings } from './postings.js';

describe('planPostings', () => {
  it('lays out each entry with the payee columns of its account, and each account change', () => {
    const settle = jobEffectPostings(
      { id: '00000000-0000-4000-8000-000000000001', accountId: 'a', cost: 100n },
      { kind: 'settle', payments: [{ peerId: 'p1', amount: 60n }], feeBps: 1_000 },
    );
    const sweep = epochSweepPostings(3, { byPeer: new Map([['p1', { amount: 54n }]]), fees: 6n }, [
      { provider: `0x${'a'.repeat(40)}`, amount: 60n },
    ]);
    const plan = planPostings([{ ...settle!, jobId: 'j' }, sweep]);
    const e = plan.entries;
    expect(e.account.length).toBe(settle!.postings.length + sweep.postings.length);
    e.account.forEach((account, i) => {
      expect({
        accountKind: e.accountKind[i],
        payeePeerId: e.payeePeerId[i],
        payoutAddress: e.payoutAddress[i],
      }).toEqual(payeeOf(account));
    });
    expect(e.payeePeerId).toContain('p1');
    expect(e.payoutAddress).toContain(`0x${'a'.repeat(40)}`);
    expect([...plan.deltas.values()].reduce((s, d) => s + d, 0n)).toBe(0n);
    expect(plan.deltas.get(LedgerAccounts.providerEarned('p1'))).toBe(0n);
  });

  it('refuses a transaction that does not balance', () => {
    expect(() =>
      planPostings([
        {
          kind: 'settle',
          postings: [
            { account: LedgerAccounts.fees, amount: 1n },
            { account: LedgerAccounts.mint, amount: 0n },
          ],
        },
      ]),
    ).toThrow(/does not balance/);
  });

  it('locks the fee row first, then developer accounts, then the rest', () => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray([
          'acct:b:available',
          'acct:a:reserved',
          'provider:p:earned',
          'system:fees',
          'system:mint',
        ]),
        (names) => {
          const sorted = names
            .map((account) => ({ account }))
            .sort(byLockOrder)
            .map((x) => x.account);
          const rank = (n: string): number => (n === 'system:fees' ? 0 : n.startsWith('acct:') ? 1 : 2);
          for (let i = 1; i < sorted.length; i++)
            expect(rank(sorted[i - 1])).toBeLessThanOrEqual(rank(sorted[i]));
        },
      ),
    );
  });
});

describe('reserveInsertedJobsSql', () => {
  it('reserves only the jobs the statement inserted, with balanced rows and their payee columns', () => {
    const p = new SqlParams();
    p.add('first');
    const parts = reserveInsertedJobsSql(
      'ins',
      '00000000-0000-4000-8000-000000000000',
      [
        { id: 'j1', accountId: 'a', cost: 5n },
        { id: 'j2', accountId: 'b', cost: 7n },
      ],
      p,
    );
    const sql = parts.join(',\n');
    expect(sql).toContain('FROM ins');
    expect(sql).not.toMatch(/\|\|/);
    const [, jobs, accounts, amounts, kinds] = p.values as string[][];
    expect(jobs).toEqual(['j1', 'j1', 'j2', 'j2']);
    expect(accounts).toEqual([
      LedgerAccounts.available('a'),
      LedgerAccounts.reserved('a'),
      LedgerAccounts.available('b'),
      LedgerAccounts.reserved('b'),
    ]);
    expect(amounts).toEqual(['-5', '5', '-7', '7']);
    expect(kinds).toEqual(['available', 'reserved', 'available', 'reserved']);
  });
});
