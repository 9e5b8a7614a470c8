import { Injectable } from '@nestjs/common';
import type { StatsRollup } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

/** A bucket of the history: gauges averaged over its minutes, counts summed. */
export interface HistoryBucket {
  at: Date;
  minutes: number;
  /** null when no row of the bucket has it (rows rebuilt from the stored jobs) */
  providersOnline: number | null;
  slots: number | null;
  freeSlots: number | null;
  queueDepth: number;
  queueDepthMax: number;
  activeJobs: number;
  submitted: number;
  completed: number;
  failed: number;
}

/** The only code that reads or writes the `StatsRollup` table (StatsHistoryService owns it). */
@Injectable()
export class StatsHistoryRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Jobs submitted, completed and failed (or expired) in [from, to). */
  async jobCountsIn(from: Date, to: Date): Promise<{ submitted: number; completed: number; failed: number }> {
    const rows = await this.prisma.$queryRaw<{ submitted: number; completed: number; failed: number }[]>`
      SELECT
        (SELECT count(*) FROM "Job" WHERE "createdAt" >= ${from} AND "createdAt" < ${to})::int AS submitted,
        (SELECT count(*) FROM "Job" WHERE state = 'COMPLETED'
           AND "finishedAt" >= ${from} AND "finishedAt" < ${to})::int AS completed,
        (SELECT count(*) FROM "Job" WHERE state IN ('FAILED', 'EXPIRED')
           AND "finishedAt" >= ${from} AND "finishedAt" < ${to})::int AS failed`;
    return rows[0] ?? { submitted: 0, completed: 0, failed: 0 };
  }

  /** Writes a minute's row, replacing one written before for the same minute. */
  async upsert(row: StatsRollup): Promise<void> {
    const { minute, ...figures } = row;
    await this.prisma.statsRollup.upsert({ where: { minute }, create: row, update: figures });
  }

  /** Deletes the rows of minutes before `before`; returns how many. */
  async pruneBefore(before: Date): Promise<number> {
    const { count } = await this.prisma.statsRollup.deleteMany({ where: { minute: { lt: before } } });
    return count;
  }

  /**
   * Writes a row for every minute in [from, to) that has none, rebuilt from the stored jobs: the jobs
   * submitted, completed and failed in it (as `jobCountsIn` counts them), and the queue depth and the
   * active jobs at its end, from the job events (each state change moves one job between states). The
   * provider gauges are not stored anywhere, so they stay null. Minutes before the first job are
   * left out. Returns how many rows it wrote.
   */
  async backfill(from: Date, to: Date): Promise<number> {
    return this.prisma.$executeRaw`
      WITH first AS (
        SELECT greatest(date_trunc('minute', min("createdAt")), ${from}::timestamp) AS minute FROM "Job"
        HAVING count(*) > 0
      ),
      minutes AS (
        SELECT generate_series(first.minute, ${to}::timestamp - interval '1 minute', interval '1 minute') AS minute
        FROM first
      ),
      moves AS (
        SELECT date_trunc('minute', "createdAt") AS minute,
               sum((coalesce("toState" = 'QUEUED', false))::int - (coalesce("fromState" = 'QUEUED', false))::int) AS queued,
               sum((coalesce("toState" IN ('DISPATCHED', 'RUNNING', 'VERIFYING'), false))::int
                   - (coalesce("fromState" IN ('DISPATCHED', 'RUNNING', 'VERIFYING'), false))::int) AS active
        FROM "JobEvent" WHERE "toState" IS DISTINCT FROM "fromState" AND "createdAt" < ${to}
        GROUP BY 1
      ),
      before AS (
        SELECT coalesce(sum(queued), 0) AS queued, coalesce(sum(active), 0) AS active
        FROM moves WHERE minute < (SELECT min(minute) FROM minutes)
      ),
      gauges AS (
        SELECT m.minute,
               before.queued + sum(coalesce(mv.queued, 0)) OVER (ORDER BY m.minute) AS queued,
               before.active + sum(coalesce(mv.active, 0)) OVER (ORDER BY m.minute) AS active
        FROM minutes m CROSS JOIN before LEFT JOIN moves mv ON mv.minute = m.minute
      ),
      submitted AS (
        SELECT date_trunc('minute', "createdAt") AS minute, count(*) AS n FROM "Job"
        WHERE "createdAt" >= ${from} AND "createdAt" < ${to} GROUP BY 1
      ),
      finished AS (
        SELECT date_trunc('minute', "finishedAt") AS minute,
               count(*) FILTER (WHERE state = 'COMPLETED') AS completed,
               count(*) FILTER (WHERE state IN ('FAILED', 'EXPIRED')) AS failed
        FROM "Job" WHERE "finishedAt" >= ${from} AND "finishedAt" < ${to} GROUP BY 1
      )
      INSERT INTO "StatsRollup" (minute, "providersOnline", slots, "freeSlots", "queueDepth", "activeJobs",
                                 submitted, completed, failed)
      SELECT g.minute, NULL, NULL, NULL, greatest(g.queued, 0)::int, greatest(g.active, 0)::int,
             coalesce(s.n, 0)::int, coalesce(f.completed, 0)::int, coalesce(f.failed, 0)::int
      FROM gauges g LEFT JOIN submitted s ON s.minute = g.minute LEFT JOIN finished f ON f.minute = g.minute
      ON CONFLICT (minute) DO NOTHING`;
  }

  /** The rows since `since`, grouped into buckets of `bucketSeconds` (aligned on the Unix epoch). */
  buckets(since: Date, bucketSeconds: number): Promise<HistoryBucket[]> {
    return this.prisma.$queryRaw<HistoryBucket[]>`
      SELECT to_timestamp(floor(extract(epoch FROM minute) / ${bucketSeconds}) * ${bucketSeconds})
               AT TIME ZONE 'UTC' AS at,
             count(*)::int AS minutes,
             round(avg("providersOnline"), 2)::float8 AS "providersOnline",
             round(avg(slots), 2)::float8 AS slots,
             round(avg("freeSlots"), 2)::float8 AS "freeSlots",
             round(avg("queueDepth"), 2)::float8 AS "queueDepth",
             max("queueDepth")::int AS "queueDepthMax",
             round(avg("activeJobs"), 2)::float8 AS "activeJobs",
             sum(submitted)::int AS submitted,
             sum(completed)::int AS completed,
             sum(failed)::int AS failed
      FROM "StatsRollup" WHERE minute >= ${since}
      GROUP BY 1 ORDER BY 1`;
  }
}
