import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NOW, job, jobArb, provider, providerArb, providersArb } from '../test/arbitraries.js';
import { isEligible, makeJobContext, reasonsOf, violations } from './constraints.js';
import { ProviderEntry } from './index/provider-entry.js';
import { resolveConfig } from './scoring.js';
import { Scheduler } from './scheduler.js';
import { requiredStake } from './stake.js';
import type { ProviderSnapshot, SchedulerConfig } from './types.js';

const GATED = { explorationShare: 0, requireStake: true, minStake: 1_000n, stakePerValue: 1 };

function entry(p: ProviderSnapshot, config: SchedulerConfig): ProviderEntry {
  const e = new ProviderEntry(p.peerId);
  e.assign(p, config);
  return e;
}

/** The bound, written out independently of the engine's scaled arithmetic. */
function covers(stake: bigint, frozen: bigint, inFlight: bigint, value: bigint, c: SchedulerConfig): boolean {
  const ratioMicro = BigInt(Math.round(c.stakePerValue * 1e6));
  const scaled = (inFlight + value) * ratioMicro;
  const ceil = scaled / 1_000_000n + (scaled % 1_000_000n === 0n ? 0n : 1n);
  return stake - frozen >= c.minStake + ceil;
}

const stakeConfigArb = fc.record({
  minStake: fc.bigInt({ min: 0n, max: 10n ** 12n }),
  stakePerValue: fc.oneof(fc.constant(1), fc.constant(0), fc.double({ min: 0, max: 3, noNaN: true })),
});

describe('stake gating', () => {
  it('needs the minimum plus the value in flight, this job included', () => {
    const s = new Scheduler(GATED);
    // 1,000 work units at 10 per unit: the job is worth 10,000; the minimum is 1,000.
    s.upsertProvider(provider(1, { stake: 10_999n, inFlightValue: 0n }), NOW);
    s.upsertProvider(provider(2, { stake: 11_000n, inFlightValue: 0n, pricePerUnit: 10n }), NOW);
    s.upsertProvider(provider(3, { stake: 1_000_000n, inFlightValue: 990_000n }), NOW);
    s.upsertProvider(provider(4, { stake: 1_000_000n, frozenStake: 990_000n }), NOW);
    const j = job('j', { workUnits: 1_000n });
    expect(s.select(j, NOW).placements.map((p) => p.peerId)).toEqual(['p2']);
    const why = s.explain(job('k', { workUnits: 1_000n, excludePeers: ['p2'] }), NOW);
    expect(why.placeable).toBe(false);
    expect(why.excluded.stake).toBe(3);
    expect(why.cheapest).toMatchObject({ kind: 'add-stake', additionalStake: 1n, peerIds: ['p1'] });
    expect(why.message).toContain('provider p1 must stake at least 1 more base units');
  });

  it('counts reservations of the same pass: a second job does not fit where the first used the stake', () => {
    const s = new Scheduler(GATED);
    s.upsertProvider(provider(1, { stake: 16_000n, slots: 4, freeSlots: 4 }), NOW);
    s.upsertProvider(provider(2, { stake: 16_000n, slots: 4, freeSlots: 4, pricePerUnit: 50n }), NOW);
    // Each job is worth 10,000 on p1: the first fits (1,000 + 10,000), a second would need 21,000.
    const first = s.place(job('a', { workUnits: 1_000n }), NOW);
    expect(first.placements.map((p) => p.peerId)).toEqual(['p1']);
    expect(s.usage('p1')?.inFlightValue).toBe(10_000n);
    const second = s.place(job('b', { workUnits: 100n }), NOW);
    // 100 units: p1 would need 1,000 + 11,000 = 12,000 (fits); then 1,000 more units do not.
    expect(second.placements.map((p) => p.peerId)).toEqual(['p1']);
    const third = s.place(job('c', { workUnits: 1_000n }), NOW);
    expect(third.placements.map((p) => p.peerId)).toEqual([]);
    expect(s.explain(job('c', { workUnits: 1_000n }), NOW).excluded.stake).toBe(2);
    // The value falls when attempts finish (complete, fail, lapse or cancel).
    s.confirm('a', 'p1', NOW);
    s.complete('a', 'p1');
    expect(s.usage('p1')?.inFlightValue).toBe(1_000n);
    expect(s.place(job('c', { workUnits: 1_000n }), NOW).placements.map((p) => p.peerId)).toEqual(['p1']);
    s.cancel('b');
    s.cancel('c');
    expect(s.usage('p1')?.inFlightValue).toBe(0n);
  });

  it('is off unless required: zero-stake providers are placed as before', () => {
    const s = new Scheduler({ explorationShare: 0 });
    s.upsertProvider(provider(1, { stake: 0n }), NOW);
    expect(s.select(job('j'), NOW).ok).toBe(true);
    expect(s.explain(job('j'), NOW).excluded.stake).toBe(0);
    // In-flight value is still reported (summed when asked instead of kept at every decision).
    expect(s.place(job('p', { workUnits: 7n }), NOW).ok).toBe(true);
    expect(s.usage('p1')?.inFlightValue).toBe(70n);
    s.cancel('p');
    expect(s.usage('p1')?.inFlightValue).toBe(0n);
  });

  it('rejects a negative minimum or a bad ratio', () => {
    expect(() => resolveConfig({ minStake: -1n })).toThrow(RangeError);
    expect(() => resolveConfig({ stakePerValue: Number.NaN })).toThrow(RangeError);
    expect(() => resolveConfig({ stakePerValue: -0.5 })).toThrow(RangeError);
  });

  it('property: isEligible agrees with violations, and the stake reason is exactly the bound', () => {
    fc.assert(
      fc.property(providerArb(1), jobArb('j'), stakeConfigArb, fc.boolean(), (p, j, sc, on) => {
        const config = resolveConfig({ ...sc, requireStake: on });
        const e = entry(p, config);
        const ctx = makeJobContext(j, NOW, config);
        const mask = violations(e, ctx);
        expect(isEligible(e, ctx)).toBe(mask === 0);
        const short = !covers(
          p.stake,
          p.frozenStake ?? 0n,
          p.inFlightValue,
          j.workUnits * p.pricePerUnit,
          config,
        );
        expect(reasonsOf(mask).includes('stake')).toBe(on && short);
        // requiredStake is the least usable stake that covers the job.
        const value = j.workUnits * p.pricePerUnit;
        const need = requiredStake(p.inFlightValue, value, config);
        expect(covers(need, 0n, p.inFlightValue, value, config)).toBe(true);
        expect(covers(need - 1n, 0n, p.inFlightValue, value, config)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('property: exact at the boundary (the fast comparison defers to bigint there)', () => {
    fc.assert(
      fc.property(
        providerArb(1),
        jobArb('j'),
        stakeConfigArb,
        fc.integer({ min: -2, max: 2 }),
        (p, j, sc, delta) => {
          const config = resolveConfig({ ...sc, requireStake: true });
          const value = j.workUnits * p.pricePerUnit;
          const frozen = p.frozenStake ?? 0n;
          const stake = requiredStake(p.inFlightValue, value, config) + frozen + BigInt(delta);
          const e = entry({ ...p, stake }, config);
          const ctx = makeJobContext(j, NOW, config);
          const short = (violations(e, ctx) & 1024) !== 0;
          expect(short).toBe(delta < 0);
          expect(isEligible(e, ctx)).toBe(violations(e, ctx) === 0);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('property: never places on a provider below the bound, counting every placement of the pass', () => {
    fc.assert(
      fc.property(
        providersArb(1, 30),
        fc.array(jobArb('x'), { minLength: 1, maxLength: 15 }),
        stakeConfigArb,
        fc.integer({ min: 0, max: 1000 }),
        (providers, jobs, sc, seed) => {
          const s = new Scheduler({ ...sc, requireStake: true, explorationShare: 0.3, seed });
          for (const p of providers) s.upsertProvider(p, NOW);
          s.tick(NOW);
          const byPeer = new Map(providers.map((p) => [p.peerId, p]));
          // In flight as the test counts it: the snapshot's value plus every placement so far.
          const inFlight = new Map(providers.map((p) => [p.peerId, p.inFlightValue]));
          jobs.forEach((j, i) => {
            const jj = { ...j, jobId: `j${i}` };
            const naive = s.selectNaive(jj, NOW);
            const exact = s.select(jj, NOW, { explore: false });
            expect(exact.placements.map((p) => p.peerId)).toEqual(naive.placements.map((p) => p.peerId));
            const r = s.place(jj, NOW);
            // Nothing is reserved unless all k are: only a complete placement puts value in flight.
            for (const placed of r.ok ? r.placements : []) {
              const p = byPeer.get(placed.peerId) as ProviderSnapshot;
              const value = jj.workUnits * p.pricePerUnit;
              const before = inFlight.get(p.peerId) ?? 0n;
              expect(covers(p.stake, p.frozenStake ?? 0n, before, value, s.config)).toBe(true);
              inFlight.set(p.peerId, before + value);
            }
          });
          for (const p of providers) {
            const usage = s.usage(p.peerId); // undefined once tick() dropped an expired advert
            if (usage !== undefined) expect(usage.inFlightValue).toBe(inFlight.get(p.peerId));
          }
          expect(s.index.verify()).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('property: every add-stake suggestion makes the job placeable', () => {
    fc.assert(
      fc.property(providersArb(0, 20), jobArb('j'), stakeConfigArb, (providers, j, sc) => {
        const options = { ...sc, requireStake: true, explorationShare: 0 };
        const s = new Scheduler(options);
        for (const p of providers) s.upsertProvider(p, NOW);
        const why = s.explain(j, NOW);
        expect(why.placeable).toBe(s.select(j, NOW, { explore: false }).ok);
        for (const sug of why.suggestions) {
          if (sug.kind !== 'add-stake') continue;
          const t = new Scheduler(options);
          for (const p of providers) {
            const more = sug.peerIds.includes(p.peerId) ? sug.additionalStake : 0n;
            t.upsertProvider({ ...p, stake: p.stake + more }, NOW);
          }
          expect(t.select(j, NOW, { explore: false }).ok).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
