import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NOW, provider, providerArb } from '../../test/arbitraries.js';
import { resolveConfig } from '../scoring.js';
import { ProviderIndex, vramTier } from './provider-index.js';

describe('ProviderIndex', () => {
  it('adds, updates, moves between buckets, removes and expires', () => {
    const idx = new ProviderIndex(resolveConfig());
    idx.upsert(provider(1), NOW);
    idx.upsert(provider(2, { backend: 'cpu', gpus: [], expiresAt: NOW + 10 }), NOW);
    expect(idx.size).toBe(2);
    expect(
      idx
        .get('p1')
        ?.lists.map((l) => l.name)
        .sort(),
    ).toEqual(['region:eu|tensorflow-gpu', `tensorflow-gpu|rtx 4090|${vramTier(24576)}`]);
    idx.upsert(provider(1, { region: 'us', gpus: [{ model: 'T4', vramMiB: 16384 }] }), NOW);
    expect(
      idx
        .get('p1')
        ?.lists.map((l) => l.name)
        .sort(),
    ).toEqual(['region:us|tensorflow-gpu', `tensorflow-gpu|t4|${vramTier(16384)}`]);
    idx.upsert(provider(1, { banned: true }), NOW);
    expect(idx.get('p1')?.lists).toEqual([]);
    expect(idx.stats().listed).toBe(1);
    expect(idx.expire(NOW + 10)).toEqual(['p2']);
    expect(idx.remove('p1')).toBe(true);
    expect(idx.remove('p1')).toBe(false);
    expect(idx.size).toBe(0);
    expect(idx.verify()).toEqual([]);
  });

  it('an advert that extends the expiry keeps the provider', () => {
    const idx = new ProviderIndex(resolveConfig());
    idx.upsert(provider(1, { expiresAt: NOW + 10 }), NOW);
    idx.upsert(provider(1, { expiresAt: NOW + 1000 }), NOW + 5);
    expect(idx.expire(NOW + 10)).toEqual([]);
    expect(idx.expire(NOW + 1000)).toEqual(['p1']);
  });

  it('property: stays consistent under any sequence of adverts, usage changes, removals and expiry', () => {
    type Op =
      | { t: 'upsert'; p: ReturnType<typeof provider> }
      | { t: 'usage'; peer: number; held: number; busy: number }
      | { t: 'settle'; peer: number }
      | { t: 'remove'; peer: number }
      | { t: 'expire'; dt: number };
    const ops: fc.Arbitrary<Op> = fc.oneof(
      fc.integer({ min: 0, max: 15 }).chain((i) => providerArb(i).map((p) => ({ t: 'upsert' as const, p }))),
      fc.record({
        t: fc.constant('usage' as const),
        peer: fc.integer({ min: 0, max: 15 }),
        held: fc.integer({ min: 0, max: 3 }),
        busy: fc.integer({ min: 0, max: 3 }),
      }),
      fc.record({ t: fc.constant('settle' as const), peer: fc.integer({ min: 0, max: 15 }) }),
      fc.record({ t: fc.constant('remove' as const), peer: fc.integer({ min: 0, max: 15 }) }),
      fc.record({ t: fc.constant('expire' as const), dt: fc.integer({ min: 0, max: 30_000 }) }),
    );
    fc.assert(
      fc.property(fc.array(ops, { maxLength: 80 }), (seq) => {
        const idx = new ProviderIndex(resolveConfig());
        let now = NOW;
        for (const op of seq) {
          if (op.t === 'upsert') idx.upsert(op.p, now);
          else if (op.t === 'usage') idx.setUsage(`p${op.peer}`, op.held, op.busy);
          else if (op.t === 'settle') {
            const e = idx.get(`p${op.peer}`);
            if (e) idx.settle(e);
          } else if (op.t === 'remove') idx.remove(`p${op.peer}`);
          else {
            now += op.dt;
            for (const id of idx.expire(now)) expect(idx.get(id)).toBeUndefined();
            for (const e of idx.values()) expect(e.expiresAt).toBeGreaterThan(now);
          }
          expect(idx.verify()).toEqual([]);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('property: large lists (many chunks) stay ordered under usage churn and settling', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            peer: fc.integer({ min: 0, max: 299 }),
            held: fc.integer({ min: 0, max: 4 }),
            busy: fc.integer({ min: 0, max: 4 }),
            settle: fc.boolean(),
          }),
          { minLength: 1, maxLength: 300 },
        ),
        fc.integer({ min: 0, max: 1000 }),
        (ops, salt) => {
          const idx = new ProviderIndex(resolveConfig());
          for (let i = 0; i < 300; i++) {
            idx.upsert(
              provider(i, {
                pricePerUnit: BigInt(1 + ((i * 7919 + salt) % 97)),
                reputation: ((i * 31 + salt) % 100) / 100,
                slots: 1 + (i % 4),
                freeSlots: 1 + (i % 4),
              }),
              NOW,
            );
          }
          ops.forEach((op, n) => {
            idx.setUsage(`p${op.peer}`, op.held, op.busy);
            const e = idx.get(`p${op.peer}`);
            if (op.settle && e) idx.settle(e);
            if (n % 10 === 0) expect(idx.verify()).toEqual([]);
          });
          for (const e of idx.values()) idx.settle(e);
          expect(idx.verify()).toEqual([]);
        },
      ),
      { numRuns: 20 },
    );
  });
});
