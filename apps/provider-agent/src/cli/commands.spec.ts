import { describe, expect, it } from 'vitest';
import { formatDuration, marketLine, parseMaxDisconnected } from './commands.js';
import { CliError } from './output.js';

describe('status and init helpers', () => {
  it('formats durations for status', () => {
    expect([0, 12_400, 65_000, 3 * 3_600_000 + 120_000, 50 * 3_600_000].map(formatDuration)).toEqual([
      '0 s',
      '12 s',
      '1 min 5 s',
      '3 h 2 min',
      '2 d 2 h',
    ]);
  });

  it("places the owner's price in the market's live range", () => {
    const market = { providers: 3, min: '2', median: '4', max: '9', feeBps: 500 };
    expect(marketLine(market, '1')).toMatch(
      /3 live provider\(s\) charge 2 \(min\) \/ 4 \(median\) \/ 9 \(max\); yours is below every live provider; the platform keeps 5\.00%/,
    );
    expect(marketLine(market, '4')).toMatch(/inside the live range/);
    expect(marketLine(market, '10')).toMatch(/above every live provider/);
    expect(marketLine({ ...market, providers: 0, min: null, median: null, max: null }, '1')).toMatch(
      /no provider is live/,
    );
    expect(marketLine({ error: 'HTTP 404' }, '1')).toBe('price range unknown (HTTP 404)');
  });

  it('reads --max-disconnected as whole seconds, 0 = never', () => {
    expect(parseMaxDisconnected(undefined)).toBeUndefined();
    expect(parseMaxDisconnected('0')).toBe(0);
    expect(parseMaxDisconnected('600')).toBe(600);
    for (const bad of ['-1', '1.5', 'ten', '']) expect(() => parseMaxDisconnected(bad)).toThrow(CliError);
  });
});
