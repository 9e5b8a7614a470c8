import { describe, expect, it } from 'vitest';
import { costOf } from './cost.js';

describe('job cost', () => {
  it('prices k runs and shows the canary share (funded from the fee, not added)', () => {
    const c = costOf(10n, 7n, { mode: 'redundant', k: 3, canaryRate: 0.1 });
    expect(c).toEqual({ work: 70n, redundancy: 140n, canary: 21n, check: 0n, total: 210n });
    expect(costOf(1n, 1n, { mode: 'none', k: 1, canaryRate: 0.05 }).canary).toBe(1n); // rounded up
  });

  it('reserves one check run for a single-copy job that requires verified (none for redundant ones)', () => {
    expect(costOf(10n, 7n, { mode: 'none', k: 1, canaryRate: 0, verified: true })).toMatchObject({
      work: 70n,
      check: 70n,
      total: 140n,
    });
    expect(costOf(10n, 7n, { mode: 'redundant', k: 2, canaryRate: 0, verified: true }).total).toBe(140n);
  });
});
