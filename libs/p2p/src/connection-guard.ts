/**
 * Admission of inbound connections for a node that strangers can reach (the coordinator, a listening
 * agent). Pure bookkeeping: the node feeds it opened/closed connections and peer bindings, it answers
 * which connection to accept, refuse or close. Wire it with `guardConnections` (node.ts).
 *
 * - A connection is *bound* once its peer has presented a valid signed advert (a peer binding) over
 *   it; an inbound connection still unbound after `unboundTimeoutMs` is closed.
 * - *Trusted* peers (other coordinator processes) are exempt from binding and from every cap.
 * - *Known* peers (bound before, or recently seen providers) may use every slot up to the hard limit;
 *   the last `reservedForKnown` slots are theirs only, so strangers cannot lock them out.
 * - *Strangers* (inbound, not known, not yet bound) are capped in total and per IP. When a cap is
 *   full, a newcomer takes the slot of the oldest stranger past its grace period on the crowded IP
 *   (or the most crowded one): idle junk cannot hold every slot, and a newcomer gets `strangerGraceMs`
 *   to bind before it can be displaced in turn.
 */

export const DEFAULT_GUARD_MAX_CONNECTIONS = 300;
/** Slots only known peers may take (the hard limit minus this is all strangers and unknowns get). */
export const DEFAULT_RESERVED_FOR_KNOWN = 64;
/** Unbound inbound connections at once. */
export const DEFAULT_MAX_UNBOUND = 64;
/** Unbound inbound connections at once from one IP (agents behind one NAT bind within a second or two). */
export const DEFAULT_MAX_UNBOUND_PER_IP = 16;
/** Inbound connections at once from one peer (an agent needs one; two while it reconnects). */
export const DEFAULT_MAX_INBOUND_PER_PEER = 4;
/**
 * An inbound connection must present a peer binding within this long. An agent advertises about 1.5 s
 * after connecting and then every 15 s, so one lost first advert still fits.
 */
export const DEFAULT_UNBOUND_TIMEOUT_MS = 20_000;
/** A stranger younger than this is never displaced by a newcomer (its time to bind). */
export const DEFAULT_STRANGER_GRACE_MS = 5_000;

export interface ConnectionGuardLimits {
  /** Hard limit of connections (the node's connection manager limit). */
  readonly maxConnections: number;
  readonly reservedForKnown: number;
  readonly maxUnbound: number;
  readonly maxUnboundPerIp: number;
  readonly maxInboundPerPeer: number;
  readonly unboundTimeoutMs: number;
  readonly strangerGraceMs: number;
}

export const DEFAULT_CONNECTION_GUARD_LIMITS: ConnectionGuardLimits = {
  maxConnections: DEFAULT_GUARD_MAX_CONNECTIONS,
  reservedForKnown: DEFAULT_RESERVED_FOR_KNOWN,
  maxUnbound: DEFAULT_MAX_UNBOUND,
  maxUnboundPerIp: DEFAULT_MAX_UNBOUND_PER_IP,
  maxInboundPerPeer: DEFAULT_MAX_INBOUND_PER_PEER,
  unboundTimeoutMs: DEFAULT_UNBOUND_TIMEOUT_MS,
  strangerGraceMs: DEFAULT_STRANGER_GRACE_MS,
};

/** Why a connection was refused at admission. */
export type ConnectionRefusal =
  | 'PEER_CONNECTION_LIMIT'
  | 'UNBOUND_PER_IP_LIMIT'
  | 'UNBOUND_LIMIT'
  | 'STRANGER_SLOTS_FULL'
  | 'CONNECTIONS_FULL';

/** Why an admitted connection was closed by the guard. */
export type ConnectionClosure = 'UNBOUND_TIMEOUT' | 'DISPLACED';

export interface ConnectionCandidate {
  readonly id: string;
  readonly peerId: string;
  /** Remote IP; undefined when the address has none (relayed, in-memory). */
  readonly ip: string | undefined;
  readonly direction: 'inbound' | 'outbound';
  /** Exempt from binding and caps (another coordinator process). */
  readonly trusted: boolean;
  /** A known provider (seen recently): may use the reserved slots. */
  readonly known: boolean;
  readonly now: number;
}

export type AdmissionDecision =
  | { readonly admit: true; readonly displace?: string }
  | { readonly admit: false; readonly reason: ConnectionRefusal };

interface Tracked {
  readonly peerId: string;
  readonly ip: string | undefined;
  readonly inbound: boolean;
  readonly trusted: boolean;
  readonly known: boolean;
  readonly openedAt: number;
  bound: boolean;
}

/** The guard's counts (status pages, tests). */
export interface ConnectionGuardStats {
  readonly connections: number;
  readonly unbound: number;
  readonly bound: number;
}

export class ConnectionGuard {
  readonly limits: ConnectionGuardLimits;
  /** Insertion order is opening order: the first unbound entry of an IP is its oldest stranger. */
  private readonly tracked = new Map<string, Tracked>();

  constructor(limits: Partial<ConnectionGuardLimits> = {}) {
    this.limits = { ...DEFAULT_CONNECTION_GUARD_LIMITS, ...limits };
    const { maxConnections, reservedForKnown } = this.limits;
    if (reservedForKnown >= maxConnections) {
      throw new Error(
        `reservedForKnown (${reservedForKnown}) must be below maxConnections (${maxConnections})`,
      );
    }
  }

  /**
   * Decides on a newly opened connection and, when admitted, tracks it. A `displace` in the answer
   * names a stranger's connection the caller must close (it is no longer tracked).
   */
  admit(candidate: ConnectionCandidate): AdmissionDecision {
    const inbound = candidate.direction === 'inbound';
    if (!inbound || candidate.trusted) {
      this.track(candidate, true);
      return { admit: true };
    }
    let fromPeer = 0;
    for (const t of this.tracked.values()) if (t.inbound && t.peerId === candidate.peerId) fromPeer += 1;
    if (fromPeer >= this.limits.maxInboundPerPeer) return { admit: false, reason: 'PEER_CONNECTION_LIMIT' };
    const total = this.tracked.size;
    if (candidate.known) {
      if (total < this.limits.maxConnections) {
        this.track(candidate, false);
        return { admit: true };
      }
      // the hard limit is reached: a known peer takes a stranger's slot, even one still in its grace
      const victim = this.oldestStranger(undefined, candidate.now, false);
      if (victim === undefined) return { admit: false, reason: 'CONNECTIONS_FULL' };
      this.tracked.delete(victim);
      this.track(candidate, false);
      return { admit: true, displace: victim };
    }
    const unbound = this.unboundByIp();
    const fromIp = candidate.ip === undefined ? 0 : (unbound.get(candidate.ip) ?? 0);
    let unboundTotal = 0;
    for (const n of unbound.values()) unboundTotal += n;
    let victim: string | undefined;
    let refusal: ConnectionRefusal | undefined;
    if (fromIp >= this.limits.maxUnboundPerIp) {
      victim = this.oldestStranger(candidate.ip, candidate.now, true);
      refusal = 'UNBOUND_PER_IP_LIMIT';
    } else if (unboundTotal >= this.limits.maxUnbound) {
      victim = this.displaceable(unbound, candidate.now);
      refusal = 'UNBOUND_LIMIT';
    } else if (total >= this.limits.maxConnections - this.limits.reservedForKnown) {
      victim = this.displaceable(unbound, candidate.now);
      refusal = 'STRANGER_SLOTS_FULL';
    }
    if (refusal !== undefined && victim === undefined) return { admit: false, reason: refusal };
    if (victim !== undefined) this.tracked.delete(victim);
    this.track(candidate, false);
    return victim === undefined ? { admit: true } : { admit: true, displace: victim };
  }

  /** The peer presented a valid binding: every open connection of it is bound. Returns how many changed. */
  bind(peerId: string): number {
    let changed = 0;
    for (const t of this.tracked.values()) {
      if (t.peerId === peerId && !t.bound) {
        t.bound = true;
        changed += 1;
      }
    }
    return changed;
  }

  /** Is some open connection of the peer bound? */
  isBound(peerId: string): boolean {
    for (const t of this.tracked.values()) if (t.peerId === peerId && t.bound) return true;
    return false;
  }

  /** A connection closed (by anybody). */
  remove(connectionId: string): void {
    this.tracked.delete(connectionId);
  }

  /** Inbound connections still unbound after the timeout; they are no longer tracked (close them). */
  expire(now: number): string[] {
    const out: string[] = [];
    for (const [id, t] of this.tracked) {
      if (!t.bound && now - t.openedAt >= this.limits.unboundTimeoutMs) out.push(id);
    }
    for (const id of out) this.tracked.delete(id);
    return out;
  }

  stats(): ConnectionGuardStats {
    let unbound = 0;
    for (const t of this.tracked.values()) if (!t.bound) unbound += 1;
    return { connections: this.tracked.size, unbound, bound: this.tracked.size - unbound };
  }

  private track(candidate: ConnectionCandidate, bound: boolean): void {
    this.tracked.set(candidate.id, {
      peerId: candidate.peerId,
      ip: candidate.ip,
      inbound: candidate.direction === 'inbound',
      trusted: candidate.trusted,
      known: candidate.known,
      openedAt: candidate.now,
      bound,
    });
  }

  /** Unbound strangers (inbound, not known) per IP. */
  private unboundByIp(): Map<string, number> {
    const out = new Map<string, number>();
    for (const t of this.tracked.values()) {
      if (isStranger(t)) out.set(t.ip ?? '', (out.get(t.ip ?? '') ?? 0) + 1);
    }
    return out;
  }

  /** A stranger to displace for a newcomer: the oldest past its grace on the most crowded IP, else anywhere. */
  private displaceable(unbound: Map<string, number>, now: number): string | undefined {
    return this.oldestStranger(crowdedIp(unbound), now, true) ?? this.oldestStranger(undefined, now, true);
  }

  /** The oldest unbound stranger (of `ip` when given), past its grace unless `graceApplies` is false. */
  private oldestStranger(ip: string | undefined, now: number, graceApplies: boolean): string | undefined {
    for (const [id, t] of this.tracked) {
      if (!isStranger(t)) continue;
      if (ip !== undefined && (t.ip ?? '') !== ip) continue;
      if (graceApplies && now - t.openedAt < this.limits.strangerGraceMs) continue;
      return id;
    }
    return undefined;
  }
}

function isStranger(t: Tracked): boolean {
  return t.inbound && !t.trusted && !t.known && !t.bound;
}

/** The IP holding the most unbound strangers (a flooder's), or undefined when there are none. */
function crowdedIp(unbound: Map<string, number>): string | undefined {
  let best: string | undefined;
  let most = 0;
  for (const [ip, n] of unbound) {
    if (n > most) {
      best = ip;
      most = n;
    }
  }
  return best;
}
