import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Job, Provider } from '#prisma';
import { BACKENDS, placeableBackends, type JobSpec, type ProviderAdvert } from '@gpumesh/protocol';
import {
  ConcurrencyWindows,
  ProviderBreakers,
  Scheduler,
  type BreakerSnapshot,
  type JobRequest,
  type LossResult,
  type PlacementResult,
  type ProviderSnapshot,
} from '@gpumesh/scheduler';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { ProvidersRepository } from '../providers/providers.repository.js';
import { ProviderStakesService, type ProviderStake } from '../providers/provider-stakes.service.js';
import { LOGGER } from '../logging/logger.js';
import { jobVerification, PREFERRED_PEERS_WAIT_MS } from '../pricing/policy.js';

/** Persist an unchanged advert at most this often (heartbeats would otherwise write every 15 s). */
const PERSIST_EVERY_MS = 60_000;
/**
 * ... and sooner when the stored advert would expire within this margin, so the lapsed-advert sweep
 * never takes a provider that keeps advertising OFFLINE (the agent's adverts live 60 s).
 */
const PERSIST_BEFORE_EXPIRY_MS = 30_000;

/** How often a process with a live view re-reads admin statuses (ban, drain) set by another process. */
const STATUS_REFRESH_EVERY_MS = 3_000;

/** How often a process sweeps provider rows whose advert lapsed to OFFLINE (idempotent SQL). */
export const LAPSED_SWEEP_EVERY_MS = 5_000;

/**
 * Adverts of peers not connected to this process are parked (not placeable) until the peer connects;
 * at most this many, oldest dropped first, so a flood of relayed ghost adverts holds bounded memory.
 */
export const MAX_PARKED_ADVERTS = 10_000;

/**
 * The live view of providers: every accepted advert updates the in-memory `libs/scheduler` index
 * (placement) and, when it changed or on a slow heartbeat, the Provider table (API and dashboard).
 * A provider's operator is the EVM address that signs its adverts (its staking address), whatever
 * operatorId it declares: distinct operators are distinct stakes. Where a staking contract is known,
 * stake gates placement (ProviderStakesService keeps the stakes fresh; the scheduler's reservation
 * book counts the value each provider has offered or running).
 *
 * Only peers directly connected to this process's libp2p node, with an unexpired advert, are
 * placeable: the advert of a peer that is not connected here (relayed ghosts) is parked, neither
 * stored nor offered work, until that peer connects. A per-provider circuit breaker (libs/scheduler
 * ProviderBreakers) keeps offers away from a provider that keeps losing attempts, and slow start
 * (ConcurrencyWindows) lets a provider hold only as many jobs at once as its results earned: a new
 * identity that accepts and then stalls holds two honest jobs, not the slots it advertises.
 */
@Injectable()
export class ProviderViewService implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly scheduler: Scheduler;
  private readonly snapshots = new Map<string, ProviderSnapshot>();
  private refreshTimer: NodeJS.Timeout | null = null;
  private readonly persisted = new Map<string, { at: number; fingerprint: string; expiresAt: number }>();
  private readonly status = new Map<string, Provider['status']>();
  private readonly reputations = new Map<string, number>();
  /** GFLOP/s measured by capacity probes (capacity/); placement credits min(advert, it). */
  private readonly measured = new Map<string, number>();
  private readonly firstSeen = new Map<string, number>();
  private readonly latest = new Map<string, { address: string; pricePerUnit: bigint }>();
  /** Slots each provider's latest advert claims (placement uses at most its slow-start window of them). */
  private readonly advertisedSlots = new Map<string, number>();
  private waiters: (() => void)[] = [];
  /** Peers with a direct connection to this process's libp2p node. */
  private readonly connected = new Set<string>();
  /** Latest adverts of peers not connected here (insertion order: oldest first). */
  private readonly parked = new Map<string, ProviderAdvert>();
  private sweepTimer: NodeJS.Timeout | null = null;
  readonly breakers = new ProviderBreakers();
  readonly windows = new ConcurrencyWindows();

  constructor(
    private readonly providers: ProvidersRepository,
    private readonly stakes: ProviderStakesService,
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.scheduler = new Scheduler({
      requireStake: stakes.gated,
      minStake: config.MIN_PROVIDER_STAKE,
      stakePerValue: config.STAKE_PER_INFLIGHT_VALUE,
      probationGflops: config.CAPACITY_PROBATION_GFLOPS,
    });
    stakes.onChange((address, stake) => this.onStake(address, stake));
  }

  async onAdvert(advert: ProviderAdvert, now = Date.now()): Promise<void> {
    if (!this.connected.has(advert.peerId)) {
      this.park(advert);
      return;
    }
    this.stakes.track(advert.address, now);
    const fingerprint = JSON.stringify([
      advert.backend,
      advert.gpus,
      advert.gflops,
      advert.pricePerUnit,
      advert.slots,
      advert.freeSlots,
      advert.region,
      advert.address,
    ]);
    const last = this.persisted.get(advert.peerId);
    if (
      !last ||
      last.fingerprint !== fingerprint ||
      now - last.at >= PERSIST_EVERY_MS ||
      last.expiresAt - now <= PERSIST_BEFORE_EXPIRY_MS
    ) {
      const row = await this.providers.upsertFromAdvert(advert, new Date(now), {
        stake: this.usableStake(advert.address),
        inFlightValue: this.scheduler.usage(advert.peerId)?.inFlightValue ?? 0n,
      });
      if (!this.connected.has(advert.peerId)) {
        // The connection dropped while the advert was stored: undo it (onDisconnect ran meanwhile).
        await this.providers.markOffline(advert.peerId);
        return;
      }
      this.persisted.set(advert.peerId, { at: now, fingerprint, expiresAt: advert.expiresAt });
      this.status.set(advert.peerId, row.status);
      this.reputations.set(advert.peerId, row.reputation);
      if (row.measuredGflops !== null) this.measured.set(advert.peerId, row.measuredGflops);
      if (!this.firstSeen.has(advert.peerId)) this.firstSeen.set(advert.peerId, row.createdAt.getTime());
    }
    this.latest.set(advert.peerId, { address: advert.address, pricePerUnit: BigInt(advert.pricePerUnit) });
    const snapshot = this.snapshot(advert, now);
    this.snapshots.set(advert.peerId, snapshot);
    this.scheduler.upsertProvider(snapshot, now);
    this.capacityChanged();
  }

  /**
   * A peer connected to this process's node: an advert it sent (or that was relayed) before is
   * placeable now, if it has not expired.
   */
  async onConnect(peerId: string, now = Date.now()): Promise<void> {
    this.connected.add(peerId);
    const advert = this.parked.get(peerId);
    if (!advert) return;
    this.parked.delete(peerId);
    if (advert.expiresAt > now) await this.onAdvert(advert, now);
  }

  /** Whether the peer is directly connected to this process's node. */
  isConnected(peerId: string): boolean {
    return this.connected.has(peerId);
  }

  /** Parked adverts (of peers not connected here), for tests and metrics. */
  parkedCount(): number {
    return this.parked.size;
  }

  private park(advert: ProviderAdvert): void {
    this.parked.delete(advert.peerId); // re-inserted last: the newest advert is evicted last
    this.parked.set(advert.peerId, advert);
    if (this.parked.size > MAX_PARKED_ADVERTS) {
      const oldest = this.parked.keys().next().value;
      if (oldest !== undefined) this.parked.delete(oldest);
    }
    // A peer that was placeable and lost its connection is removed by onDisconnect; this is the
    // belt to those braces (an advert racing the disconnect event).
    if (this.scheduler.removeProvider(advert.peerId)) {
      this.snapshots.delete(advert.peerId);
      this.advertisedSlots.delete(advert.peerId);
    }
  }

  /** A provider's connection dropped: stop placing work on it until it reconnects and adverts again. */
  async onDisconnect(peerId: string): Promise<void> {
    this.connected.delete(peerId);
    this.parked.delete(peerId);
    this.windows.release(peerId);
    const stored = this.persisted.delete(peerId);
    const placeable = this.scheduler.removeProvider(peerId);
    if (!stored && !placeable) return;
    this.snapshots.delete(peerId);
    this.advertisedSlots.delete(peerId);
    await this.providers.markOffline(peerId);
  }

  /** Resolves when a slot may have freed (a result, a failure, an advert), or after `timeoutMs`. */
  waitForCapacity(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.waiters.push(done);
    });
  }

  confirm(jobId: string, peerId: string, now: number): void {
    this.scheduler.confirm(jobId, peerId, now);
  }

  complete(jobId: string, peerId: string): void {
    this.scheduler.complete(jobId, peerId);
    this.capacityChanged();
  }

  fail(jobId: string, peerId: string): void {
    this.scheduler.fail(jobId, peerId);
    this.capacityChanged();
  }

  cancel(jobId: string): void {
    if (this.scheduler.cancel(jobId).length > 0) this.capacityChanged();
  }

  /** The provider lost an attempt through its own fault: counts toward opening its breaker. */
  attemptLost(peerId: string, now = Date.now()): LossResult {
    this.windows.recordLoss(peerId);
    this.applyWindow(peerId, now);
    const result = this.breakers.recordLoss(peerId, now);
    if (result.opened) {
      this.logger.warn(
        { peerId, cooldownMs: result.cooldownMs, openBreakers: this.breakers.openCount() },
        'provider circuit breaker opened: no offers until the cooldown ends',
      );
    }
    return result;
  }

  /** The provider returned a result: a half-open breaker closes. */
  attemptSucceeded(peerId: string, now = Date.now()): void {
    this.windows.recordSuccess(peerId);
    if (this.applyWindow(peerId, now)) this.capacityChanged();
    const before = this.breakers.state(peerId, now);
    if (this.breakers.recordSuccess(peerId, now) === 'closed' && before === 'half-open') {
      this.logger.info({ peerId }, 'provider circuit breaker closed: the probe succeeded');
    }
  }

  /** The attempt ended saying nothing about the provider (a rejection): a half-open probe is freed. */
  /** Re-scores the provider with the slots its window allows; true when they changed. */
  private applyWindow(peerId: string, now: number): boolean {
    const snapshot = this.snapshots.get(peerId);
    const advertised = this.advertisedSlots.get(peerId);
    if (!snapshot || advertised === undefined) return false;
    const slots = this.windows.usableSlots(peerId, advertised);
    if (slots === snapshot.slots) return false;
    const updated = { ...snapshot, slots, freeSlots: Math.min(slots, snapshot.freeSlots) };
    this.snapshots.set(peerId, updated);
    this.scheduler.upsertProvider(updated, now);
    return true;
  }

  attemptNeutral(peerId: string): void {
    this.breakers.recordNeutral(peerId);
  }

  /** How this process's placement sees a provider (admin provider detail). */
  placementState(
    peerId: string,
    now = Date.now(),
  ): {
    connected: boolean;
    placeable: boolean;
    breaker: BreakerSnapshot['state'];
    breakerLosses: number;
    breakerOpenUntil: string | null;
    concurrencyWindow: number;
    advertisedSlots: number | null;
  } {
    const breaker = this.breakers.snapshot(peerId, now);
    return {
      connected: this.connected.has(peerId),
      placeable: this.snapshots.has(peerId),
      breaker: breaker.state,
      breakerLosses: breaker.losses,
      breakerOpenUntil: breaker.openUntil > 0 ? new Date(breaker.openUntil).toISOString() : null,
      concurrencyWindow: this.windows.window(peerId),
      advertisedSlots: this.advertisedSlots.get(peerId) ?? null,
    };
  }

  breaker(peerId: string, now = Date.now()): BreakerSnapshot {
    return this.breakers.snapshot(peerId, now);
  }

  private capacityChanged(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** A stake read changed an address's stake: every peer of that operator is re-scored at once. */
  private onStake(address: string, stake: ProviderStake): void {
    const now = Date.now();
    const peers: string[] = [];
    for (const [peerId, snapshot] of this.snapshots) {
      if (snapshot.operatorId !== address) continue;
      const updated = { ...snapshot, stake: stake.bonded, frozenStake: stake.frozen };
      this.snapshots.set(peerId, updated);
      this.scheduler.upsertProvider(updated, now);
      peers.push(peerId);
    }
    void this.providers
      .setStake(address, stake.bonded - stake.frozen)
      .catch((err: unknown) => this.logger.warn({ err, address }, 'could not store a provider stake'));
    if (peers.length > 0) this.capacityChanged(); // a job waiting for stake may fit now
  }

  /** Usable stake of an address as placement sees it: null when stake does not gate placement here. */
  usableStake(address: string): bigint | null {
    if (!this.stakes.gated) return null;
    const stake = this.stakes.stakeOf(address);
    return stake === undefined ? 0n : stake.bonded - stake.frozen;
  }

  /** Base units offered to or running on the provider as this process counts them (undefined: unknown peer). */
  inFlightValue(peerId: string): bigint | undefined {
    return this.scheduler.usage(peerId)?.inFlightValue;
  }

  /** Stake and in-flight value of a provider as this process's placement sees them. */
  liveFigures(peerId: string, address: string): { stake: bigint | null; inFlightValue: bigint | undefined } {
    return { stake: this.usableStake(address), inFlightValue: this.inFlightValue(peerId) };
  }

  /** The signing address and price of a provider's latest accepted advert. */
  provider(peerId: string): { address: string; pricePerUnit: bigint } | undefined {
    return this.latest.get(peerId);
  }

  /** An admin changed a provider's status (ban, drain): placement honours it at once. */
  setStatus(peerId: string, status: Provider['status']): void {
    const before = this.status.get(peerId);
    this.status.set(peerId, status);
    const snapshot = this.snapshots.get(peerId);
    if (snapshot && before !== status) {
      const updated = { ...snapshot, banned: status === 'BANNED', draining: status === 'DRAINING' };
      this.snapshots.set(peerId, updated);
      this.scheduler.upsertProvider(updated, Date.now());
      this.capacityChanged(); // an unban or undrain may let a waiting job be placed
    }
  }

  /** A reputation change (ReputationService): placement scores the provider by it at once. */
  setReputation(peerId: string, score: number): void {
    this.reputations.set(peerId, score);
    const snapshot = this.snapshots.get(peerId);
    if (snapshot && snapshot.reputation !== score) {
      const updated = { ...snapshot, reputation: score };
      this.snapshots.set(peerId, updated);
      this.scheduler.upsertProvider(updated, Date.now());
    }
  }

  /** A capacity probe measured the provider's speed: placement credits min(advert, it) at once. */
  setMeasuredGflops(peerId: string, gflops: number): void {
    this.measured.set(peerId, gflops);
    const snapshot = this.snapshots.get(peerId);
    if (snapshot && snapshot.measuredGflops !== gflops) {
      const updated = { ...snapshot, measuredGflops: gflops };
      this.snapshots.set(peerId, updated);
      this.scheduler.upsertProvider(updated, Date.now());
    }
  }

  /** The provider's reputation as placement sees it (neutral 0.5 when unknown). */
  reputation(peerId: string): number {
    return this.reputations.get(peerId) ?? 0.5;
  }

  isBanned(peerId: string): boolean {
    return this.status.get(peerId) === 'BANNED';
  }

  /** The advertised speed of a provider (GFLOP/s), for the slow-vs-advertised check. */
  gflops(peerId: string): number | undefined {
    return this.snapshots.get(peerId)?.gflops;
  }

  /** Every live peer run by the same operators as `peerIds` (a tie-break must come from another operator). */
  peersOfSameOperators(peerIds: readonly string[]): string[] {
    const operators = new Set<string>();
    for (const id of peerIds) {
      const op = this.snapshots.get(id)?.operatorId;
      if (op) operators.add(op);
    }
    const peers = new Set(peerIds);
    for (const [id, snap] of this.snapshots) if (operators.has(snap.operatorId)) peers.add(id);
    return [...peers];
  }

  onApplicationBootstrap(): void {
    this.sweepTimer = setInterval(
      () =>
        void this.sweepLapsed().catch((err: unknown) =>
          this.logger.warn({ err }, 'could not sweep lapsed provider adverts'),
        ),
      LAPSED_SWEEP_EVERY_MS,
    );
    this.sweepTimer.unref();
    this.refreshTimer = setInterval(
      () =>
        void this.refreshStatuses()
          .then(() => this.refreshInFlightElsewhere())
          .catch(() => undefined),
      STATUS_REFRESH_EVERY_MS,
    );
    this.refreshTimer.unref();
  }

  onApplicationShutdown(): void {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
  }

  /**
   * Provider rows whose advert lapsed go OFFLINE (any process may run it; the SQL is idempotent), so
   * the public list and the dashboard drop a provider within one advert lifetime of its last advert.
   */
  async sweepLapsed(now = new Date()): Promise<number> {
    const lapsed = await this.providers.markLapsed(now);
    if (lapsed > 0) this.logger.info({ lapsed }, 'providers whose advert lapsed marked OFFLINE');
    return lapsed;
  }

  /**
   * Re-reads the admin statuses (BANNED, DRAINING) of the providers this process places work on, so
   * a ban made through another (api-only) process reaches placement within a few seconds.
   */
  async refreshStatuses(): Promise<void> {
    // a banned peer is refused a connection, so it has no snapshot: its ban is re-read too (an unban)
    const heldHere = [...this.status].filter(([, s]) => s === 'BANNED').map(([peerId]) => peerId);
    if (this.snapshots.size === 0 && heldHere.length === 0) return;
    const held = await this.providers.list({ statuses: ['BANNED', 'DRAINING'], limit: 10_000 });
    const heldStatus = new Map(held.map((p) => [p.peerId, p.status]));
    for (const peerId of new Set([...this.snapshots.keys(), ...heldHere])) {
      const current = this.status.get(peerId) ?? 'ONLINE';
      const stored = heldStatus.get(peerId);
      if (stored) this.setStatus(peerId, stored);
      else if (current === 'BANNED' || current === 'DRAINING') this.setStatus(peerId, 'ONLINE');
    }
  }

  /**
   * Where stake gates placement and several workers place work, each one's reservation book counts
   * only its own offers: the value other workers have in flight on a provider comes from the open
   * attempts in the database (all workers' minus what this book holds), so a provider's collateral
   * covers everything it holds, whichever worker offered it. Refreshed with the statuses.
   */
  async refreshInFlightElsewhere(now = Date.now()): Promise<void> {
    if (!this.stakes.gated || this.snapshots.size === 0) return;
    const values = await this.providers.openAttemptValues([...this.snapshots.keys()]);
    for (const [peerId, snapshot] of this.snapshots) {
      const own =
        (this.scheduler.usage(peerId)?.inFlightValue ?? snapshot.inFlightValue) - snapshot.inFlightValue;
      const all = values.get(peerId) ?? 0n;
      const elsewhere = all > own ? all - own : 0n;
      if (elsewhere === snapshot.inFlightValue) continue;
      const updated = { ...snapshot, inFlightValue: elsewhere };
      this.snapshots.set(peerId, updated);
      this.scheduler.upsertProvider(updated, now);
      if (elsewhere < snapshot.inFlightValue) this.capacityChanged();
    }
  }

  /** Places a job on `redundancy` providers of distinct operators and reserves their slots. */
  place(job: Job, now: number, excludePeers: string[] = []): PlacementResult {
    this.scheduler.tick(now);
    const blocked = this.breakers.blocked(now);
    const exclude = blocked.length === 0 ? excludePeers : [...excludePeers, ...blocked];
    const placement = this.scheduler.place(toJobRequest(job, exclude), now);
    if (placement.ok) for (const p of placement.placements) this.breakers.offered(p.peerId, now);
    return placement;
  }

  /** Why the job can or cannot be placed now, `excludePeers` (those that failed it) left out. */
  explain(job: Job, now: number, excludePeers: string[] = []): ReturnType<Scheduler['explain']> {
    return this.scheduler.explain(toJobRequest(job, excludePeers), now);
  }

  providerCount(): number {
    return this.scheduler.stats().providers;
  }

  private snapshot(advert: ProviderAdvert, now: number): ProviderSnapshot {
    const status = this.status.get(advert.peerId) ?? 'ONLINE';
    // The advert's free slots already exclude the jobs this coordinator has running there, which the
    // scheduler counts as busy itself: add them back so they are not subtracted twice.
    const busy = this.scheduler.usage(advert.peerId)?.busy ?? 0;
    const stake = this.stakes.stakeOf(advert.address);
    this.advertisedSlots.set(advert.peerId, advert.slots);
    const slots = this.windows.usableSlots(advert.peerId, advert.slots);
    return {
      peerId: advert.peerId,
      // The signing (staking) address, not the self-declared operatorId: one stake, one operator.
      operatorId: advert.address.toLowerCase(),
      backend: advert.backend,
      gpus: advert.gpus,
      gflops: advert.gflops,
      measuredGflops: this.measured.get(advert.peerId),
      pricePerUnit: BigInt(advert.pricePerUnit),
      slots,
      freeSlots: Math.min(slots, advert.freeSlots + busy),
      reputation: this.reputations.get(advert.peerId) ?? 0.5,
      region: advert.region,
      banned: status === 'BANNED',
      draining: status === 'DRAINING',
      expiresAt: advert.expiresAt,
      firstSeenAt: this.firstSeen.get(advert.peerId) ?? now,
      // Unknown until the first read: no stake, so a gated scheduler offers it nothing yet.
      stake: stake?.bonded ?? 0n,
      frozenStake: stake?.frozen ?? 0n,
      // What this process has offered to or runs on the provider is in the scheduler's reservation
      // book, which adds it itself; what other workers hold comes from refreshInFlightElsewhere.
      inFlightValue: this.snapshots.get(advert.peerId)?.inFlightValue ?? 0n,
    };
  }
}

/**
 * A job's requirements as placement applies them: its backends narrowed to those that can run it at
 * all (an int32 matmul never goes to wasm, see placeableBackends; a job allowing none is refused at
 * submit, and is left as it asked here).
 */
function runnableRequirements(spec: JobSpec): JobRequest['requirements'] {
  const requirements = spec.requirements ?? {};
  if (spec.inputs === undefined) return requirements;
  const backends = placeableBackends(spec);
  if (backends.length === 0 || backends.length === BACKENDS.length) return requirements;
  return { ...requirements, backends: [...backends] };
}

/** The scheduler's view of a stored job (a canary's preferred providers included). */
export function toJobRequest(job: Job, excludePeers: string[]): JobRequest {
  const spec = job.spec as unknown as JobSpec;
  const { preferPeers, pinPeers } = jobVerification(job);
  return {
    jobId: job.id,
    accountId: job.accountId,
    priority: job.priority > 0 ? 'high' : job.priority < 0 ? 'low' : 'normal',
    workUnits: job.workUnits,
    requirements: runnableRequirements(spec),
    maxPricePerUnit: job.pricePerUnit,
    redundancy: job.redundancy,
    deadlineAt: job.deadlineAt.getTime(),
    excludePeers,
    ...(preferPeers ? { preferPeers, preferUntil: job.createdAt.getTime() + PREFERRED_PEERS_WAIT_MS } : {}),
    ...(preferPeers && pinPeers ? { pinPeers: true } : {}),
  };
}
