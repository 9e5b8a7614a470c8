import { describe, expect, it } from 'vitest';
import { SETTING_SCHEMAS, VerificationPolicySchema } from './settings.js';

describe('VerificationPolicySchema', () => {
  it('fills k and the canary rate', () => {
    expect(VerificationPolicySchema.parse({ mode: 'redundant' })).toEqual({
      mode: 'redundant',
      k: 2,
      canaryRate: 0,
    });
    expect(VerificationPolicySchema.parse({ mode: 'none', canaryRate: 0.1 })).toEqual({
      mode: 'none',
      k: 1,
      canaryRate: 0.1,
    });
  });

  it('names the field that is wrong', () => {
    const bad = (v: unknown) => VerificationPolicySchema.safeParse(v).error?.issues[0];
    expect(bad({ mode: 'redundant', k: 4 })).toMatchObject({ path: ['k'], message: 'expected 2..3' });
    expect(bad({ mode: 'none', k: 2 })).toMatchObject({ path: ['k'] });
    expect(bad({ mode: 'redundant', canaryRate: 0.9 })).toMatchObject({ path: ['canaryRate'] });
    expect(bad({ mode: 'all' })?.message).toBe('expected mode none | redundant');
    expect(bad({ mode: 'none', extra: 1 })).toBeDefined();
  });

  it('bounds the fee and the epoch length', () => {
    expect(SETTING_SCHEMAS.platformFeeBps.safeParse(10_001).success).toBe(false);
    expect(SETTING_SCHEMAS.epochSeconds.safeParse(0).success).toBe(false);
    expect(SETTING_SCHEMAS.epochSeconds.parse(20)).toBe(20);
  });
});
