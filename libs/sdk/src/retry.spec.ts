import { describe, expect, it } from 'vitest';
import { backoffMs, retryAfterMs, sleep } from './retry.js';

describe('retry', () => {
  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-12-06T12:00:00Z');
    expect(retryAfterMs('3', now)).toBe(3000);
    expect(retryAfterMs('Sun, 06 Dec 2026 12:00:05 GMT', now)).toBe(5000);
    expect(retryAfterMs('Sun, 06 Dec 2026 11:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeNull();
    expect(retryAfterMs(null, now)).toBeNull();
  });

  it('backs off exponentially without a server hint, and caps every wait', () => {
    expect([1, 2, 3].map((a) => backoffMs(a, 10_000))).toEqual([250, 500, 1000]);
    expect(backoffMs(20, 10_000)).toBe(10_000);
    expect(backoffMs(1, 10_000, 4000)).toBe(4000);
    expect(backoffMs(1, 10_000, 60_000)).toBe(10_000);
  });

  it('stops sleeping when its signal aborts', async () => {
    const stop = new AbortController();
    const slept = sleep(60_000, stop.signal);
    stop.abort(new Error('stopped'));
    await expect(slept).rejects.toThrow('stopped');
  });
});
