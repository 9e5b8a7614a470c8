import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { ReplayGuard } from './replay-guard.js';

describe('ReplayGuard', () => {
  it('accepts increasing seq, flags equal as replay and lower as stale', () => {
    const guard = new ReplayGuard();
    expect(guard.checkSeq('0xAbC', 1)).toBe('fresh');
    expect(guard.checkSeq('0xabc', 1)).toBe('replay');
    expect(guard.checkSeq('0xabc', 0)).toBe('stale');
    expect(guard.checkSeq('0xabc', 5)).toBe('fresh');
    expect(guard.lastSeq('0xABC')).toBe(5);
    expect(guard.checkSeq('0xdef', 0)).toBe('fresh');
  });

  it('never accepts the same seq twice for a signer (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 50 }), { maxLength: 100 }), (seqs) => {
        const guard = new ReplayGuard();
        let highest = -1;
        for (const seq of seqs) {
          const verdict = guard.checkSeq('s', seq);
          expect(verdict).toBe(seq > highest ? 'fresh' : seq === highest ? 'replay' : 'stale');
          highest = Math.max(highest, seq);
        }
      }),
    );
  });

  it('bounds the signers it remembers', () => {
    const guard = new ReplayGuard({ maxSigners: 2 });
    guard.checkSeq('a', 1);
    guard.checkSeq('b', 1);
    guard.checkSeq('c', 1);
    expect(guard.lastSeq('a')).toBeUndefined();
    expect(guard.lastSeq('c')).toBe(1);
  });

  it('flags repeated nonces as replay and expired ones as stale', () => {
    const guard = new ReplayGuard();
    expect(guard.checkNonce('n1', 2000, 1000)).toBe('fresh');
    expect(guard.checkNonce('n1', 2000, 1500)).toBe('replay');
    expect(guard.checkNonce('n2', 900, 1000)).toBe('stale');
  });

  it('stays bounded and never lets an evicted nonce be replayed (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: 30 }), fc.integer({ min: 1, max: 1000 })), { maxLength: 200 }),
        (events) => {
          const guard = new ReplayGuard({ maxNonces: 8 });
          const accepted = new Set<string>();
          let now = 0;
          for (const [id, ttl] of events) {
            now += 1;
            const nonce = `n${id}`;
            const expiry = now + ttl;
            const verdict = guard.checkNonce(nonce, expiry, now);
            // A nonce once accepted is never accepted again while it could still be live.
            if (accepted.has(`${nonce}@${expiry}`)) expect(verdict).not.toBe('fresh');
            if (verdict === 'fresh') accepted.add(`${nonce}@${expiry}`);
            expect(guard.nonceCount).toBeLessThanOrEqual(8);
          }
        },
      ),
    );
  });

  it('treats messages expiring before an evicted nonce as stale', () => {
    const guard = new ReplayGuard({ maxNonces: 2 });
    guard.checkNonce('a', 100, 0);
    guard.checkNonce('b', 200, 0);
    expect(guard.checkNonce('c', 300, 0)).toBe('fresh'); // evicts "a" (expiring at 100)
    expect(guard.checkNonce('a', 100, 0)).toBe('stale');
    expect(guard.checkNonce('d', 150, 0)).toBe('fresh');
  });
});
