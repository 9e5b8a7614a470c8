import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Job, Provider } from '#prisma';
import type { JobSpec, ProviderAdvert } from '#protocol';
import { Scheduler, type JobRequest, type PlacementResult, type ProviderSnapshot } from '#scheduler';
import { ProvidersRepository } from '../providers/providers.repository.js';
import { LOGGER } from '../logging/logger.js';

/** Persist an unchanged advert at most this often (heartbeats would otherwise write every 15 s). */
const PERSIST_EVERY_MS = 60_000;

/**
 * The live view of providers: every accepted advert updates the in-memory `libs/scheduler` index
 * (placement) and, when it changed or on a slow heartbeat, the Provider table (API and dashboard).
 */
@Injectable()
export class ProviderViewService {
  readonly scheduler = new Scheduler();
  private readonly persisted = new Map<string, { at: number; fingerprint: string }>();
  private readonly status = new Map<string, Provider['status']>();
  private readonly reputations = new Map<string, number>();
  private readonly firstSeen = new Map<string, number>();
  private readonly latest = new Map<string, { address: string; pricePerUnit: bigint }>();

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
    this.scheduler.upsertProvider(this.snapshot(advert, now), now);
  }

  /** The signing address and price of a provider's latest accepted advert. */
  provider(peerId: string): { address: string; pricePerUnit: bigint } | undefined {
    return this.latest.get(peerId);
  }

  /** An admin changed a provider's status (ban, drain): placement honours it at once. */
  setStatus(peerId: string, status: Provider['status']): void {
    this.status.set(peerId, status);
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
    return {
      peerId: advert.peerId,
      operatorId: advert.operatorId,
      backend: advert.backend,
      gpus: advert.gpus,
      gflops: advert.gflops,
      pricePerUnit: BigInt(advert.pricePerUnit),
      slots: advert.slots,
      freeSlots: advert.freeSlots,
      reputation: this.reputations.get(advert.peerId) ?? 0.5,
      region: advert.region,
      banned: status === 'BANNED',
      draining: status === 'DRAINING',
      expiresAt: advert.expiresAt,
      firstSeenAt: this.firstSeen.get(advert.peerId) ?? now,
    };
  }
}

/** The scheduler's view of a stored job. */
export function toJobRequest(job: Job, excludePeers: string[]): JobRequest {
  const spec = job.spec as unknown as JobSpec;
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
  };
}
