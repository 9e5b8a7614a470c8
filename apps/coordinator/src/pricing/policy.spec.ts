import { describe, expect, it } from 'vitest';
import { DomainError } from '../common/domain-error.js';
import { resolvePolicy } from './policy.js';

const platform = { mode: 'none' as const, k: 1, canaryRate: 0.05 };
const account = { mode: 'redundant' as const, k: 3, canaryRate: 0.2 };

describe('verification policy resolution', () => {
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
});
