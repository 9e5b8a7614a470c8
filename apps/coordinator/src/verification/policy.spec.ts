import { describe, expect, it } from 'vitest';
import { DomainError } from '../common/domain-error.js';
import { costOf, resolvePolicy } from './policy.js';

const platform = { mode: 'none' as const, k: 1, canaryRate: 0.05 };
const account = { mode: 'redundant' as const, k: 3, canaryRate: 0.2 };

describe('verification policy resolution and cost', () => {
  it('takes the request, else the spec alias, else the account default, else the platform', () => {
    expect(
      resolvePolicy({ requested: { mode: 'redundant', k: 2 }, specRedundancy: undefined, account, platform }),
    ).toEqual({
      policy: { mode: 'redundant', k: 2, canaryRate: 0.2 },
      source: 'request',
    });
    expect(resolvePolicy({ requested: undefined, specRedundancy: 2, account: null, platform })).toEqual({
      policy: { mode: 'redundant', k: 2, canaryRate: 0.05 },
      source: 'spec',
    });
    expect(resolvePolicy({ requested: undefined, specRedundancy: 1, account, platform }).source).toBe(
      'account',
    );
    expect(
      resolvePolicy({ requested: undefined, specRedundancy: undefined, account: null, platform }).source,
    ).toBe('platform');
  });

  it('rejects a bad policy and a spec redundancy that contradicts it, naming the field', () => {
    expect(() =>
      resolvePolicy({ requested: { mode: 'redundant', k: 5 }, specRedundancy: undefined, account, platform }),
    ).toThrow(/verification\.k/);
    expect(() =>
      resolvePolicy({ requested: { mode: 'none' }, specRedundancy: 2, account, platform }),
    ).toThrow(DomainError);
  });

  it('prices k runs and shows the canary share (funded from the fee, not added)', () => {
    const c = costOf(10n, 7n, { mode: 'redundant', k: 3, canaryRate: 0.1 });
    expect(c).toEqual({ work: 70n, redundancy: 140n, canary: 21n, check: 0n, total: 210n });
    expect(costOf(1n, 1n, { mode: 'none', k: 1, canaryRate: 0.05 }).canary).toBe(1n); // rounded up
  });

  it('reserves one check run for a single-copy job that requires verified (none for redundant ones)', () => {
    expect(costOf(10n, 7n, { mode: 'none', k: 1, canaryRate: 0, verified: true })).toMatchObject({
      work: 70n,
      check: 70n,
      total: 140n,
    });
    expect(costOf(10n, 7n, { mode: 'redundant', k: 2, canaryRate: 0, verified: true }).total).toBe(140n);
  });
});
