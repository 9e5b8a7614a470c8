import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BREAKER_BASE_COOLDOWN_MS,
  BREAKER_LOSSES_TO_OPEN,
  BREAKER_MAX_COOLDOWN_MS,
  BREAKER_WINDOW_MS,
  ProviderBreakers,
} from './breaker.js';

const T0 = 1_700_000_000_000;

describe('ProviderBreakers', () => {
  it('opens after BREAKER_LOSSES_TO_OPEN losses in the window, not before', () => {
    const b = new ProviderBreakers();
    for (let i = 1; i < BREAKER_LOSSES_TO_OPEN; i++) {
      expect(b.recordLoss('p', T0 + i).opened).toBe(false);
      expect(b.allows('p', T0 + i)).toBe(true);
    }
    const r = b.recordLoss('p', T0 + BREAKER_LOSSES_TO_OPEN);
    expect(r).toEqual({ state: 'open', opened: true, cooldownMs: BREAKER_BASE_COOLDOWN_MS });
    expect(b.allows('p', T0 + BREAKER_LOSSES_TO_OPEN + 1)).toBe(false);
    expect(b.blocked(T0 + BREAKER_LOSSES_TO_OPEN + 1)).toEqual(['p']);
    expect(b.allows('other', T0)).toBe(true);
  });

  it('losses spread wider than the window never open it', () => {
    const b = new ProviderBreakers();
    for (let i = 0; i < 20; i++) {
      expect(b.recordLoss('p', T0 + i * (BREAKER_WINDOW_MS / (BREAKER_LOSSES_TO_OPEN - 1) + 1)).opened).toBe(
        false,
      );
    }
    expect(b.state('p', T0 + 20 * BREAKER_WINDOW_MS)).toBe('closed');
  });

  it('half-open lets exactly one probe through; a success closes, a loss doubles the cooldown', () => {
    const b = new ProviderBreakers();
    for (let i = 0; i < BREAKER_LOSSES_TO_OPEN; i++) b.recordLoss('p', T0);
    const half = T0 + BREAKER_BASE_COOLDOWN_MS;
    expect(b.state('p', half - 1)).toBe('open');
    expect(b.state('p', half)).toBe('half-open');
    expect(b.allows('p', half)).toBe(true);
    b.offered('p', half);
    expect(b.allows('p', half + 1)).toBe(false);
    // The probe failed: open for twice as long.
    expect(b.recordLoss('p', half + 2)).toMatchObject({
      opened: true,
      cooldownMs: 2 * BREAKER_BASE_COOLDOWN_MS,
    });
    const half2 = half + 2 + 2 * BREAKER_BASE_COOLDOWN_MS;
    expect(b.allows('p', half2 - 1)).toBe(false);
    expect(b.allows('p', half2)).toBe(true);
    b.offered('p', half2);
    expect(b.recordSuccess('p', half2 + 5)).toBe('closed');
    expect(b.allows('p', half2 + 6)).toBe(true);
    // Losing again soon after: the next opening is longer still.
    for (let i = 0; i < BREAKER_LOSSES_TO_OPEN; i++) b.recordLoss('p', half2 + 10);
    expect(b.snapshot('p', half2 + 10).cooldownMs).toBe(4 * BREAKER_BASE_COOLDOWN_MS);
  });

  it('a neutral outcome of the probe frees the half-open slot', () => {
    const b = new ProviderBreakers();
    for (let i = 0; i < BREAKER_LOSSES_TO_OPEN; i++) b.recordLoss('p', T0);
    const half = T0 + BREAKER_BASE_COOLDOWN_MS;
    b.offered('p', half);
    expect(b.allows('p', half)).toBe(false);
    b.recordNeutral('p');
    expect(b.allows('p', half)).toBe(true);
  });

  it('forgets past trips after a whole window closed without a loss', () => {
    const b = new ProviderBreakers();
    for (let i = 0; i < BREAKER_LOSSES_TO_OPEN; i++) b.recordLoss('p', T0);
    const half = T0 + BREAKER_BASE_COOLDOWN_MS;
    b.offered('p', half);
    b.recordSuccess('p', half);
    const later = half + BREAKER_WINDOW_MS;
    expect(b.blocked(later)).toEqual([]);
    for (let i = 0; i < BREAKER_LOSSES_TO_OPEN; i++) b.recordLoss('p', later);
    expect(b.snapshot('p', later).cooldownMs).toBe(BREAKER_BASE_COOLDOWN_MS);
  });

  it('rejects options that make no sense', () => {
    expect(() => new ProviderBreakers({ lossesToOpen: 0 })).toThrow(/lossesToOpen/);
    expect(() => new ProviderBreakers({ maxCooldownMs: 1 })).toThrow(/maxCooldownMs/);
  });

  type Op =
    | { kind: 'loss'; peer: number; dt: number }
    | { kind: 'success'; peer: number; dt: number }
    | { kind: 'offer'; peer: number; dt: number }
    | { kind: 'neutral'; peer: number; dt: number };
  const opArb: fc.Arbitrary<Op> = fc.record({
    kind: fc.constantFrom('loss', 'loss', 'success', 'offer', 'neutral'),
    peer: fc.integer({ min: 0, max: 2 }),
    dt: fc.oneof(
      fc.integer({ min: 0, max: 2_000 }),
      fc.integer({ min: 0, max: 4 * BREAKER_BASE_COOLDOWN_MS }),
    ),
  }) as fc.Arbitrary<Op>;

  it('property: cooldowns stay within [base, cap]; an open breaker admits nothing; half-open admits one probe', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
        const b = new ProviderBreakers();
        let now = T0;
        for (const op of ops) {
          now += op.dt;
          const peer = `p${op.peer}`;
          const before = b.snapshot(peer, now);
          if (op.kind === 'loss') {
            const r = b.recordLoss(peer, now);
            const after = b.snapshot(peer, now);
            expect(after.cooldownMs).toBeGreaterThanOrEqual(BREAKER_BASE_COOLDOWN_MS);
            expect(after.cooldownMs).toBeLessThanOrEqual(BREAKER_MAX_COOLDOWN_MS);
            if (before.state === 'half-open') {
              // A failed probe re-opens for twice as long (capped).
              expect(r.opened).toBe(true);
              expect(after.cooldownMs).toBe(Math.min(BREAKER_MAX_COOLDOWN_MS, before.cooldownMs * 2));
            }
            if (r.opened) {
              expect(after.state).toBe('open');
              expect(b.allows(peer, now)).toBe(false);
              expect(after.openUntil).toBe(now + after.cooldownMs);
            }
            if (before.state === 'closed' && !r.opened) {
              expect(after.losses).toBeLessThan(BREAKER_LOSSES_TO_OPEN);
            }
          } else if (op.kind === 'success') {
            const s = b.recordSuccess(peer, now);
            // Success closes a half-open breaker and never opens one.
            if (before.state === 'half-open') expect(s).toBe('closed');
            if (before.state === 'closed') expect(s).toBe('closed');
            if (before.state === 'open') expect(s).toBe('open');
          } else if (op.kind === 'offer') {
            if (!b.allows(peer, now)) continue;
            b.offered(peer, now);
            // After the probe went out, a half-open breaker admits no second offer.
            if (before.state === 'half-open') expect(b.allows(peer, now)).toBe(false);
            else expect(b.allows(peer, now)).toBe(true);
          } else {
            b.recordNeutral(peer);
          }
          // blocked() agrees with allows() for every peer.
          const blocked = new Set(b.blocked(now));
          for (let i = 0; i < 3; i++) expect(blocked.has(`p${i}`)).toBe(!b.allows(`p${i}`, now));
          // Open means not allowed.
          for (let i = 0; i < 3; i++)
            if (b.state(`p${i}`, now) === 'open') expect(b.allows(`p${i}`, now)).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('property: a closed breaker opens exactly when the losses in the window reach the threshold', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: BREAKER_WINDOW_MS / 2 }), { minLength: 1, maxLength: 12 }),
        (gaps) => {
          const b = new ProviderBreakers();
          let now = T0;
          const times: number[] = [];
          for (const gap of gaps) {
            now += gap;
            const r = b.recordLoss('p', now);
            times.push(now);
            const inWindow = times.filter((t) => t > now - BREAKER_WINDOW_MS).length;
            expect(r.opened).toBe(inWindow >= BREAKER_LOSSES_TO_OPEN);
            if (r.opened) return;
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
