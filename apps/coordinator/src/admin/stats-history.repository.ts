import { Injectable } from '@nestjs/common';
import type { StatsRollup } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

/** A bucket of the history: gauges averaged over its minutes, counts summed. */
export interface HistoryBucket {
  at: Date;
  minutes: number;
  providersOnline: number;
  slots: number;
  freeSlots: number;
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
