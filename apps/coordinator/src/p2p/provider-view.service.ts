import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Job, Provider } from '#prisma';
import type { JobSpec, ProviderAdvert } from '#protocol';
import { Scheduler, type JobRequest, type PlacementResult, type ProviderSnapshot } from '#scheduler';
import { ProvidersRepository } from '../providers/providers.repository.js';
import { LOGGER } from '../logging/logger.js';
import { jobVerification, PREFERRED_PEERS_WAIT_MS } from '../verification/policy.js';

/** Persist an unchanged advert at most this often (heartbeats would otherwise write every 15 s). */
const PERSIST_EVERY_MS = 60_000;

/** How often a process with a live view re-reads admin statuses (ban, drain) set by another process. */
const STATUS_REFRESH_EVERY_MS = 3_000;

/**
 * The live view of providers: every accepted advert updates the in-memory `libs/scheduler` index
 * (placement) and, when it changed or on a slow heartbeat, the Provider table (API and dashboard).
 */
@Injectable()
export class ProviderViewService implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly scheduler = new Scheduler();
  private readonly snapshots = new Map<string, ProviderSnapshot>();
  private refreshTimer: NodeJS.Timeout | null = null;
  private readonly persisted = new Map<string, { at: number; fingerprint: string }>();
  private readonly status = new Map<string, Provider['status']>();
  private readonly reputations = new Map<string, number>();
  private readonly firstSeen = new Map<string, number>();
  private readonly latest = new Map<string, { address: string; pricePerUnit: bigint }>();
  private waiters: (() => void)[] = [];

  constructor(
    private readonly providers: ProvidersRepository,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onAdvert(advert: ProviderAdvert, now = Date.now()): Promise<void> {
    const fingerprint = JSON.stringify([
      advert.backend,
      advert.gpus,
      advert.gflops,
      advert.pricePerUnit,
      advert.slots,
      advert.freeSlots,
      advert.region,
      advert.operatorId,
    ]);
    const last = this.persisted.get(advert.peerId);
    if (!last || last.fingerprint !== fingerprint || now - last.at >= PERSIST_EVERY_MS) {
      const row = await this.providers.upsertFromAdvert(advert, new Date(now));
      this.persisted.set(advert.peerId, { at: now, fingerprint });
      this.status.set(advert.peerId, row.status);
      this.reputations.set(advert.peerId, row.reputation);
      if (!this.firstSeen.has(advert.peerId)) this.firstSeen.set(advert.peerId, row.createdAt.getTime());
    }
    this.latest.set(advert.peerId, { address: advert.address, pricePerUnit: BigInt(advert.pricePerUnit) });
    const snapshot = this.snapshot(advert, now);
    this.snapshots.set(advert.peerId, snapshot);
    this.scheduler.upsertProvider(snapshot, now);
    this.capacityChanged();
  }

  /** A provider's connection dropped: stop placing work on it until its next advert. */
  async onDisconnect(peerId: string): Promise<void> {
    if (!this.scheduler.removeProvider(peerId)) return;
    this.snapshots.delete(peerId);
    this.persisted.delete(peerId);
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

  private capacityChanged(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
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
    this.refreshTimer = setInterval(
      () => void this.refreshStatuses().catch(() => undefined),
      STATUS_REFRESH_EVERY_MS,
    );
    this.refreshTimer.unref();
  }

  onApplicationShutdown(): void {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
  }

  /**
   * Re-reads the admin statuses (BANNED, DRAINING) of the providers this process places work on, so
   * a ban made through another (api-only) process reaches placement within a few seconds.
   */
  async refreshStatuses(): Promise<void> {
    if (this.snapshots.size === 0) return;
    const held = await this.providers.list({ statuses: ['BANNED', 'DRAINING'], limit: 10_000 });
    const heldStatus = new Map(held.map((p) => [p.peerId, p.status]));
    for (const peerId of this.snapshots.keys()) {
      const current = this.status.get(peerId) ?? 'ONLINE';
      const stored = heldStatus.get(peerId);
      if (stored) this.setStatus(peerId, stored);
      else if (current === 'BANNED' || current === 'DRAINING') this.setStatus(peerId, 'ONLINE');
    }
  }

  /** Places a job on `redundancy` providers of distinct operators and reserves their slots. */
  place(job: Job, now: number, excludePeers: string[] = []): PlacementResult {
    this.scheduler.tick(now);
    return this.scheduler.place(toJobRequest(job, excludePeers), now);
  }

  explain(job: Job, now: number): ReturnType<Scheduler['explain']> {
    return this.scheduler.explain(toJobRequest(job, []), now);
  }

  providerCount(): number {
    return this.scheduler.stats().providers;
  }

  private snapshot(advert: ProviderAdvert, now: number): ProviderSnapshot {
    const status = this.status.get(advert.peerId) ?? 'ONLINE';
    // The advert's free slots already exclude the jobs this coordinator has running there, which the
    // scheduler counts as busy itself: add them back so they are not subtracted twice.
    const busy = this.scheduler.usage(advert.peerId)?.busy ?? 0;
    return {
      peerId: advert.peerId,
      operatorId: advert.operatorId,
      backend: advert.backend,
      gpus: advert.gpus,
      gflops: advert.gflops,
      pricePerUnit: BigInt(advert.pricePerUnit),
      slots: advert.slots,
      freeSlots: Math.min(advert.slots, advert.freeSlots + busy),
      reputation: this.reputations.get(advert.peerId) ?? 0.5,
      region: advert.region,
      banned: status === 'BANNED',
      draining: status === 'DRAINING',
      expiresAt: advert.expiresAt,
      firstSeenAt: this.firstSeen.get(advert.peerId) ?? now,
      stake: 0n,
      inFlightValue: 0n,
    };
  }
}

/** The scheduler's view of a stored job (a canary's preferred providers included). */
export function toJobRequest(job: Job, excludePeers: string[]): JobRequest {
  const spec = job.spec as unknown as JobSpec;
  const { preferPeers } = jobVerification(job);
  return {
    jobId: job.id,
    accountId: job.accountId,
    priority: job.priority > 0 ? 'high' : job.priority < 0 ? 'low' : 'normal',
    workUnits: job.workUnits,
    requirements: spec.requirements ?? {},
    maxPricePerUnit: job.pricePerUnit,
    redundancy: job.redundancy,
    deadlineAt: job.deadlineAt.getTime(),
    excludePeers,
    ...(preferPeers ? { preferPeers, preferUntil: job.createdAt.getTime() + PREFERRED_PEERS_WAIT_MS } : {}),
  };
}
