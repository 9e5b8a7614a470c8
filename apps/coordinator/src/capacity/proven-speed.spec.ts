import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  creditAfterProbe,
  nextCredit,
  provenGflops,
  transferAllowanceMs,
  type Credit,
  type CreditRule,
} from './proven-speed.js';

const HOUR = 3_600_000;
const RULE: CreditRule = {
  overheadMs: 100,
  transferBytesPerSecond: 100_000_000,
  minComputeMs: 1_000,
  windowMs: 6 * HOUR,
  refreshShare: 0.8,
  refreshEveryShare: 0.25,
  minRiseShare: 0.05,
};

describe('proven speed of a verified job', () => {
  it('is work over compute time: elapsed minus round trip and result transfer', () => {
    // 4 TFLOP (4e6 MFLOP) answered in 2.26 s with 16 MB of result: 2.26 s - 0.1 s - 0.16 s = 2 s.
    expect(transferAllowanceMs(16_000_000, RULE)).toBeCloseTo(260);
    expect(provenGflops({ workUnits: 4e6, elapsedMs: 2_260, resultBytes: 16_000_000 }, RULE)).toBeCloseTo(
      2_000,
    );
  });

  it('resolves no speed from a job that is mostly network (compute time under the minimum)', () => {
    expect(provenGflops({ workUnits: 2_000, elapsedMs: 1_099, resultBytes: 0 }, RULE)).toBeNull();
    expect(provenGflops({ workUnits: 2_000, elapsedMs: 20, resultBytes: 0 }, RULE)).toBeNull();
    expect(provenGflops({ workUnits: 0, elapsedMs: 5_000, resultBytes: 0 }, RULE)).toBeNull();
    expect(provenGflops({ workUnits: NaN, elapsedMs: 5_000, resultBytes: 0 }, RULE)).toBeNull();
    expect(provenGflops({ workUnits: 10, elapsedMs: Infinity, resultBytes: 0 }, RULE)).toBeNull();
  });

  it('never proves more than the work done in the minimum compute time, and more time proves less speed', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1, max: 1e9, noNaN: true }),
        fc.integer({ min: 0, max: 3_600_000 }),
        fc.integer({ min: 1, max: 600_000 }),
        fc.integer({ min: 0, max: 64_000_000 }),
        (workUnits, elapsedMs, extraMs, resultBytes) => {
          const fast = provenGflops({ workUnits, elapsedMs, resultBytes }, RULE);
          const slow = provenGflops({ workUnits, elapsedMs: elapsedMs + extraMs, resultBytes }, RULE);
          if (fast !== null) {
            expect(fast).toBeLessThanOrEqual(workUnits / RULE.minComputeMs);
            expect(slow).not.toBeNull();
            expect(slow as number).toBeLessThan(fast);
          }
        },
      ),
    );
  });
});

describe('the credited figure', () => {
  const at = 1_000 * HOUR;

  it('starts at the first figure and rises with a clearly higher one', () => {
    expect(nextCredit(null, 50, at, RULE)).toEqual({ gflops: 50, at });
    expect(nextCredit({ gflops: 50, at }, 2_000, at + 1, RULE)).toEqual({ gflops: 2_000, at: at + 1 });
  });

  it('keeps the best figure of the window: a lower one (a capped probe of a fast GPU) changes nothing', () => {
    const best: Credit = { gflops: 2_000, at };
    expect(nextCredit(best, 90, at + HOUR, RULE)).toBeNull();
    expect(creditAfterProbe(best, 90, at + HOUR, RULE)).toEqual(best);
    // Noise just above it is no write either.
    expect(nextCredit(best, 2_050, at + HOUR, RULE)).toBeNull();
  });

  it('refreshes the window on a figure close to it, at most every quarter window', () => {
    const best: Credit = { gflops: 2_000, at };
    expect(nextCredit(best, 1_900, at + HOUR, RULE)).toBeNull(); // refreshed too recently
    expect(nextCredit(best, 1_900, at + 2 * HOUR, RULE)).toEqual({ gflops: 2_000, at: at + 2 * HOUR });
    expect(nextCredit(best, 1_500, at + 2 * HOUR, RULE)).toBeNull(); // not close enough to refresh
  });

  it('lets a provider that got slower fall once the window passed unrefreshed', () => {
    const best: Credit = { gflops: 2_000, at };
    expect(nextCredit(best, 300, at + 6 * HOUR + 1, RULE)).toEqual({ gflops: 300, at: at + 6 * HOUR + 1 });
    expect(creditAfterProbe(best, 90, at + 7 * HOUR, RULE)).toEqual({ gflops: 90, at: at + 7 * HOUR });
  });

  it('ignores figures that are not positive and finite', () => {
    for (const bad of [0, -1, NaN, Infinity])
      expect(nextCredit({ gflops: 5, at }, bad, at + 7 * HOUR, RULE)).toBeNull();
  });

  it('credits only what was shown lately (within the refresh share), and follows a rising figure', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            gflops: fc.double({ min: 0.001, max: 1e6, noNaN: true }),
            gapMs: fc.integer({ min: 0, max: 3 * HOUR }),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        (observations) => {
          let credit: Credit | null = null;
          let t = at;
          const seen: { gflops: number; at: number }[] = [];
          for (const o of observations) {
            t += o.gapMs;
            seen.push({ gflops: o.gflops, at: t });
            credit = nextCredit(credit, o.gflops, t, RULE) ?? credit;
            const c = credit as Credit;
            // The credited figure was shown: a figure at least the refresh share of it came at its
            // stored time (refreshes keep it at most 1 / refreshShare above the latest close figure)...
            const shown = seen.filter((s) => s.at === c.at).map((s) => s.gflops);
            expect(Math.max(...shown)).toBeGreaterThanOrEqual(c.gflops * RULE.refreshShare);
            // ...and it is at least what the latest observation showed, less the rise share.
            expect(c.gflops * (1 + RULE.minRiseShare)).toBeGreaterThanOrEqual(o.gflops);
            expect(c.at).toBeLessThanOrEqual(t);
          }
        },
      ),
    );
  });
});
