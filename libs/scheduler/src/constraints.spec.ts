import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NOW, job, jobArb, provider, providerArb } from '../test/arbitraries.js';
import { isEligible, makeJobContext, reasonsOf, requiredGflops, violations } from './constraints.js';
import { ProviderEntry } from './index/provider-entry.js';
import { DEFAULT_CONFIG } from './scoring.js';
import type { ProviderSnapshot } from './types.js';

function entry(p: ProviderSnapshot): ProviderEntry {
  const e = new ProviderEntry(p.peerId);
  e.assign(p, DEFAULT_CONFIG);
  return e;
}

describe('constraints', () => {
  it('required speed: work units per millisecond', () => {
    expect(requiredGflops(1000n, NOW + 10, NOW)).toBe(100);
    expect(requiredGflops(1000n, NOW, NOW)).toBe(Number.POSITIVE_INFINITY);
  });

  it('names each reason', () => {
    const ctx = makeJobContext(
      job('j', {
        maxPricePerUnit: 5n,
        requirements: { backends: ['cpu'], gpuModels: ['T4'], minVramMiB: 80_000 },
        excludePeers: ['p1'],
      }),
      NOW,
      DEFAULT_CONFIG,
    );
    const e = entry(
      provider(1, { banned: true, draining: true, expiresAt: NOW, gflops: 0, slots: 0, freeSlots: 0 }),
    );
    expect(reasonsOf(violations(e, ctx))).toEqual([
      'banned',
      'draining',
      'expired',
      'backend',
      'gpu-model',
      'vram',
      'price',
      'speed',
      'capacity',
      'excluded',
    ]);
  });

  it('VRAM and model must be satisfied by the same GPU; models are case-insensitive', () => {
    const e = entry(
      provider(1, {
        gpus: [
          { model: 'T4', vramMiB: 16384 },
          { model: 'A100', vramMiB: 81920 },
        ],
      }),
    );
    const ctx = (gpuModels: string[], minVramMiB: number) =>
      makeJobContext(job('j', { requirements: { gpuModels, minVramMiB } }), NOW, DEFAULT_CONFIG);
    expect(isEligible(e, ctx(['t4'], 16384))).toBe(true);
    expect(isEligible(e, ctx(['T4'], 40000))).toBe(false);
    expect(reasonsOf(violations(e, ctx(['T4'], 40000)))).toEqual(['vram']);
    expect(isEligible(e, ctx(['a100'], 40000))).toBe(true);
  });

  it('rejects invalid redundancy', () => {
    expect(() => makeJobContext(job('j', { redundancy: 4 }), NOW, DEFAULT_CONFIG)).toThrow(RangeError);
    expect(() => makeJobContext(job('j', { redundancy: 0 }), NOW, DEFAULT_CONFIG)).toThrow(RangeError);
  });

  it('property: isEligible is exactly "no violation"', () => {
    fc.assert(
      fc.property(providerArb(1), jobArb('j'), (p, j) => {
        const e = entry(p);
        const ctx = makeJobContext(j, NOW, DEFAULT_CONFIG);
        expect(isEligible(e, ctx)).toBe(violations(e, ctx) === 0);
      }),
      { numRuns: 500 },
    );
  });
});
