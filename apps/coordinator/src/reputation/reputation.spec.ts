import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DISPROVED_CLAIM_MAX_WEIGHT,
  NEUTRAL_REPUTATION,
  REPUTATION_TABLE,
  applyRule,
  decayed,
  isSlow,
  repeatWeight,
} from './reputation.js';

describe('reputation table and decay', () => {
  it('bans exactly the rules that prove a wrong result', () => {
    const banning = Object.entries(REPUTATION_TABLE)
      .filter(([, r]) => r.ban)
      .map(([k]) => k)
      .sort();
    expect(banning).toEqual(['failed_canary', 'failed_check', 'failed_reverification', 'lost_tiebreak']);
    expect(applyRule(0.9, 'failed_canary')).toBe(0);
  });

  it('rewards a verified pass more than an unverified completion, and clamps to [0, 1]', () => {
    expect(applyRule(0.5, 'verified_pass')).toBeGreaterThan(applyRule(0.5, 'completion'));
    expect(applyRule(0.999, 'won_tiebreak')).toBe(1);
    expect(applyRule(0.01, 'missed_deadline')).toBe(0);
    expect(applyRule(0, 'ban_lifted')).toBe(REPUTATION_TABLE.ban_lifted.setTo);
  });

  it('decays toward neutral with the half-life', () => {
    expect(decayed(0.9, 1000, 1000)).toBeCloseTo(NEUTRAL_REPUTATION + 0.2, 10);
    expect(decayed(0.1, 2000, 1000)).toBeCloseTo(NEUTRAL_REPUTATION - 0.1, 10);
    expect(decayed(0.7, 0, 1000)).toBe(0.7);
  });

  it('calls a run slow only far beyond the advertised speed and past the grace', () => {
    expect(isSlow(1000n, 10, 500)).toBe(false); // within grace
    expect(isSlow(1000n, 10, 100 * 4 + 1000 + 1)).toBe(true);
    expect(isSlow(1000n, 10, 100 * 4 + 999)).toBe(false);
  });
});

describe('disproved input-fault claims', () => {
  const HALF_LIFE = 168 * 3_600_000;
  const now = Date.parse('2026-12-07T12:00:00Z');
  const ago = (ms: number): Date => new Date(now - ms);
  /** Claim ages, as ms before `now`, within 20 half-lives. */
  const ages = fc.array(fc.integer({ min: 0, max: 20 * HALF_LIFE }), { maxLength: 40 });

  it('costs score and never bans', () => {
    expect(REPUTATION_TABLE.disproved_input_fault.ban).toBe(false);
    expect(applyRule(NEUTRAL_REPUTATION, 'disproved_input_fault')).toBeLessThan(NEUTRAL_REPUTATION);
  });

  it('weighs a first claim 1 and claims in a row more each time, up to the cap', () => {
    expect(repeatWeight([], now, HALF_LIFE)).toBe(1);
    const earlier: Date[] = [];
    const penalties: number[] = [];
    for (let i = 0; i < 8; i++) {
      const weight = repeatWeight(earlier, now, HALF_LIFE);
      penalties.push(NEUTRAL_REPUTATION - applyRule(NEUTRAL_REPUTATION, 'disproved_input_fault', weight));
      earlier.push(ago(60_000));
    }
    // Growing until the cap, then the cap's.
    for (let i = 1; i < penalties.length; i++) expect(penalties[i]).toBeGreaterThanOrEqual(penalties[i - 1]);
    expect(penalties[1]).toBeGreaterThan(penalties[0]);
    expect(penalties[4]).toBeGreaterThan(penalties[3]);
    expect(repeatWeight(earlier, now, HALF_LIFE)).toBe(DISPROVED_CLAIM_MAX_WEIGHT);
  });

  it('is at least 1, at most the cap, and never lower for one more earlier claim (property)', () => {
    fc.assert(
      fc.property(ages, fc.integer({ min: 0, max: 20 * HALF_LIFE }), (claims, extra) => {
        const before = repeatWeight(claims.map(ago), now, HALF_LIFE);
        const after = repeatWeight([...claims, extra].map(ago), now, HALF_LIFE);
        expect(before).toBeGreaterThanOrEqual(1);
        expect(after).toBeLessThanOrEqual(DISPROVED_CLAIM_MAX_WEIGHT);
        expect(after).toBeGreaterThanOrEqual(before);
      }),
    );
  });

  it('forgets earlier claims as the score decays: the same claims weigh less later (property)', () => {
    fc.assert(
      fc.property(ages, fc.integer({ min: 1, max: 10 * HALF_LIFE }), (claims, later) => {
        const dates = claims.map(ago);
        expect(repeatWeight(dates, now + later, HALF_LIFE)).toBeLessThanOrEqual(
          repeatWeight(dates, now, HALF_LIFE),
        );
      }),
    );
    // Ten claims three months ago count for almost nothing now.
    const old = Array.from({ length: 10 }, () => ago(13 * HALF_LIFE));
    expect(repeatWeight(old, now, HALF_LIFE)).toBeLessThan(1.01);
  });

  it('lets one honest mistake fade back toward neutral', () => {
    const after = applyRule(NEUTRAL_REPUTATION, 'disproved_input_fault', repeatWeight([], now, HALF_LIFE));
    expect(decayed(after, 4 * HALF_LIFE, HALF_LIFE)).toBeGreaterThan(NEUTRAL_REPUTATION - 0.005);
  });
});
