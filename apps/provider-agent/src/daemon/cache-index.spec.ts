import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CacheIndex, effectiveCacheBudget } from './cache-index.js';

const key = (n: number): string => n.toString(16).padStart(64, '0');

type Op =
  | { type: 'admit'; key: number; bytes: number }
  | { type: 'touch'; key: number }
  | { type: 'remove'; key: number }
  | { type: 'pin'; key: number }
  | { type: 'unpin'; key: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    type: fc.constant('admit' as const),
    key: fc.integer({ min: 0, max: 9 }),
    bytes: fc.integer({ min: 0, max: 120 }),
  }),
  fc.record({ type: fc.constant('touch' as const), key: fc.integer({ min: 0, max: 9 }) }),
  fc.record({ type: fc.constant('remove' as const), key: fc.integer({ min: 0, max: 9 }) }),
  fc.record({ type: fc.constant('pin' as const), key: fc.integer({ min: 0, max: 9 }) }),
  fc.record({ type: fc.constant('unpin' as const), key: fc.integer({ min: 0, max: 9 }) }),
);

describe('CacheIndex', () => {
  it('evicts least recently used first: a touch saves an entry, the oldest untouched one goes', () => {
    const index = new CacheIndex(300);
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

  it('leaves out an entry larger than the budget, and every entry at budget 0, evicting nothing', () => {
    const index = new CacheIndex(100);
    index.admit(key(1), 60);
    expect(index.admit(key(2), 101)).toEqual({ admitted: false, reason: 'larger-than-budget' });
    expect(index.list()).toEqual([{ sha256: key(1), bytes: 60 }]);
    expect(new CacheIndex(0).admit(key(1), 0)).toEqual({ admitted: false, reason: 'disabled' });
    expect(() => new CacheIndex(-1)).toThrow(RangeError);
  });

  it('matches a plain LRU list that skips pinned entries, and never holds more than its budget (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 400 }), fc.array(opArb, { maxLength: 200 }), (budget, ops) => {
        const index = new CacheIndex(budget);
        // the model: entries oldest first, and pin counts by key
        let model: { sha256: string; bytes: number }[] = [];
        const pins = new Map<string, number>();
        for (const op of ops) {
          const k = key(op.key);
          const held = model.find((e) => e.sha256 === k);
          if (op.type === 'admit') {
            const admission = index.admit(k, op.bytes);
            const pinnedBytes = model.filter((e) => pins.has(e.sha256)).reduce((n, e) => n + e.bytes, 0);
            if (budget === 0 || op.bytes > budget) {
              expect(admission.admitted).toBe(false);
            } else if (held) {
              expect(admission).toEqual({ admitted: true, evicted: [] });
              model = [...model.filter((e) => e !== held), held];
            } else if (pinnedBytes + op.bytes > budget) {
              expect(admission).toEqual({ admitted: false, reason: 'pinned' });
            } else {
              const evicted: { sha256: string; bytes: number }[] = [];
              let total = model.reduce((n, e) => n + e.bytes, 0);
              for (const e of [...model]) {
                if (total + op.bytes <= budget) break;
                if (pins.has(e.sha256)) continue;
                model = model.filter((m) => m !== e);
                evicted.push(e);
                total -= e.bytes;
              }
              model.push({ sha256: k, bytes: op.bytes });
              expect(admission).toEqual({ admitted: true, evicted });
            }
          } else if (op.type === 'touch') {
            expect(index.touch(k)).toBe(held !== undefined);
            if (held) model = [...model.filter((e) => e !== held), held];
          } else if (op.type === 'remove') {
            expect(index.remove(k)).toBe(held !== undefined);
            model = model.filter((e) => e !== held);
          } else if (op.type === 'pin') {
            index.pin(k);
            pins.set(k, (pins.get(k) ?? 0) + 1);
          } else {
            const count = pins.get(k);
            expect(index.unpin(k)).toBe(count !== undefined);
            if (count === 1) pins.delete(k);
            else if (count !== undefined) pins.set(k, count - 1);
          }
          expect(index.list()).toEqual(model);
          expect(index.totalBytes).toBe(model.reduce((n, e) => n + e.bytes, 0));
          expect(index.totalBytes).toBeLessThanOrEqual(budget);
          for (const e of model) expect(index.isPinned(e.sha256)).toBe(pins.has(e.sha256));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('never evicts a pinned entry: the oldest unpinned goes, and nothing when only pinned ones would make room', () => {
    const index = new CacheIndex(300);
    for (const k of [1, 2, 3]) index.admit(key(k), 100);
    index.pin(key(1));
    expect(index.admit(key(4), 100)).toEqual({ admitted: true, evicted: [{ sha256: key(2), bytes: 100 }] });
    index.pin(key(3));
    index.pin(key(4));
    expect(index.admit(key(5), 100)).toEqual({ admitted: false, reason: 'pinned' });
    expect(index.list().map((e) => e.sha256)).toEqual([key(1), key(3), key(4)]);
    // a pin outlives the entry being dropped and taken in again
    expect(index.unpin(key(4))).toBe(true);
    expect(index.unpin(key(4))).toBe(false);
    index.remove(key(1));
    index.admit(key(1), 100);
    expect(index.isPinned(key(1))).toBe(true);
    expect(index.admit(key(6), 100)).toEqual({ admitted: true, evicted: [{ sha256: key(4), bytes: 100 }] });
  });

  it('runs with what it holds plus half the free disk when that is below the configured budget', () => {
    expect(effectiveCacheBudget(1000, 0, 10_000)).toBe(1000);
    expect(effectiveCacheBudget(1000, 200, 600)).toBe(500);
    expect(effectiveCacheBudget(0, 200, 600)).toBe(0);
  });
});
