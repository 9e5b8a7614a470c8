import { describe, expect, it } from 'vitest';
import {
  PROBATION_PENALTY_KINDS,
  PROBATION_PENALTY_WINDOW_MS,
  PROBATION_VERIFIED_RESULTS,
  checkedPayments,
  needsCheck,
  trustTier,
  uncheckedMethod,
} from './tiers.js';

describe('trust tiers', () => {
  const now = Date.parse('2026-12-05T12:00:00Z');

  it('keeps a new provider on probation until it has enough checked results', () => {
    expect(trustTier({ verifiedResults: 0, lastPenaltyAt: null }, now).tier).toBe('probation');
    expect(
      trustTier({ verifiedResults: PROBATION_VERIFIED_RESULTS - 1, lastPenaltyAt: null }, now).tier,
    ).toBe('probation');
    expect(trustTier({ verifiedResults: PROBATION_VERIFIED_RESULTS, lastPenaltyAt: null }, now).tier).toBe(
      'trusted',
    );
  });

  it('puts a penalised provider back on probation for the penalty window', () => {
    const recent = new Date(now - PROBATION_PENALTY_WINDOW_MS + 60_000);
    const old = new Date(now - PROBATION_PENALTY_WINDOW_MS - 60_000);
    const decision = trustTier({ verifiedResults: 50, lastPenaltyAt: recent }, now);
    expect(decision.tier).toBe('probation');
    expect(decision.reason).toMatch(/penalised/);
    expect(trustTier({ verifiedResults: 50, lastPenaltyAt: old }, now).tier).toBe('trusted');
  });

  it('puts a provider whose input-fault claim a verified result disproved back on probation', () => {
    expect(PROBATION_PENALTY_KINDS).toContain('disproved_input_fault');
  });

  it('holds probation results always, trusted ones only when the job requires verified', () => {
    expect(needsCheck('probation', false)).toBe(true);
    expect(needsCheck('trusted', false)).toBe(false);
    expect(needsCheck('trusted', true)).toBe(true);
    expect(uncheckedMethod(0.05)).toBe('spot-check');
    expect(uncheckedMethod(0)).toBe('none');
  });

  it('pays a checker first and the checked provider what the reservation still holds', () => {
    // verified: the developer reserved two runs
    expect(checkedPayments(200n, { peerId: 'p', amount: 100n }, { peerId: 'c', amount: 90n })).toEqual([
      { peerId: 'p', amount: 100n },
      { peerId: 'c', amount: 90n },
    ]);
    // probation check of a single-copy job: the probation provider pays for its own check
    expect(checkedPayments(100n, { peerId: 'p', amount: 100n }, { peerId: 'c', amount: 60n })).toEqual([
      { peerId: 'p', amount: 40n },
      { peerId: 'c', amount: 60n },
    ]);
    expect(checkedPayments(100n, { peerId: 'p', amount: 80n }, { peerId: 'c', amount: 100n })).toEqual([
      { peerId: 'c', amount: 100n },
    ]);
  });
});
