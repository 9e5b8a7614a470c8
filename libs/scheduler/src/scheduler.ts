// The engine as the coordinator's dispatch worker uses it: the provider index, the reservation book,
// placement and explain behind one object. Time is always passed in; randomness comes from the seeded
// PRNG; so the same calls with the same seed give the same decisions.
import { makeJobContext, REASON_BIT, violations, type JobContext } from './constraints.js';
import { explainJob, type Explanation } from './explain.js';
import type { ProviderEntry } from './index/provider-entry.js';
import { ProviderIndex, type IndexStats } from './index/provider-index.js';
import { naiveSelect } from './naive.js';
import { explore, Planner, scanLists, scoreFor, toSelection } from './placement.js';
import { ReservationBook, type ReconcileResult, type Reservation } from './reservations.js';
import { createRng, type Rng } from './rng.js';
import { resolveConfig, type SchedulerOptions } from './scoring.js';
import { TopK } from './top-k.js';
import type { JobRequest, PlacementResult, ProviderSnapshot, SchedulerConfig, Selection } from './types.js';

export interface SelectOptions {
  /** Apply the exploration share (default true). */
  explore?: boolean;
}

export interface TickResult {
  expiredProviders: string[];
  /** Held reservations that lapsed: withdraw their offers and re-place those jobs. */
  expiredReservations: Reservation[];
}

export interface ProviderUsage {
  held: number;
  busy: number;
  /** Slots a new offer may take. */
  available: number;
  /** Base units in flight: the snapshot's inFlightValue plus the book's reservations. */
  inFlightValue: bigint;
  /** Bonded stake minus what a pending slash froze. */
  usableStake: bigint;
}

export class Scheduler {
  readonly config: SchedulerConfig;
  readonly index: ProviderIndex;
  readonly reservations: ReservationBook;
  private readonly planner: Planner;
  private readonly rng: Rng;

  constructor(options: SchedulerOptions = {}) {
    this.config = resolveConfig(options);
    this.index = new ProviderIndex(this.config);
    this.reservations = new ReservationBook(
      (peerId, held, busy, value) => this.index.setUsage(peerId, held, busy, value),
      this.config.requireStake,
    );
    this.planner = new Planner(this.index);
    this.rng = createRng(this.config.seed);
  }

  /** Adds or refreshes a provider from its advert. */
  upsertProvider(snapshot: ProviderSnapshot, now: number): void {
    const { peerId } = snapshot;
    const usage = this.reservations.usage(peerId);
    const value = this.config.requireStake ? this.reservations.valueOf(peerId) : 0n;
    this.index.upsert(snapshot, now, { held: usage.held, busy: usage.busy, value });
  }

  /** Forgets a provider (its reservations stay in the book until released, expired or reconciled). */
  removeProvider(peerId: string): boolean {
    return this.index.remove(peerId);
  }

  /** Expires stale adverts and lapsed reservations. Call periodically. */
  tick(now: number): TickResult {
    return { expiredProviders: this.index.expire(now), expiredReservations: this.reservations.expire(now) };
  }

  /** Chooses providers for the job without reserving anything (dry run). */
  select(job: JobRequest, now: number, options: SelectOptions = {}): Selection {
    return this.selectWith(this.context(job, now), options.explore ?? true);
  }

  /** Chooses providers and holds a slot on each until now + reservationTtlMs; nothing is held unless all k are. */
  place(job: JobRequest, now: number): PlacementResult {
    this.reservations.expire(now);
    const ctx = this.context(job, now);
    const sel = this.selectWith(ctx, true);
    if (!sel.ok) return { jobId: job.jobId, placements: sel.placements, ok: false, examined: sel.examined };
    const ttl = this.config.reservationTtlMs;
    for (const p of sel.placements) {
      const e = this.index.get(p.peerId) as ProviderEntry;
      // The job's value goes in flight at once, so the next decision (same batch or not) counts it.
      const held = this.reservations.reserve(job.jobId, p.peerId, now, ttl, e.slots, job.workUnits, e.price);
      if (held === undefined) {
        // Cannot happen for an eligible provider; never leave a partial placement behind if it does.
        for (const q of sel.placements) if (q !== p) this.reservations.release(job.jobId, q.peerId);
        return { jobId: job.jobId, placements: [], ok: false, examined: sel.examined };
      }
    }
    return {
      jobId: job.jobId,
      placements: sel.placements,
      ok: true,
      examined: sel.examined,
      reservedUntil: now + ttl,
    };
  }

  /** The reference linear scan over every provider (no exploration); for benchmarks and tests. */
  selectNaive(job: JobRequest, now: number): Selection {
    return naiveSelect(this.index.values(), this.context(job, now));
  }

  /** Counts of excluded providers per reason and the cheapest change that makes the job placeable. */
  explain(job: JobRequest, now: number): Explanation {
    return explainJob(this.index.values(), this.context(job, now), this.config);
  }

  /** The provider accepted the offer. False when the reservation is gone (lapsed or released). */
  confirm(jobId: string, peerId: string, now: number): boolean {
    return this.reservations.confirm(jobId, peerId, now);
  }

  /** The attempt finished (either way): frees the slot. */
  complete(jobId: string, peerId: string): boolean {
    return this.reservations.release(jobId, peerId);
  }

  /** The attempt failed: frees the slot (re-place with the peer in excludePeers). */
  fail(jobId: string, peerId: string): boolean {
    return this.reservations.release(jobId, peerId);
  }

  /** Frees every slot held for the job. */
  cancel(jobId: string): Reservation[] {
    return this.reservations.releaseJob(jobId);
  }

  /** Aligns busy slots with the jobs the provider reports running. */
  reconcile(peerId: string, busyJobIds: readonly string[], now: number): ReconcileResult {
    return this.reservations.reconcile(peerId, busyJobIds, now, this.config.reconcileGraceMs);
  }

  usage(peerId: string): ProviderUsage | undefined {
    const e = this.index.get(peerId);
    return e === undefined
      ? undefined
      : {
          held: e.held,
          busy: e.busy,
          available: e.avail,
          inFlightValue: e.externalInFlight + this.reservations.valueOf(peerId),
          usableStake: e.stake - e.frozenStake,
        };
  }

  stats(): IndexStats & { reservations: number } {
    return { ...this.index.stats(), reservations: this.reservations.size };
  }

  /** Job context; peers already holding a slot for this job are excluded so a job never lands twice on one. */
  private context(job: JobRequest, now: number): JobContext {
    const holders = this.reservations.peersOf(job.jobId);
    const j =
      holders.length === 0 ? job : { ...job, excludePeers: [...(job.excludePeers ?? []), ...holders] };
    return makeJobContext(j, now, this.config, (m) => this.index.modelMaskOf(m));
  }

  private selectWith(ctx: JobContext, withExploration: boolean): Selection {
    const preferred = this.preferred(ctx);
    if (preferred === 'wait') return { placements: [], ok: false, examined: ctx.k };
    if (preferred !== null) return preferred;
    const top = new TopK(ctx.k);
    const { lists, exactBonus } = this.planner.lists(ctx);
    const stale: ProviderEntry[] = [];
    const examined = scanLists(lists, exactBonus, ctx, top, stale);
    for (const e of stale) this.index.settle(e);
    const explored = withExploration && explore(this.index, ctx, top, this.rng, this.config);
    return toSelection(top, explored, examined);
  }

  /**
   * The job's preferred providers when all k of them (distinct operators) can take it; `wait` when
   * some lack only a free slot and preferUntil has not passed; else null (placed as usual). A job
   * pinned to them (pinPeers) is never placed as usual: it waits for them instead.
   */
  private preferred(ctx: JobContext): Selection | 'wait' | null {
    const { preferPeers: peers, preferUntil, pinPeers } = ctx.job;
    if (peers === undefined) return null;
    const elsewhere = pinPeers === true ? 'wait' : null;
    if (peers.length !== ctx.k) return elsewhere;
    const top = new TopK(ctx.k);
    let full = false;
    for (const peerId of peers) {
      const e = this.index.get(peerId);
      if (e === undefined || top.hasOperator(e.operatorId)) return elsewhere;
      const violated = violations(e, ctx);
      if (violated === REASON_BIT.capacity) full = true;
      else if (violated !== 0) return elsewhere;
      top.offer(e, scoreFor(e, ctx));
    }
    if (!full) return toSelection(top, false, peers.length);
    return preferUntil !== undefined && ctx.now < preferUntil ? 'wait' : elsewhere;
  }
}
