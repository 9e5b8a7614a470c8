import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LedgerAccounts, payeeOf } from './accounts.js';
import { chargesByJob, chargesOfNewJob, jobChargesOf, type JobEntrySum } from './job-charges.js';
import { planPostings, type LedgerTransaction } from './ledger.repository.js';
import {
  jobEffectPostings,
  reservePostings,
  reversePostings,
  vestPostings,
  type SettlePayment,
} from './postings.js';
import { splitPayment } from './ledger-accounts.js';

const JOB = '00000000-0000-4000-8000-000000000001';
const DEV = 'dev-account';

/** What LedgerRepository.jobEntrySums returns for these transactions (the same grouping, in memory). */
function sumsOf(transactions: readonly LedgerTransaction[]): JobEntrySum[] {
  const plan = planPostings(transactions);
  const e = plan.entries;
  const groups = new Map<string, JobEntrySum>();
  e.account.forEach((account, i) => {
    const jobId = e.jobId[i];
    if (jobId === null) return;
    const payee = payeeOf(account);
    const key = `${jobId}|${payee.accountKind}|${payee.payeePeerId}`;
    const amount = BigInt(e.amount[i]);
    const id = BigInt(i + 1);
    const g = groups.get(key) ?? {
      jobId,
      accountKind: payee.accountKind,
      peerId: payee.payeePeerId,
      net: 0n,
      reservedIn: 0n,
      firstId: id,
    };
    g.net += amount;
    if (e.kind[i] === 'reserve' && amount > 0n) g.reservedIn += amount;
    groups.set(key, g);
  });
  return [...groups.values()];
}

function settled(
  cost: bigint,
  payments: SettlePayment[],
  feeBps: number,
  hold: boolean,
): LedgerTransaction[] {
  return [
    { ...reservePostings(DEV, cost), jobId: JOB },
    {
      ...jobEffectPostings({ id: JOB, accountId: DEV, cost }, { kind: 'settle', payments, feeBps, hold })!,
      jobId: JOB,
    },
  ];
}

describe('jobChargesOf', () => {
  it('reads the reservation and the charge of a completed job: 340 reserved, 34 charged', () => {
    const charges = jobChargesOf(JOB, sumsOf(settled(340n, [{ peerId: 'p1', amount: 34n }], 1_000, false)));
    expect(charges).toEqual({ reserved: 340n, charged: 34n, work: 31n, redundancy: 0n, canary: 0n, fee: 3n });
  });

  it('splits redundant runs from the first one, and charges nothing for a released job', () => {
    const redundant = jobChargesOf(
      JOB,
      sumsOf(
        settled(
          100n,
          [
            { peerId: 'p1', amount: 20n },
            { peerId: 'p2', amount: 30n },
          ],
          0,
          true,
        ),
      ),
    );
    expect(redundant).toMatchObject({ reserved: 100n, charged: 50n, work: 20n, redundancy: 30n, fee: 0n });
    const released = jobChargesOf(
      JOB,
      sumsOf([
        { ...reservePostings(DEV, 77n), jobId: JOB },
        { ...jobEffectPostings({ id: JOB, accountId: DEV, cost: 77n }, { kind: 'release' })!, jobId: JOB },
      ]),
    );
    expect(released).toEqual({ ...chargesOfNewJob(77n), reserved: 77n });
    expect(released.charged).toBe(0n);
  });

  it('holds whatever the postings do: charged = work + redundancy + canary + fee, through vesting and refunds', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            amount: fc.bigInt({ min: 0n, max: 10n ** 9n }),
            feeBps: fc.integer({ min: 0, max: 5_000 }),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        fc.bigInt({ min: 0n, max: 10n ** 9n }),
        fc.boolean(),
        fc.array(fc.constantFrom('vest', 'reverse'), { maxLength: 3 }),
        (runs, spare, hold, later) => {
          const payments = runs.map((r, i) => ({ peerId: `p${i}`, amount: r.amount, feeBps: r.feeBps }));
          const paid = payments.reduce((s, p) => s + p.amount, 0n);
          const cost = paid + spare;
          const transactions = settled(cost, payments, 0, hold);
          // Held credits vest or are reversed, one provider at a time, as verification does.
          let refunded = 0n;
          if (hold) {
            payments.forEach((p, i) => {
              const { provider, fee } = splitPayment(p.amount, p.feeBps);
              const step = later[i];
              if (step === 'vest' && provider > 0n)
                transactions.push({ ...vestPostings(p.peerId, provider, fee), jobId: JOB });
              if (step === 'reverse' && provider + fee > 0n) {
                transactions.push({ ...reversePostings(DEV, p.peerId, provider, fee), jobId: JOB });
                refunded += provider + fee;
              }
            });
          }
          const c = jobChargesOf(JOB, sumsOf(transactions));
          expect(c.reserved).toBe(cost);
          expect(c.charged).toBe(paid - refunded);
          expect(c.work + c.redundancy + c.canary + c.fee).toBe(c.charged);
          const fees = payments.reduce((s, p) => s + splitPayment(p.amount, p.feeBps).fee, 0n);
          if (refunded === 0n) expect(c.fee).toBe(fees);
        },
      ),
    );
  });

  it('keeps jobs apart and gives a job without entries nothing', () => {
    const other = '00000000-0000-4000-8000-000000000002';
    const sums = sumsOf([
      ...settled(10n, [{ peerId: 'p', amount: 4n }], 0, false),
      { ...reservePostings(DEV, 9n), jobId: other },
    ]);
    const byJob = chargesByJob([JOB, other, '00000000-0000-4000-8000-000000000003'], sums);
    expect(byJob.get(JOB)).toMatchObject({ reserved: 10n, charged: 4n });
    expect(byJob.get(other)).toMatchObject({ reserved: 9n, charged: 0n });
    expect(byJob.get('00000000-0000-4000-8000-000000000003')).toMatchObject({ reserved: 0n, charged: 0n });
    expect(LedgerAccounts.reserved(DEV)).toContain(DEV);
  });
});
