import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { referenceTimeLimitMs } from './reference-runner.js';

describe('referenceTimeLimitMs', () => {
  it('gives a small job the flat limit and a big one the time its work takes at the floor rate', () => {
    expect(referenceTimeLimitMs(5_000n, 60_000, 100)).toBe(60_000);
    // A 33,031-unit training run (the kill-an-agent e2e job) took over 60 s on a shared CPU.
    expect(referenceTimeLimitMs(33_031n, 60_000, 100)).toBe(330_310);
  });

  it('never goes below the flat limit and grows with the work', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 9n }),
        fc.bigInt({ min: 0n, max: 10n ** 9n }),
        fc.integer({ min: 1, max: 600_000 }),
        fc.integer({ min: 1, max: 100_000 }),
        (a, b, flat, rate) => {
          const [small, big] = a <= b ? [a, b] : [b, a];
          const limit = referenceTimeLimitMs(small, flat, rate);
          expect(limit).toBeGreaterThanOrEqual(flat);
          expect(referenceTimeLimitMs(big, flat, rate)).toBeGreaterThanOrEqual(limit);
          expect(limit).toBeGreaterThanOrEqual((Number(small) / rate) * 1000);
        },
      ),
    );
  });
});
