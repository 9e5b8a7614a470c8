import { describe, expect, it } from 'vitest';
import { RECONNECT_JITTER_FRACTION, coordinatorPeerIds, reconnectDelayMs } from './coordinator-link.js';
import { peerIdOfMultiaddr } from './coordinator-directory.js';

const backoff = { initialDelayMs: 1_000, maxDelayMs: 30_000 };
const PEER = '12D3KooWGRUVh6ZDMb7ZZ6J2FCVhV8u3yyfgR3Ls5FdKojxUrZpV';

describe('reconnectDelayMs', () => {
  it('doubles per failed round from the initial delay and stops at the cap', () => {
    const middle = () => 0.5; // no jitter
    expect([1, 2, 3, 4, 5, 6, 7, 50].map((n) => reconnectDelayMs(n, backoff, middle))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000,
    ]);
  });

  it('spreads each delay by at most ± the jitter fraction', () => {
    const low = reconnectDelayMs(50, backoff, () => 0);
    const high = reconnectDelayMs(50, backoff, () => 0.999_999);
    expect(low).toBe(Math.round(30_000 * (1 - RECONNECT_JITTER_FRACTION)));
    expect(high).toBeLessThanOrEqual(Math.round(30_000 * (1 + RECONNECT_JITTER_FRACTION)));
    expect(high).toBeGreaterThan(30_000);
  });
});

describe('coordinator addresses', () => {
  it('takes the peer id from /p2p/, once, and drops garbage', () => {
    const a = `/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`;
    const b = `/ip4/10.0.0.1/tcp/4001/p2p/${PEER}`;
    expect(peerIdOfMultiaddr(a)).toBe(PEER);
    expect(coordinatorPeerIds([a, b, '/ip4/1.2.3.4/tcp/1', '/ip4/1.2.3.4/tcp/1/p2p/notapeer'])).toEqual([
      PEER,
    ]);
  });
});
