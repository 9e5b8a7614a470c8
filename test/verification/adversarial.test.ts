import { describe, expect, it } from 'vitest';
import { runVerificationHarness } from './harness.js';

// The small size of the adversarial harness (bench/verification.bench.ts runs the full one).
// Always-wrong cheaters are caught by design at their first verified result, which this checks. A
// colluding ring that is honest unless paired is caught only when a canary follows one of its paired
// jobs (probability = the canary rate per pairing), so at 30 jobs it escapes in about one run of four:
// its mechanism is checked deterministically in canary-pairing.test.ts, and its detection rate is
// measured at full size by the verification bench.
describe('verification under adversarial providers (real coordinator, PostgreSQL, Redis, libp2p)', () => {
  it('pays no wrong result, bans every cheater that cheated within a bounded number of jobs, and penalises no honest provider', async () => {
    const report = await runVerificationHarness({
      honest: 4,
      adversaries: ['wrong', 'noise', 'zeros', 'stale'],
      jobs: 30,
      concurrency: 10,
      policy: { mode: 'redundant', k: 2, canaryRate: 0.2 },
      log: (line) => console.error(line),
    });
    console.log(JSON.stringify({ verificationHarness: report }, null, 2));
    expect(report.jobs.completed).toBe(report.jobs.submitted);
    expect(report.paidWrongResults).toBe(0);
    expect(report.wrongResultsDelivered).toBe(0);
    expect(report.honestPenalised).toBe(0);
    expect(report.wrongResultsReturned).toBeGreaterThan(0);
    for (const cheater of report.cheaters.filter((x) => x.behaviour !== 'copy')) {
      // Always-wrong cheaters: banned at their first verified result. A wrong copy is only known
      // once its partner's copy is in; until then the cheater's 4 slots keep taking work, and from
      // the disagreement to the ban it gets none (Adjudicator review). What it returns in all:
      // the jobs on its slots when the disagreement is found plus at most one more round of its
      // slots (seen: 2 to 7 over 10 runs): at most 2 × 4.
      expect(cheater.banned, `${cheater.behaviour} banned`).toBe(true);
      expect(cheater.cheatsUntilBan ?? Infinity).toBeLessThanOrEqual(2 * 4);
    }
  }, 180_000);
});
