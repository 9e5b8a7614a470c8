import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { closeEpoch, cumulativeFromEpochFile, receiptId, type EpochFile } from './epoch-file.js';
import { reconcileProvider, type JournalPayment } from './provider-reconcile.js';

const DOMAIN = { chainId: 31337, distributor: `0x${'d1'.repeat(20)}` };
const ME = { account: `0x${'aa'.repeat(20)}`, peerId: '12D3KooWme' };
const OTHER = { account: `0x${'bb'.repeat(20)}`, peerId: '12D3KooWother' };

/** How the coordinator treats one job of the journal. */
type Fate = 'paid' | 'short' | 'over' | 'withheld';

describe('reconcileProvider', () => {
  it('finds every short payment and every unpaid job, whatever the files do', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            net: fc.bigInt({ min: 2n, max: 10n ** 12n }),
            fate: fc.constantFrom<Fate>('paid', 'short', 'over', 'withheld'),
            epoch: fc.integer({ min: 1, max: 3 }),
          }),
          { maxLength: 30 },
        ),
        fc.nat({ max: 3 }),
        (jobs, strangers) => {
          const journal: JournalPayment[] = jobs.map((j, i) => ({ jobId: `job-${i}`, net: j.net }));
          let wantShort = 0n;
          const files: EpochFile[] = [];
          let cumulative = new Map<string, { index: number; cumulativeAmount: bigint }>();
          for (let epoch = 1; epoch <= 3; epoch++) {
            const receipts: { id: string; amount: bigint }[] = [];
            jobs.forEach((j, i) => {
              if (j.epoch !== epoch || j.fate === 'withheld') return;
              const amount = j.fate === 'short' ? j.net - 1n : j.fate === 'over' ? j.net + 1n : j.net;
              if (j.fate === 'short') wantShort += 1n;
              receipts.push({ id: receiptId(`job-${i}`, ME.peerId), amount });
            });
            if (epoch === 1) {
              for (let k = 0; k < strangers; k++)
                receipts.push({ id: receiptId(`ghost-${k}`, ME.peerId), amount: 5n });
            }
            const credits = [
              { provider: OTHER.account, receipts: [{ id: `x-${epoch}:${OTHER.peerId}`, amount: 7n }] },
            ];
            if (receipts.length > 0) credits.push({ provider: ME.account, receipts });
            const file = closeEpoch(cumulative, credits, { epoch, ...DOMAIN });
            files.push(file);
            cumulative = cumulativeFromEpochFile(file);
          }
          const r = reconcileProvider(files, ME, journal);
          expect(r.owedShort).toBe(wantShort);
          expect(r.counts.short).toBe(jobs.filter((j) => j.fate === 'short').length);
          expect(r.counts.over).toBe(jobs.filter((j) => j.fate === 'over').length);
          expect(r.counts.matched).toBe(jobs.filter((j) => j.fate === 'paid').length);
          expect(r.counts.unknown).toBe(strangers);
          expect(r.unpaid.map((u) => u.jobId).sort()).toEqual(
            jobs.flatMap((j, i) => (j.fate === 'withheld' ? [`job-${i}`] : [])).sort(),
          );
          const last = r.epochs[r.epochs.length - 1];
          expect(last.cumulativeAmount).toBe(r.epochs.reduce((s, e) => s + e.paid, 0n));
        },
      ),
    );
  });

  it("sums a job's attempts, and flags entries written before the fee was signed", () => {
    const file = closeEpoch(
      new Map(),
      [
        {
          provider: ME.account,
          receipts: [
            { id: receiptId('j1', ME.peerId), amount: 30n },
            { id: receiptId('j2', ME.peerId), amount: 9n },
          ],
        },
      ],
      { epoch: 1, ...DOMAIN },
    );
    const r = reconcileProvider([file], ME, [
      { jobId: 'j1', net: 10n },
      { jobId: 'j1', net: 20n },
      { jobId: 'j2', net: null },
    ]);
    expect(r.epochs[0].receipts.map((x) => [x.jobId, x.match])).toEqual([
      ['j1', 'matched'],
      ['j2', 'unsigned'],
    ]);
    expect(r.unpaid).toEqual([]);
  });

  it('ignores receipts of another peer id paid to the same address', () => {
    const file = closeEpoch(
      new Map(),
      [{ provider: ME.account, receipts: [{ id: receiptId('j9', 'second-agent'), amount: 3n }] }],
      { epoch: 1, ...DOMAIN },
    );
    const r = reconcileProvider([file], ME, []);
    expect(r.epochs[0]).toMatchObject({ index: 0, paid: 0n, receipts: [] });
  });
});
