import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TensorCacheIndex, effectiveTensorCacheBudget } from './tensor-cache-index.js';

const key = (n: number): string => n.toString(16).padStart(64, '0');

type Op =
  | { type: 'admit'; key: number; bytes: number }
  | { type: 'touch'; key: number }
  | { type: 'remove'; key: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    type: fc.constant('admit' as const),
    key: fc.integer({ min: 0, max: 9 }),
    bytes: fc.integer({ min: 0, max: 120 }),
  }),
  fc.record({ type: fc.constant('touch' as const), key: fc.integer({ min: 0, max: 9 }) }),
  fc.record({ type: fc.constant('remove' as const), key: fc.integer({ min: 0, max: 9 }) }),
);

describe('TensorCacheIndex', () => {
  it('evicts least recently used first: a touch saves an entry, the oldest untouched one goes', () => {
    const index = new TensorCacheIndex(300);
    for (const k of [1, 2, 3]) expect(index.admit(key(k), 100)).toEqual({ admitted: true, evicted: [] });
    expect(index.touch(key(1))).toBe(true);
    expect(index.admit(key(4), 150)).toEqual({
      admitted: true,
      evicted: [
        { sha256: key(2), bytes: 100 },
        { sha256: key(3), bytes: 100 },
      ],
    });
    expect(index.list().map((e) => e.sha256)).toEqual([key(1), key(4)]);
    expect(index.totalBytes).toBe(250);
  });

  it('leaves out a tensor larger than the budget, and every tensor at budget 0, evicting nothing', () => {
    const index = new TensorCacheIndex(100);
    index.admit(key(1), 60);
    expect(index.admit(key(2), 101)).toEqual({ admitted: false, reason: 'larger-than-budget' });
    expect(index.list()).toEqual([{ sha256: key(1), bytes: 60 }]);
    expect(new TensorCacheIndex(0).admit(key(1), 0)).toEqual({ admitted: false, reason: 'disabled' });
    expect(() => new TensorCacheIndex(-1)).toThrow(RangeError);
  });

  it('matches a plain LRU list and never holds more than its budget (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 400 }), fc.array(opArb, { maxLength: 200 }), (budget, ops) => {
        const index = new TensorCacheIndex(budget);
        // the model: entries oldest first
        let model: { sha256: string; bytes: number }[] = [];
        for (const op of ops) {
          const k = key(op.key);
          const held = model.find((e) => e.sha256 === k);
          if (op.type === 'admit') {
            const admission = index.admit(k, op.bytes);
            if (budget === 0 || op.bytes > budget) {
              expect(admission.admitted).toBe(false);
            } else if (held) {
              expect(admission).toEqual({ admitted: true, evicted: [] });
              model = [...model.filter((e) => e !== held), held];
            } else {
              const evicted: { sha256: string; bytes: number }[] = [];
              let total = model.reduce((n, e) => n + e.bytes, 0);
              while (total + op.bytes > budget) {
                const oldest = model.shift() as { sha256: string; bytes: number };
                evicted.push(oldest);
                total -= oldest.bytes;
              }
              model.push({ sha256: k, bytes: op.bytes });
              expect(admission).toEqual({ admitted: true, evicted });
            }
          } else if (op.type === 'touch') {
            expect(index.touch(k)).toBe(held !== undefined);
            if (held) model = [...model.filter((e) => e !== held), held];
          } else {
            expect(index.remove(k)).toBe(held !== undefined);
            model = model.filter((e) => e !== held);
          }
          expect(index.list()).toEqual(model);
          expect(index.totalBytes).toBe(model.reduce((n, e) => n + e.bytes, 0));
          expect(index.totalBytes).toBeLessThanOrEqual(budget);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('runs with what it holds plus half the free disk when that is below the configured budget', () => {
    expect(effectiveTensorCacheBudget(1000, 0, 10_000)).toBe(1000);
    expect(effectiveTensorCacheBudget(1000, 200, 600)).toBe(500);
    expect(effectiveTensorCacheBudget(0, 200, 600)).toBe(0);
  });
});
