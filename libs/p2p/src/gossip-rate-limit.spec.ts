import { describe, expect, it } from 'vitest';

import { KeyedTokenBuckets, OffenceMeter } from './gossip-rate-limit.js';

describe('KeyedTokenBuckets', () => {
  it('allows a burst, then the rate, per key', () => {
    const buckets = new KeyedTokenBuckets({ ratePerSecond: 2, burst: 3 });
    const t = 1_000_000;
    expect([1, 2, 3, 4].map(() => buckets.take('a', t))).toEqual([true, true, true, false]);
    expect(buckets.take('b', t)).toBe(true); // keys are independent
    expect(buckets.take('a', t + 499)).toBe(false);
    expect(buckets.take('a', t + 500)).toBe(true); // one token per 500 ms
    expect(buckets.take('a', t + 500)).toBe(false);
    // a long quiet spell refills to the burst, no more
    expect([1, 2, 3, 4].map(() => buckets.take('a', t + 60_000))).toEqual([true, true, true, false]);
  });

  it('forgets the least recently used key beyond its bound', () => {
    const buckets = new KeyedTokenBuckets({ ratePerSecond: 1, burst: 1, maxKeys: 2 });
    buckets.take('a', 0);
    buckets.take('b', 0);
    buckets.take('c', 0);
    expect(buckets.size).toBe(2);
    expect(buckets.take('a', 0)).toBe(true); // forgotten, so a full bucket again
  });

  it('refuses a rate of 0 or a burst below 1', () => {
    expect(() => new KeyedTokenBuckets({ ratePerSecond: 0, burst: 1 })).toThrow(/positive rate/);
    expect(() => new KeyedTokenBuckets({ ratePerSecond: 1, burst: 0 })).toThrow(/positive rate/);
  });
});

describe('OffenceMeter', () => {
  it('forgives a burst of offences and penalises each one beyond it', () => {
    const meter = new OffenceMeter({ burst: 3, ratePerSecond: 1 });
    const due = Array.from({ length: 6 }, () => meter.offend('p', 0));
    expect(due).toEqual([false, false, false, true, true, true]);
    expect(meter.offend('p', 1_000)).toBe(false); // one forgiven per second again
    expect(meter.offend('q', 1_000)).toBe(false);
  });
});
