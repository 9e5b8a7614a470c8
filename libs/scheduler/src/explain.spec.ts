import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NOW, job, jobArb, provider, providersArb } from '../test/arbitraries.js';
import { Scheduler } from './scheduler.js';
import type { Suggestion } from './explain.js';

function withProviders(...ps: ReturnType<typeof provider>[]): Scheduler {
  const s = new Scheduler({ explorationShare: 0 });
  for (const p of ps) s.upsertProvider(p, NOW);
  return s;
}

function find<K extends Suggestion['kind']>(
  list: Suggestion[],
  kind: K,
): Extract<Suggestion, { kind: K }> | undefined {
  return list.find((x): x is Extract<Suggestion, { kind: K }> => x.kind === kind);
}

describe('explain', () => {
  it('counts every failing reason of every provider, not just the first', () => {
    const s = withProviders(
      provider(1, { banned: true, pricePerUnit: 500n, gflops: 1 }),
      provider(2, { pricePerUnit: 500n }),
      provider(3, { backend: 'cpu', gpus: [] }),
    );
    const e = s.explain(
      job('j', { maxPricePerUnit: 100n, requirements: { minVramMiB: 16384, backends: ['tensorflow-gpu'] } }),
      NOW,
    );
    expect(e.placeable).toBe(false);
    expect(e.excluded).toMatchObject({ banned: 1, price: 2, speed: 1, backend: 1, vram: 1 });
    expect(e.excludedOnlyBy).toMatchObject({ price: 1, banned: 0 });
    expect(e.cheapest).toMatchObject({ kind: 'raise-max-price', maxPricePerUnit: 500n });
    expect(e.message).toContain('raise maxPricePerUnit from 100 to 500');
  });

  it('suggests the smallest VRAM floor, the shortest deadline extension and fewer replicas', () => {
    const s = withProviders(
      provider(1, { gpus: [{ model: 'T4', vramMiB: 16384 }], gflops: 1000 }),
      provider(2, { gpus: [{ model: 'L4', vramMiB: 24576 }], gflops: 500 }),
    );
    const vram = s.explain(job('j', { requirements: { minVramMiB: 40960 } }), NOW);
    expect(find(vram.suggestions, 'lower-min-vram')?.minVramMiB).toBe(24576);
    const two = s.explain(job('j', { redundancy: 2, requirements: { minVramMiB: 40960 } }), NOW);
    expect(find(two.suggestions, 'lower-min-vram')?.minVramMiB).toBe(16384);
    // 10,000,000 work units need 10 s at 1000 GFLOP/s; the deadline is 5 s away.
    const slow = s.explain(job('j', { workUnits: 10_000_000n, deadlineAt: NOW + 5000 }), NOW);
    expect(find(slow.suggestions, 'extend-deadline')?.extendBySeconds).toBe(5);
    const k = s.explain(job('j', { redundancy: 3, workUnits: 6_000_000n, deadlineAt: NOW + 10_000 }), NOW);
    expect(k.eligibleOperators).toBe(1);
    expect(find(k.suggestions, 'reduce-redundancy')?.redundancy).toBe(1);
  });

  it('suggests allowing a backend or a GPU model, and waiting when only capacity is short', () => {
    const s = withProviders(
      provider(1, { backend: 'tensorflow', gpus: [{ model: 'A100', vramMiB: 40960 }] }),
    );
    const b = s.explain(job('j', { requirements: { backends: ['tensorflow-gpu'], gpuModels: ['T4'] } }), NOW);
    expect(b.excluded).toMatchObject({ backend: 1, 'gpu-model': 1 });
    expect(b.suggestions).toEqual([]);
    expect(b.message).toContain('no single change');
    const m = s.explain(job('j', { requirements: { gpuModels: ['T4'] } }), NOW);
    expect(find(m.suggestions, 'allow-gpu-model')?.gpuModel).toBe('a100');
    const be = s.explain(job('j', { requirements: { backends: ['cpu'] } }), NOW);
    expect(find(be.suggestions, 'allow-backend')?.backend).toBe('tensorflow');
    const full = withProviders(provider(1, { slots: 1, freeSlots: 0 }));
    const w = full.explain(job('j'), NOW);
    expect(w.cheapest).toMatchObject({ kind: 'wait-for-capacity', providersBusy: 1 });
  });

  it('reports a passed deadline and placeable jobs', () => {
    const s = withProviders(provider(1));
    expect(s.explain(job('j', { deadlineAt: NOW - 1 }), NOW).deadlinePassed).toBe(true);
    const ok = s.explain(job('j'), NOW);
    expect(ok).toMatchObject({ placeable: true, eligible: 1, eligibleOperators: 1, suggestions: [] });
    // A job of no work whose deadline passed: the suggested deadline lies after now, so it places
    // (it used to be now itself, which places nothing; found by the property below, seed 69352052).
    const empty = job('j', { workUnits: 0n, deadlineAt: NOW - 1_000 });
    const extend = find(s.explain(empty, NOW).suggestions, 'extend-deadline');
    expect(extend?.deadlineAt).toBeGreaterThan(NOW);
    expect(s.select({ ...empty, deadlineAt: extend!.deadlineAt }, NOW, { explore: false }).ok).toBe(true);
  });

  it('property: agrees with placement, and every suggestion makes the job placeable', () => {
    fc.assert(
      fc.property(providersArb(0, 30), jobArb('j'), (providers, j) => {
        const s = new Scheduler({ explorationShare: 0 });
        for (const p of providers) s.upsertProvider(p, NOW);
        const e = s.explain(j, NOW);
        expect(e.placeable).toBe(s.select(j, NOW, { explore: false }).ok);
        expect(e.providers).toBe(providers.length);
        for (const sug of e.suggestions) {
          const changed = structuredClone(j);
          switch (sug.kind) {
            case 'raise-max-price':
              changed.maxPricePerUnit = sug.maxPricePerUnit;
              break;
            case 'lower-min-vram':
              changed.requirements.minVramMiB = sug.minVramMiB;
              break;
            case 'extend-deadline':
              changed.deadlineAt = sug.deadlineAt;
              break;
            case 'reduce-redundancy':
              changed.redundancy = sug.redundancy;
              break;
            case 'allow-backend':
              changed.requirements.backends = [...(changed.requirements.backends ?? []), sug.backend];
              break;
            case 'allow-gpu-model':
              changed.requirements.gpuModels = [...(changed.requirements.gpuModels ?? []), sug.gpuModel];
              break;
            case 'wait-for-capacity':
              continue;
          }
          expect(s.select(changed, NOW, { explore: false }).ok).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });
});
