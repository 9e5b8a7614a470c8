import { describe, expect, it } from 'vitest';
import { latencyScore, loadScore, priceScore, resolveConfig, speedScore, staticScore } from './scoring.js';

describe('scoring', () => {
  it('components are 0..1 and monotonic', () => {
    expect(priceScore(0n, 100n)).toBe(1);
    expect(priceScore(100n, 100n)).toBe(0.5);
    expect(priceScore(1000n, 100n)).toBeLessThan(priceScore(200n, 100n));
    expect(speedScore(0, 1000)).toBe(0);
    expect(speedScore(1000, 1000)).toBe(0.5);
    expect(latencyScore(undefined, 50)).toBe(0.5);
    expect(latencyScore(10, 50)).toBeGreaterThan(latencyScore(100, 50));
    expect(loadScore(1, 4)).toBe(0.25);
    expect(loadScore(0, 0)).toBe(0);
  });

  it('defaults sum to 1 and are overridable one by one', () => {
    const c = resolveConfig({ weights: { price: 2 } });
    expect(c.weights.price).toBe(2);
    expect(c.weights.reputation).toBe(0.25);
    const d = resolveConfig();
    const sum = Object.values(d.weights).reduce((a, b) => a + b, 0);
    expect(sum).toBeCloseTo(1);
    expect(d.explorationShare).toBe(0.05);
  });

  it('rejects nonsense', () => {
    expect(() => resolveConfig({ weights: { price: -1 } })).toThrow(RangeError);
    expect(() => resolveConfig({ explorationShare: 2 })).toThrow(RangeError);
    expect(() => resolveConfig({ referencePricePerUnit: 0n })).toThrow(RangeError);
  });

  it('a cheaper, more reputable, faster provider scores higher', () => {
    const c = resolveConfig();
    const base = { pricePerUnit: 50n, reputation: 0.5, gflops: 1000, latencyMs: 50 };
    expect(staticScore({ ...base, pricePerUnit: 10n }, c)).toBeGreaterThan(staticScore(base, c));
    expect(staticScore({ ...base, reputation: 0.9 }, c)).toBeGreaterThan(staticScore(base, c));
    expect(staticScore({ ...base, gflops: 5000 }, c)).toBeGreaterThan(staticScore(base, c));
  });
});
