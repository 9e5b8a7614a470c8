import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { AdminStatsService } from './admin-stats.service.js';
import { StatsHistoryRepository } from './stats-history.repository.js';
import type { HistoryDto, HistoryRange } from './dto/admin.dto.js';

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
/** How often the rollup job runs: once a minute, for the minute just finished. */
export const ROLLUP_EVERY_MS = MINUTE_MS;

/** Each range the dashboard offers: how far back, in buckets of how many seconds. */
export const HISTORY_SPANS: Record<HistoryRange, { spanMs: number; bucketSeconds: number }> = {
  '30m': { spanMs: 30 * MINUTE_MS, bucketSeconds: 60 },
  '24h': { spanMs: 24 * 60 * MINUTE_MS, bucketSeconds: 300 },
  '7d': { spanMs: 7 * 24 * 60 * MINUTE_MS, bucketSeconds: 3600 },
};

/**
 * The marketplace's history: one `StatsRollup` row per minute (the gauges of the overview sampled at
 * the minute's end, the jobs submitted and finished in it), kept for HISTORY_RETENTION_DAYS, read back
 * in buckets; minutes missing from it are rebuilt from the stored jobs (`backfill`). The only writer
 * of that table.
 */
@Injectable()
export class StatsHistoryService {
  private readonly retentionMs: number;

  constructor(
    private readonly repo: StatsHistoryRepository,
    private readonly stats: AdminStatsService,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.retentionMs = config.HISTORY_RETENTION_DAYS * DAY_MS;
  }

  /**
   * Writes the row of the minute that ended last before `now` (again if it was written already: the
   * counts come from the job table, so a repeat gives the same figures) and prunes the expired rows.
   */
  async rollUp(now = new Date()): Promise<{ minute: Date; pruned: number }> {
    const end = new Date(Math.floor(now.getTime() / MINUTE_MS) * MINUTE_MS);
    const minute = new Date(end.getTime() - MINUTE_MS);
    const [overview, counts] = await Promise.all([this.stats.overview(), this.repo.jobCountsIn(minute, end)]);
    await this.repo.upsert({
      minute,
      providersOnline: overview.providersOnline,
      slots: overview.slots,
      freeSlots: overview.freeSlots,
      queueDepth: overview.queueDepth,
      activeJobs: overview.activeJobs,
      ...counts,
    });
    const pruned = await this.repo.pruneBefore(new Date(now.getTime() - this.retentionMs));
    return { minute, pruned };
  }

  /**
   * Rebuilds the rows of the finished minutes of the retention window that have none (a fresh upgrade
   * to a version with history, or a time the workers were down) from the stored jobs and their
   * events: jobs submitted, completed and failed, queue depth and active jobs; the provider gauges
   * stay null (nothing stored says which providers were online). A row the rollup wrote is never
   * replaced. Returns how many rows it wrote.
   */
  async backfill(now = new Date()): Promise<number> {
    const end = new Date(Math.floor(now.getTime() / MINUTE_MS) * MINUTE_MS);
    const start = new Date(Math.ceil((now.getTime() - this.retentionMs) / MINUTE_MS) * MINUTE_MS);
    return this.repo.backfill(start, end);
  }

  async history(range: HistoryRange, now = new Date()): Promise<HistoryDto> {
    const { spanMs, bucketSeconds } = HISTORY_SPANS[range];
    const since = new Date(now.getTime() - spanMs);
    const buckets = await this.repo.buckets(since, bucketSeconds);
    return {
      range,
      since: since.toISOString(),
      bucketSeconds,
      retentionSeconds: this.retentionMs / 1000,
      points: buckets.map((b) => ({ ...b, at: b.at.toISOString() })),
    };
  }
}
