import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NOW, job, provider, providerArb } from '../test/arbitraries.js';
import { ReservationBook } from './reservations.js';
import { Scheduler } from './scheduler.js';

describe('ReservationBook', () => {
  it('holds a slot until the TTL, then releases it by itself', () => {
    const book = new ReservationBook();
    expect(book.reserve('j', 'p', NOW, 1000)).toBeDefined();
    expect(book.reserve('j', 'p', NOW, 1000)).toBeUndefined();
    expect(book.usage('p')).toEqual({ held: 1, busy: 0 });
    expect(book.expire(NOW + 999)).toEqual([]);
    expect(book.expire(NOW + 1000).map((r) => r.jobId)).toEqual(['j']);
    expect(book.usage('p')).toEqual({ held: 0, busy: 0 });
    expect(book.confirm('j', 'p', NOW + 1001)).toBe(false);
  });

  it('confirm turns a hold into a busy slot that survives the TTL; release frees it', () => {
    const book = new ReservationBook();
    book.reserve('j', 'p', NOW, 1000);
    expect(book.confirm('j', 'p', NOW + 10)).toBe(true);
    expect(book.expire(NOW + 5000)).toEqual([]);
    expect(book.usage('p')).toEqual({ held: 0, busy: 1 });
    expect(book.release('j', 'p')).toBe(true);
    expect(book.release('j', 'p')).toBe(false);
    expect(book.size).toBe(0);
  });

  it('a confirmation after the TTL is refused', () => {
    const book = new ReservationBook();
    book.reserve('j', 'p', NOW, 1000);
    expect(book.confirm('j', 'p', NOW + 1000)).toBe(false);
    expect(book.usage('p')).toEqual({ held: 0, busy: 0 });
  });

  it('enforces a capacity when given one', () => {
    const book = new ReservationBook();
    expect(book.reserve('a', 'p', NOW, 1000, 1)).toBeDefined();
    expect(book.reserve('b', 'p', NOW, 1000, 1)).toBeUndefined();
  });

  it('reconcile confirms reported holds, adopts unknown jobs and frees vanished ones after the grace', () => {
    const book = new ReservationBook();
    book.reserve('held', 'p', NOW, 60_000);
    book.reserve('old', 'p', NOW, 60_000);
    book.confirm('old', 'p', NOW);
    book.reserve('fresh', 'p', NOW, 60_000);
    book.confirm('fresh', 'p', NOW + 9000);
    book.reserve('pending', 'p', NOW, 60_000);
    const r = book.reconcile('p', ['held', 'stranger'], NOW + 10_000, 5000);
    expect(r.confirmed).toEqual(['held']);
    expect(r.adopted).toEqual(['stranger']);
    expect(r.released).toEqual(['old']);
    expect(book.usage('p')).toEqual({ held: 1, busy: 3 });
    const later = book.reconcile('p', [], NOW + 20_000, 5000);
    expect(later.released.sort()).toEqual(['fresh', 'held', 'stranger']);
    expect(book.usage('p')).toEqual({ held: 1, busy: 0 });
  });

  it('releaseJob frees every replica', () => {
    const book = new ReservationBook();
    book.reserve('j', 'a', NOW, 1000);
    book.reserve('j', 'b', NOW, 1000);
    expect(book.releaseJob('j')).toHaveLength(2);
    expect(book.size).toBe(0);
  });
});

type Op =
  | { t: 'place'; job: number; k: number }
  | { t: 'confirm'; job: number }
  | { t: 'complete'; job: number }
  | { t: 'tick'; dt: number }
  | { t: 'reconcile'; peer: number; jobs: number[] }
  | { t: 'advert'; peer: number; free: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    t: fc.constant('place' as const),
    job: fc.integer({ min: 0, max: 30 }),
    k: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({ t: fc.constant('confirm' as const), job: fc.integer({ min: 0, max: 30 }) }),
  fc.record({ t: fc.constant('complete' as const), job: fc.integer({ min: 0, max: 30 }) }),
  fc.record({ t: fc.constant('tick' as const), dt: fc.integer({ min: 0, max: 20_000 }) }),
  fc.record({
    t: fc.constant('reconcile' as const),
    peer: fc.integer({ min: 0, max: 9 }),
    jobs: fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 4 }),
  }),
  fc.record({
    t: fc.constant('advert' as const),
    peer: fc.integer({ min: 0, max: 9 }),
    free: fc.integer({ min: 0, max: 4 }),
  }),
);

describe('scheduler reservations (property)', () => {
  it('never double-books, never leaks, and keeps the index consistent', () => {
    fc.assert(
      fc.property(
        fc.tuple(...Array.from({ length: 10 }, (_, i) => providerArb(i))),
        fc.array(opArb, { minLength: 1, maxLength: 60 }),
        (snapshots, ops) => {
          const s = new Scheduler({
            explorationShare: 0.2,
            reservationTtlMs: 30_000,
            reconcileGraceMs: 5000,
          });
          let now = 1_750_000_000_000;
          const live = snapshots.map((p) => ({
            ...p,
            banned: false,
            draining: false,
            expiresAt: now + 10_000_000,
          }));
          for (const p of live) s.upsertProvider(p, now);
          for (const op of ops) {
            switch (op.t) {
              case 'place': {
                const j = job(`j${op.job}`, {
                  redundancy: op.k,
                  maxPricePerUnit: 1000n,
                  deadlineAt: now + 600_000,
                });
                const naive = s.selectNaive(j, now).placements.map((p) => p.peerId);
                expect(s.select(j, now, { explore: false }).placements.map((p) => p.peerId)).toEqual(naive);
                const r = s.place(j, now);
                if (!r.ok) expect(r.placements.length < op.k || r.placements.length === 0).toBe(true);
                break;
              }
              case 'confirm':
                for (const peer of s.reservations.peersOf(`j${op.job}`)) s.confirm(`j${op.job}`, peer, now);
                break;
              case 'complete':
                s.cancel(`j${op.job}`);
                break;
              case 'tick':
                now += op.dt;
                s.tick(now);
                break;
              case 'reconcile':
                s.reconcile(
                  `p${op.peer}`,
                  op.jobs.map((j) => `j${j}`),
                  now,
                );
                break;
              case 'advert': {
                const p = live[op.peer];
                s.upsertProvider({ ...p, freeSlots: Math.min(op.free, p.slots) }, now);
                break;
              }
            }
            // Invariants after every step.
            expect(s.index.verify()).toEqual([]);
            for (const p of live) {
              const u = s.reservations.usage(p.peerId);
              const fromList = s.reservations.forPeer(p.peerId);
              expect(u.held).toBe(fromList.filter((r) => r.state === 'held').length);
              expect(u.busy).toBe(fromList.filter((r) => r.state === 'busy').length);
              const adopted = fromList.filter((r) => r.adopted).length;
              // Only what the provider itself reports can push usage past its slots.
              expect(u.held + u.busy - adopted).toBeLessThanOrEqual(p.slots);
              const e = s.usage(p.peerId);
              expect(e?.held).toBe(u.held);
              expect(e?.busy).toBe(u.busy);
              expect(e?.available).toBeGreaterThanOrEqual(0);
              expect((e?.available ?? 0) + u.held + u.busy).toBeLessThanOrEqual(
                Math.max(p.slots, u.held + u.busy),
              );
            }
          }
          // No leaks: once the TTL passes and every provider reports idle, nothing is held or busy.
          now += 60_000;
          s.tick(now);
          for (const p of live) s.reconcile(p.peerId, [], now);
          expect(s.reservations.size).toBe(0);
          for (const p of live) expect(s.usage(p.peerId)).toMatchObject({ held: 0, busy: 0 });
        },
      ),
      { numRuns: 100 },
    );
  });

  it('a provider never gets more offers than it has slots', () => {
    const s = new Scheduler({ explorationShare: 0 });
    s.upsertProvider(provider(1, { slots: 2, freeSlots: 2 }), NOW);
    expect(s.place(job('a'), NOW).ok).toBe(true);
    expect(s.place(job('b'), NOW).ok).toBe(true);
    expect(s.place(job('c'), NOW).ok).toBe(false);
    s.complete('a', 'p1');
    expect(s.place(job('c'), NOW).ok).toBe(true);
  });

  it('an advert reporting fewer free slots is respected', () => {
    const s = new Scheduler({ explorationShare: 0 });
    s.upsertProvider(provider(1, { slots: 4, freeSlots: 1 }), NOW);
    expect(s.place(job('a'), NOW).ok).toBe(true);
    expect(s.place(job('b'), NOW).ok).toBe(false);
  });
});
