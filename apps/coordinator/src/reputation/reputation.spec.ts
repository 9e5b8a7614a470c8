import { describe, expect, it } from 'vitest';
import { NEUTRAL_REPUTATION, REPUTATION_TABLE, applyRule, decayed, isSlow } from './reputation.js';

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
