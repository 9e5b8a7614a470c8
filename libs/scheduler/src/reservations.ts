// Reservations: a slot is held while an offer is out and released by itself when the TTL passes
// without a confirmation; confirm turns it into a busy slot; complete/fail (release) frees it.
// reconcile() aligns the busy slots with what the provider itself reports, so a slot can neither leak
// (we think it is busy, the provider is idle) nor be double-booked (the provider runs a job we forgot).
import { MinHeap } from './heap.js';

export type ReservationState = 'held' | 'busy';

export interface Reservation {
  readonly jobId: string;
  readonly peerId: string;
  /** Work units and the provider's price: the reservation puts workUnits × price in flight there. */
  readonly workUnits: bigint;
  readonly pricePerUnit: bigint;
  state: ReservationState;
  readonly createdAt: number;
  /** When a held reservation lapses (ms). */
  readonly expiresAt: number;
  /** When it became busy. */
  confirmedAt?: number;
  /** Busy because the provider reported a job we had no reservation for. */
  adopted: boolean;
}

export interface ReconcileResult {
  /** Held reservations the provider reports running: now busy. */
  confirmed: string[];
  /** Jobs the provider runs that we did not know about: now counted busy. */
  adopted: string[];
  /** Busy jobs the provider no longer reports (finished or lost): freed; the caller re-places lost ones. */
  released: string[];
}

export interface Usage {
  held: number;
  busy: number;
}

/** Called whenever a provider's held or busy count (or the value they hold) changes. */
export type UsageListener = (peerId: string, held: number, busy: number, value: bigint) => void;

interface PeerBook {
  held: number;
  busy: number;
  /** Σ workUnits × price of its reservations, kept only when the book tracks value. */
  value: bigint;
  jobs: Map<string, Reservation>;
}

/** Base units a reservation puts in flight. */
export function reservationValue(r: Reservation): bigint {
  return r.workUnits * r.pricePerUnit;
}

export class ReservationBook {
  private readonly peers = new Map<string, PeerBook>();
  /** Reservations of each job (at most a handful: one per redundant attempt). */
  private readonly jobs = new Map<string, Reservation[]>();
  /** Held reservations by expiry; confirmed or released ones are skipped when they surface. */
  private readonly expiry = new MinHeap<Reservation>((a, b) => a.expiresAt < b.expiresAt);
  private count = 0;

  /**
   * `trackValue`: keep each peer's value in flight up to date and report it to `onUsage` (stake
   * gating needs it at every decision); otherwise it is summed only when asked (valueOf) and the
   * listener gets 0n, so placement without stake gating does no bigint arithmetic.
   */
  constructor(
    private readonly onUsage?: UsageListener,
    private readonly trackValue = true,
  ) {}

  /** Number of live reservations (held + busy). */
  get size(): number {
    return this.count;
  }

  usage(peerId: string): Usage {
    const p = this.peers.get(peerId);
    return p === undefined ? { held: 0, busy: 0 } : { held: p.held, busy: p.busy };
  }

  /** Value (base units) the peer's held and busy reservations put in flight. */
  valueOf(peerId: string): bigint {
    const p = this.peers.get(peerId);
    if (p === undefined) return 0n;
    if (this.trackValue) return p.value;
    let sum = 0n;
    for (const r of p.jobs.values()) sum += reservationValue(r);
    return sum;
  }

  get(jobId: string, peerId: string): Reservation | undefined {
    return this.peers.get(peerId)?.jobs.get(jobId);
  }

  /** Peers holding a reservation (held or busy) for the job. */
  peersOf(jobId: string): string[] {
    const list = this.jobs.get(jobId);
    return list === undefined ? [] : list.map((r) => r.peerId);
  }

  forPeer(peerId: string): Reservation[] {
    const p = this.peers.get(peerId);
    return p === undefined ? [] : [...p.jobs.values()];
  }

  /**
   * Holds a slot on `peerId` for `jobId` until now + ttlMs, putting workUnits × pricePerUnit in flight
   * there. Refused (undefined) when the pair already has a reservation or when `capacity` is given and
   * the peer's held + busy slots already reach it.
   */
  reserve(
    jobId: string,
    peerId: string,
    now: number,
    ttlMs: number,
    capacity?: number,
    workUnits = 0n,
    pricePerUnit = 0n,
  ): Reservation | undefined {
    const p = this.peer(peerId);
    if (p.jobs.has(jobId)) return undefined;
    if (capacity !== undefined && p.held + p.busy >= capacity) return undefined;
    const r: Reservation = {
      jobId,
      peerId,
      workUnits,
      pricePerUnit,
      state: 'held',
      createdAt: now,
      expiresAt: now + ttlMs,
      adopted: false,
    };
    this.add(p, r);
    p.held++;
    this.expiry.push(r);
    this.notify(peerId, p);
    return r;
  }

  /** The provider accepted the offer: held → busy. False when there is no live held reservation. */
  confirm(jobId: string, peerId: string, now: number): boolean {
    const p = this.peers.get(peerId);
    const r = p?.jobs.get(jobId);
    if (p === undefined || r === undefined) return false;
    if (r.state === 'busy') return true;
    if (r.expiresAt <= now) {
      this.drop(p, r);
      return false;
    }
    r.state = 'busy';
    r.confirmedAt = now;
    p.held--;
    p.busy++;
    this.notify(peerId, p);
    return true;
  }

  /** Completed, failed or withdrawn: frees the slot. */
  release(jobId: string, peerId: string): boolean {
    const p = this.peers.get(peerId);
    const r = p?.jobs.get(jobId);
    if (p === undefined || r === undefined) return false;
    this.drop(p, r);
    return true;
  }

  /** Frees every reservation of a job (cancelled, or finished everywhere). */
  releaseJob(jobId: string): Reservation[] {
    const list = this.jobs.get(jobId);
    if (list === undefined) return [];
    const all = list.slice();
    for (const r of all) this.release(r.jobId, r.peerId);
    return all;
  }

  /** Releases held reservations whose TTL passed; returns them (their offers should be withdrawn). */
  expire(now: number): Reservation[] {
    const out: Reservation[] = [];
    for (;;) {
      const r = this.expiry.peek();
      if (r === undefined || r.expiresAt > now) break;
      this.expiry.pop();
      const p = this.peers.get(r.peerId);
      if (p !== undefined && r.state === 'held' && p.jobs.get(r.jobId) === r) {
        this.drop(p, r);
        out.push(r);
      }
    }
    return out;
  }

  /**
   * Aligns the book with the jobs the provider reports running. Reported held ones become busy, reported
   * unknown ones are adopted as busy, and busy ones not reported are released unless confirmed less than
   * `graceMs` ago (the report may predate the confirmation). Held ones not reported stay until their TTL.
   */
  reconcile(peerId: string, busyJobIds: readonly string[], now: number, graceMs = 0): ReconcileResult {
    const result: ReconcileResult = { confirmed: [], adopted: [], released: [] };
    const p = this.peer(peerId);
    const reported = new Set(busyJobIds);
    for (const jobId of reported) {
      const r = p.jobs.get(jobId);
      if (r === undefined) {
        // Its value is unknown here; the caller reports such work through the advert's inFlightValue.
        const a: Reservation = {
          jobId,
          peerId,
          workUnits: 0n,
          pricePerUnit: 0n,
          state: 'busy',
          createdAt: now,
          expiresAt: now,
          confirmedAt: now,
          adopted: true,
        };
        this.add(p, a);
        p.busy++;
        result.adopted.push(jobId);
      } else if (r.state === 'held') {
        r.state = 'busy';
        r.confirmedAt = now;
        p.held--;
        p.busy++;
        result.confirmed.push(jobId);
      }
    }
    for (const r of [...p.jobs.values()]) {
      if (r.state !== 'busy' || reported.has(r.jobId)) continue;
      if (r.confirmedAt !== undefined && now - r.confirmedAt < graceMs) continue;
      this.remove(p, r);
      p.busy--;
      result.released.push(r.jobId);
    }
    this.notify(peerId, p);
    if (p.jobs.size === 0) this.peers.delete(peerId);
    return result;
  }

  private peer(peerId: string): PeerBook {
    let p = this.peers.get(peerId);
    if (p === undefined) {
      p = { held: 0, busy: 0, value: 0n, jobs: new Map() };
      this.peers.set(peerId, p);
    }
    return p;
  }

  private add(p: PeerBook, r: Reservation): void {
    p.jobs.set(r.jobId, r);
    if (this.trackValue) p.value += reservationValue(r);
    const list = this.jobs.get(r.jobId);
    if (list === undefined) this.jobs.set(r.jobId, [r]);
    else list.push(r);
    this.count++;
  }

  private remove(p: PeerBook, r: Reservation): void {
    p.jobs.delete(r.jobId);
    if (this.trackValue) p.value -= reservationValue(r);
    const list = this.jobs.get(r.jobId);
    if (list !== undefined) {
      const i = list.indexOf(r);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.jobs.delete(r.jobId);
    }
    this.count--;
  }

  private drop(p: PeerBook, r: Reservation): void {
    this.remove(p, r);
    if (r.state === 'held') p.held--;
    else p.busy--;
    this.notify(r.peerId, p);
    if (p.jobs.size === 0) this.peers.delete(r.peerId);
  }

  private notify(peerId: string, p: PeerBook): void {
    this.onUsage?.(peerId, p.held, p.busy, p.value);
  }
}
