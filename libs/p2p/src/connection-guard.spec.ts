import { describe, expect, it } from 'vitest';

import { ConnectionGuard, type ConnectionCandidate } from './connection-guard.js';

const T0 = 1_000_000;
let seq = 0;

function candidate(overrides: Partial<ConnectionCandidate> = {}): ConnectionCandidate {
  seq += 1;
  return {
    id: `c${seq}`,
    peerId: `peer${seq}`,
    ip: '10.0.0.1',
    direction: 'inbound',
    trusted: false,
    known: false,
    now: T0,
    ...overrides,
  };
}

const LIMITS = {
  maxConnections: 10,
  reservedForKnown: 4,
  maxUnbound: 5,
  maxUnboundPerIp: 3,
  maxInboundPerPeer: 2,
  unboundTimeoutMs: 15_000,
  strangerGraceMs: 5_000,
};

describe('ConnectionGuard', () => {
  it('caps unbound strangers per IP, but not bound peers from that IP', () => {
    const guard = new ConnectionGuard(LIMITS);
    const admitted = [1, 2, 3].map(() => guard.admit(candidate()));
    expect(admitted.every((d) => d.admit)).toBe(true);
    expect(guard.admit(candidate())).toEqual({ admit: false, reason: 'UNBOUND_PER_IP_LIMIT' });
    // another IP still has room
    expect(guard.admit(candidate({ ip: '10.0.0.2' })).admit).toBe(true);
    // once bound, a peer no longer counts as a stranger of its IP
    guard.bind('peer1');
    expect(guard.admit(candidate()).admit).toBe(true);
    expect(guard.stats()).toEqual({ connections: 5, unbound: 4, bound: 1 });
  });

  it('caps unbound strangers in total', () => {
    const guard = new ConnectionGuard(LIMITS);
    for (let i = 0; i < 5; i++) expect(guard.admit(candidate({ ip: `10.0.1.${i}` })).admit).toBe(true);
    expect(guard.admit(candidate({ ip: '10.0.2.1' }))).toEqual({ admit: false, reason: 'UNBOUND_LIMIT' });
  });

  it('lets a newcomer displace the oldest stranger past its grace, on the crowded IP', () => {
    const guard = new ConnectionGuard(LIMITS);
    const junk = [1, 2, 3].map(() => candidate({ ip: '10.0.0.9' }));
    for (const c of junk) guard.admit(c);
    // within the grace nobody is displaced
    expect(guard.admit(candidate({ ip: '10.0.0.9', now: T0 + 4_999 })).admit).toBe(false);
    const decision = guard.admit(candidate({ ip: '10.0.0.9', now: T0 + 5_000 }));
    expect(decision).toEqual({ admit: true, displace: junk[0].id });
    // the total cap displaces on the IP holding the most strangers, not a lone stranger elsewhere
    const lone = candidate({ ip: '10.0.0.1', now: T0 });
    guard.admit(lone);
    guard.admit(candidate({ ip: '10.0.0.2', now: T0 + 6_000 }));
    const full = guard.admit(candidate({ ip: '10.0.0.3', now: T0 + 6_000 }));
    expect(full).toEqual({ admit: true, displace: junk[1].id });
  });

  it('keeps the reserved slots for known peers and displaces a stranger for one at the hard limit', () => {
    const guard = new ConnectionGuard({ ...LIMITS, maxUnbound: 100, maxUnboundPerIp: 100 });
    // six strangers fill every slot that is not reserved; they are still in their grace
    const strangers = Array.from({ length: 6 }, () => candidate());
    for (const c of strangers) expect(guard.admit(c).admit).toBe(true);
    expect(guard.admit(candidate())).toEqual({ admit: false, reason: 'STRANGER_SLOTS_FULL' });
    for (let i = 0; i < 4; i++) expect(guard.admit(candidate({ known: true })).admit).toBe(true);
    // at the hard limit a known peer takes a stranger's slot, grace or not
    const known = guard.admit(candidate({ known: true }));
    expect(known).toEqual({ admit: true, displace: strangers[0].id });
    // with only known peers left nothing can be displaced
    const onlyKnown = new ConnectionGuard(LIMITS);
    for (let i = 0; i < 10; i++) onlyKnown.admit(candidate({ known: true }));
    expect(onlyKnown.admit(candidate({ known: true }))).toEqual({ admit: false, reason: 'CONNECTIONS_FULL' });
  });

  it('caps inbound connections per peer', () => {
    const guard = new ConnectionGuard(LIMITS);
    expect(guard.admit(candidate({ peerId: 'p' })).admit).toBe(true);
    expect(guard.admit(candidate({ peerId: 'p' })).admit).toBe(true);
    expect(guard.admit(candidate({ peerId: 'p' }))).toEqual({
      admit: false,
      reason: 'PEER_CONNECTION_LIMIT',
    });
  });

  it('exempts outbound connections and trusted peers from caps and from binding', () => {
    const guard = new ConnectionGuard(LIMITS);
    for (let i = 0; i < 3; i++) guard.admit(candidate());
    expect(guard.admit(candidate({ trusted: true })).admit).toBe(true);
    expect(guard.admit(candidate({ direction: 'outbound' })).admit).toBe(true);
    const expired = guard.expire(T0 + 15_000);
    expect(expired).toHaveLength(3);
    expect(guard.stats()).toEqual({ connections: 2, unbound: 0, bound: 2 });
  });

  it('closes unbound connections, known peers included, after the timeout; bound ones stay', () => {
    const guard = new ConnectionGuard(LIMITS);
    const bound = candidate({ peerId: 'honest' });
    const known = candidate({ known: true });
    const silent = candidate();
    for (const c of [bound, known, silent]) guard.admit(c);
    guard.bind('honest');
    expect(guard.isBound('honest')).toBe(true);
    expect(guard.expire(T0 + 14_999)).toEqual([]);
    expect(guard.expire(T0 + 15_000).sort()).toEqual([known.id, silent.id].sort());
    guard.remove(bound.id);
    expect(guard.isBound('honest')).toBe(false);
    expect(guard.stats().connections).toBe(0);
  });

  it('refuses limits that leave strangers no slot', () => {
    expect(() => new ConnectionGuard({ maxConnections: 10, reservedForKnown: 10 })).toThrow(
      /reservedForKnown/,
    );
  });
});
