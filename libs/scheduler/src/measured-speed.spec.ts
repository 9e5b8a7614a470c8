import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NOW, job, provider } from '../test/arbitraries.js';
import { Scheduler } from './scheduler.js';
import { effectiveGflops, resolveConfig, staticScore } from './scoring.js';

const PROBATION = 100;

describe('measured speed', () => {
  it('credits min(advert, measured), or min(advert, probation) until measured', () => {
    expect(effectiveGflops({ gflops: 400_000 }, PROBATION)).toBe(PROBATION);
    expect(effectiveGflops({ gflops: 40 }, PROBATION)).toBe(40);
    expect(effectiveGflops({ gflops: 400_000, measuredGflops: 2.5 }, PROBATION)).toBe(2.5);
    expect(effectiveGflops({ gflops: 40, measuredGflops: 5_000 }, PROBATION)).toBe(40);
    expect(effectiveGflops({ gflops: 1e300, measuredGflops: 3 }, PROBATION)).toBe(3);
    for (const bad of [Number.NaN, Infinity, -1, 0]) {
      expect(effectiveGflops({ gflops: bad }, PROBATION)).toBe(0);
      expect(effectiveGflops({ gflops: 10, measuredGflops: bad }, PROBATION)).toBe(0);
    }
    expect(effectiveGflops({ gflops: 400_000 }, Infinity)).toBe(400_000);
    expect(() => resolveConfig({ probationGflops: 0 })).toThrow(RangeError);
  });

  it('never credits more than the advert, the measurement or (unmeasured) the probation figure (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1e-3, max: 1e7, noNaN: true }),
        fc.option(fc.double({ min: 1e-3, max: 1e7, noNaN: true }), { nil: undefined }),
        fc.double({ min: 1, max: 1e5, noNaN: true }),
        (gflops, measuredGflops, probation) => {
          const e = effectiveGflops({ gflops, measuredGflops }, probation);
          expect(e).toBeLessThanOrEqual(gflops);
          expect(e).toBeLessThanOrEqual(measuredGflops ?? probation);
          expect(e).toBe(Math.min(gflops, measuredGflops ?? probation));
        },
      ),
    );
  });

  it('scores speed by the effective figure: a lie above the measurement earns nothing', () => {
    const c = resolveConfig({ probationGflops: PROBATION });
    const base = { pricePerUnit: 10n, reputation: 0.5, latencyMs: 20 };
    const truth = staticScore({ ...base, gflops: 3 }, c);
    expect(staticScore({ ...base, gflops: 400_000, measuredGflops: 3 }, c)).toBe(truth);
    expect(staticScore({ ...base, gflops: 400_000 }, c)).toBe(staticScore({ ...base, gflops: PROBATION }, c));
  });

  it('a measured liar ranks below an honest faster provider; unmeasured, it is credited the probation figure', () => {
    const s = new Scheduler({ explorationShare: 0, probationGflops: PROBATION });
    const same = { pricePerUnit: 10n, reputation: 0.5, completedJobs: 100 };
    s.upsertProvider(
      provider(1, { ...same, gflops: 400_000, gpus: [{ model: 'H100', vramMiB: 81_920 }] }),
      NOW,
    );
    s.upsertProvider(provider(2, { ...same, gflops: 50, measuredGflops: 60 }), NOW);
    // Unmeasured, the liar is credited 100 GFLOP/s, not 400,000: too slow for a job needing 1,000.
    const fast = s.select(job('fast', { workUnits: 1_000_000n, deadlineAt: NOW + 1_000 }), NOW);
    expect(fast.placements).toEqual([]);
    // Measured at 2 GFLOP/s, it ranks below the honest 50 GFLOP/s provider.
    s.upsertProvider(
      provider(1, {
        ...same,
        gflops: 400_000,
        measuredGflops: 2,
        gpus: [{ model: 'H100', vramMiB: 81_920 }],
      }),
      NOW,
    );
    const r = s.select(job('j', { redundancy: 2 }), NOW);
    expect(r.placements.map((p) => p.peerId)).toEqual(['p2', 'p1']);
    // And it cannot take a job that needs more than it showed.
    const needs10 = s.select(job('j10', { workUnits: 10_000n, deadlineAt: NOW + 1_000 }), NOW);
    expect(needs10.placements.map((p) => p.peerId)).toEqual(['p2']);
  });

  it('deadline feasibility uses the effective figure (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.option(fc.integer({ min: 1, max: 1_000_000 }), { nil: undefined }),
        fc.integer({ min: 1, max: 2_000 }),
        (gflops, measuredGflops, required) => {
          const s = new Scheduler({ explorationShare: 0, probationGflops: PROBATION });
          s.upsertProvider(provider(1, { gflops, measuredGflops }), NOW);
          // `required` GFLOP/s for 1,000 ms = required × 1,000 work units.
          const r = s.select(job('j', { workUnits: BigInt(required * 1_000), deadlineAt: NOW + 1_000 }), NOW);
          const credited = Math.min(gflops, measuredGflops ?? PROBATION);
          expect(r.placements.length === 1).toBe(credited >= required);
        },
      ),
      { numRuns: 200 },
    );
  });
});
