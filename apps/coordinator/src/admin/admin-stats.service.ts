import { Injectable, type MessageEvent } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { Observable } from 'rxjs';
import { QueueName } from '../queue/queue.constants.js';
import { AdminRepository } from './admin.repository.js';
import type { CountByLabelDto, OverviewDto } from './dto/admin.dto.js';

/** A provider counts as online when its last advert is this recent (as placement does). */
export const ONLINE_WINDOW_MS = 120_000;
const RATE_WINDOW_MS = 60 * 60_000;
const SERIES_WINDOW_MS = 30 * 60_000;
/** Live stream period; one computation is shared by every subscriber within it. */
export const STATS_EVERY_MS = 2_000;

interface GpuLike {
  model?: unknown;
}

/** The overview figures of the dashboard, computed from the database (and the dispatch queue). */
@Injectable()
export class AdminStatsService {
  private cached: { at: number; value: Promise<OverviewDto> } | null = null;

  constructor(
    private readonly repo: AdminRepository,
    @InjectQueue(QueueName.Dispatch) private readonly dispatch: Queue,
  ) {}

  /** The current figures; concurrent callers within ~1.5 s share one computation. */
  overview(): Promise<OverviewDto> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < STATS_EVERY_MS - 500) return this.cached.value;
    const value = this.compute(new Date(now));
    this.cached = { at: now, value };
    value.catch(() => {
      if (this.cached?.value === value) this.cached = null;
    });
    return value;
  }

  /** Server-sent events: a `stats` event at once and then every ~2 s; a failed tick sends `stats-error`. */
  stream(): Observable<MessageEvent> {
    return new Observable<MessageEvent>((subscriber) => {
      let closed = false;
      const tick = (): void => {
        this.overview().then(
          (data) => {
            if (!closed) subscriber.next({ type: 'stats', data });
          },
          (err: unknown) => {
            if (!closed) {
              subscriber.next({
                type: 'stats-error',
                data: { message: err instanceof Error ? err.message : String(err) },
              });
            }
          },
        );
      };
      tick();
      const timer = setInterval(tick, STATS_EVERY_MS);
      return () => {
        closed = true;
        clearInterval(timer);
      };
    });
  }

  private async compute(now: Date): Promise<OverviewDto> {
    const onlineSince = new Date(now.getTime() - ONLINE_WINDOW_MS);
    const rateSince = new Date(now.getTime() - RATE_WINDOW_MS);
    const [statuses, hardware, counts, finished, latency, series, epoch, queue] = await Promise.all([
      this.repo.providerStatusCounts(onlineSince, now),
      this.repo.onlineHardware(onlineSince, now),
      this.repo.jobCounts(new Date(now.getTime() - 60_000)),
      this.repo.finishedCounts(rateSince),
      this.repo.latency(rateSince),
      this.repo.jobsPerMinute(new Date(now.getTime() - SERIES_WINDOW_MS)),
      this.repo.currentEpoch(),
      this.queueCounts(),
    ]);
    const epochStart =
      epoch === null
        ? new Date(0)
        : epoch.state === 'OPEN'
          ? epoch.startedAt
          : (epoch.closedAt ?? epoch.startedAt);
    const earnings = await this.repo.earningsSince(epochStart);

    const byState = new Map(finished.map((f) => [f.state, f]));
    const completed = byState.get('COMPLETED')?.n ?? 0;
    const failed = byState.get('FAILED')?.n ?? 0;
    const expired = byState.get('EXPIRED')?.n ?? 0;
    const disagreed = byState.get('FAILED')?.disagree ?? 0;
    const decided = completed + failed + expired;
    const verified = completed + disagreed;

    return {
      at: now.toISOString(),
      providersOnline: statuses.find((s) => s.status === 'ONLINE')?.fresh ?? 0,
      providersByStatus: statuses.map((s) => ({ label: s.status, count: s.n })),
      gpusByModel: gpusByModel(hardware),
      slots: hardware.reduce((sum, p) => sum + p.slots, 0),
      freeSlots: hardware.reduce((sum, p) => sum + p.freeSlots, 0),
      jobsPerMinute: counts.lastMinute,
      jobsPerMinuteSeries: series.map((s) => ({
        minute: s.minute.toISOString(),
        submitted: s.submitted,
        completed: s.completed,
      })),
      windowSeconds: RATE_WINDOW_MS / 1000,
      finished: decided,
      successRate: decided > 0 ? completed / decided : null,
      verificationFailureRate: verified > 0 ? disagreed / verified : null,
      queueDepth: counts.queued,
      activeJobs: counts.active,
      dispatchQueue: queue,
      latencyP50Seconds: latency.n > 0 ? latency.p50 : null,
      latencyP99Seconds: latency.n > 0 ? latency.p99 : null,
      epoch: epoch?.id ?? null,
      epochStartedAt: epochStart.toISOString(),
      earningsThisEpoch: earnings.providers.toString(),
      feesThisEpoch: earnings.fees.toString(),
      feesChargedThisEpoch: earnings.feesCharged.toString(),
      canaryShareThisEpoch: earnings.canaryShare.toString(),
    };
  }

  private async queueCounts(): Promise<Record<string, number> | null> {
    try {
      return await this.dispatch.getJobCounts('waiting', 'active', 'delayed', 'failed');
    } catch {
      return null; // Redis down: /health says so; the database figures still show
    }
  }
}

/** Counts GPUs of online providers by model; CPU-only providers count as "CPU (<backend>)". */
export function gpusByModel(providers: { backend: string; gpus: unknown }[]): CountByLabelDto[] {
  const counts = new Map<string, number>();
  for (const p of providers) {
    const gpus = Array.isArray(p.gpus) ? (p.gpus as GpuLike[]) : [];
    if (gpus.length === 0) {
      const label = `CPU (${p.backend})`;
      counts.set(label, (counts.get(label) ?? 0) + 1);
      continue;
    }
    for (const gpu of gpus) {
      const label = typeof gpu.model === 'string' && gpu.model.length > 0 ? gpu.model : 'unknown GPU';
      counts.set(label, (counts.get(label) ?? 0) + 1);
    }
  }
  return [...counts.entries()]
    .map(([label, count]) => ({ label, count }))
    .sort((a, b) => b.count - a.count || a.label.localeCompare(b.label));
}
