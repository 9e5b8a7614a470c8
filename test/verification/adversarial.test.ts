import { describe, expect, it } from 'vitest';
import { runVerificationHarness } from './harness.js';

// The small size of the adversarial harness (bench/verification.bench.ts runs the full one).
describe('verification under adversarial providers (real coordinator, PostgreSQL, Redis, libp2p)', () => {
  it('pays no wrong result, bans every cheater that cheated within a bounded number of jobs, and penalises no honest provider', async () => {
    const report = await runVerificationHarness({
      honest: 4,
      adversaries: ['wrong', 'noise', 'zeros', 'stale', 'copy', 'copy'],
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
      // Always-wrong cheaters: banned at their first verified result. What they return before the
      // ban lands is that result plus the attempts already running on their 4 slots: at most 5.
      expect(cheater.banned, `${cheater.behaviour} banned`).toBe(true);
      expect(cheater.cheatsUntilBan ?? Infinity).toBeLessThanOrEqual(4 + 1);
    }
    for (const member of report.cheaters.filter((x) => x.behaviour === 'copy' && x.cheats > 0)) {
      expect(member.banned, 'a colluder that cheated is banned').toBe(true);
    }
  }, 180_000);
});
