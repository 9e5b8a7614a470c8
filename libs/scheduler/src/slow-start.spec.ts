import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConcurrencyWindows, SLOW_START_INITIAL_WINDOW } from './slow-start.js';

describe('ConcurrencyWindows (slow start)', () => {
  it('a new provider holds at most the initial window, whatever it advertises', () => {
    const w = new ConcurrencyWindows();
    expect(w.usableSlots('new', 64)).toBe(SLOW_START_INITIAL_WINDOW);
    expect(w.usableSlots('new', 1)).toBe(1);
  });

  it('widens by one per result and halves per loss, never below one', () => {
    const w = new ConcurrencyWindows({ initialWindow: 2, maxWindow: 8 });
    expect([w.recordSuccess('p'), w.recordSuccess('p'), w.recordSuccess('p')]).toEqual([3, 4, 5]);
    expect([w.recordLoss('p'), w.recordLoss('p'), w.recordLoss('p')]).toEqual([2, 1, 1]);
    for (let i = 0; i < 20; i++) w.recordSuccess('p');
    expect(w.window('p')).toBe(8);
    w.forget('p');
    expect(w.window('p')).toBe(2);
  });

  it('keeps only earned windows when a provider leaves', () => {
    const w = new ConcurrencyWindows({ initialWindow: 2 });
    w.recordSuccess('honest');
    w.recordLoss('staller');
    w.release('honest');
    w.release('staller');
    expect(w.window('honest')).toBe(3);
    expect(w.size).toBe(1);
  });

  it('stays within [1, max] under any sequence; a staller never exceeds the initial window', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 32 }),
        fc.array(fc.boolean(), { maxLength: 200 }),
        (initialWindow, extra, outcomes) => {
          const maxWindow = initialWindow + extra;
          const w = new ConcurrencyWindows({ initialWindow, maxWindow });
          let successes = 0;
          for (const ok of outcomes) {
            const next = ok ? w.recordSuccess('p') : w.recordLoss('p');
            if (ok) successes++;
            expect(next).toBeGreaterThanOrEqual(1);
            expect(next).toBeLessThanOrEqual(maxWindow);
            // Never wider than what its results earned.
            expect(next).toBeLessThanOrEqual(initialWindow + successes);
          }
          if (successes === 0) expect(w.window('p')).toBeLessThanOrEqual(initialWindow);
        },
      ),
    );
  });

  it('refuses nonsense options', () => {
    expect(() => new ConcurrencyWindows({ initialWindow: 0 })).toThrow(/initialWindow/);
    expect(() => new ConcurrencyWindows({ initialWindow: 4, maxWindow: 2 })).toThrow(/maxWindow/);
  });
});
