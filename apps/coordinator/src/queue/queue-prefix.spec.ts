import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { derivedQueuePrefix, gpumeshPrefixOf, lastSeenTime } from './queue-prefix.js';

describe('queue prefixes', () => {
  it("finds the prefix of a marketplace's keys and of the legacy default only", () => {
    const id = 'c586b897d08f';
    expect(gpumeshPrefixOf(`${derivedQueuePrefix(id)}:dispatch:42`)).toBe(`gm-${id}`);
    expect(gpumeshPrefixOf('gpumesh:settlement:meta')).toBe('gpumesh');
    expect(gpumeshPrefixOf('gm-notanid:dispatch')).toBeNull();
    expect(gpumeshPrefixOf('t0123456789ab:dispatch:1')).toBeNull(); // someone else's (tests, other apps)
    expect(gpumeshPrefixOf('gpumesh')).toBeNull();
    expect(gpumeshPrefixOf(':gpumesh')).toBeNull();
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-f]{12}$/), fc.string(), (hex, rest) => {
        expect(gpumeshPrefixOf(`gm-${hex}:${rest}`)).toBe(`gm-${hex}`);
      }),
    );
  });

  it('reads when a marketplace was last seen, refusing what is not a time', () => {
    expect(lastSeenTime('c586b897d08f 1765000000000')).toBe(1765000000000);
    for (const bad of [null, '', 'c586b897d08f', 'c586b897d08f x', 'c586b897d08f -5', 'id 1.5'])
      expect(lastSeenTime(bad)).toBeNull();
  });
});
