import { Injectable } from '@nestjs/common';
import type { JobState } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';
import type { Credit } from './proven-speed.js';

/** A provider due for a capacity probe, as it was claimed. */
export interface DueProvider {
  peerId: string;
  /** Advertised GFLOP/s. */
  gflops: number;
  pricePerUnit: bigint;
  measuredGflops: number | null;
}

/** How a probe job ended for its provider. */
export interface ProbeConclusion {
  state: JobState;
  /** Whether the provider's attempt succeeded (its answer matched the known one). */
  answered: boolean;
}

/**
 * The capacity columns of the Provider table (measuredGflops, measuredAt, capacityOverstatedAt,
 * probeDueAt): this repository is their one writer. It reads a probe job's outcome too.
 */
@Injectable()
export class CapacityRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * Claims up to `limit` live providers whose probe is due (never probed, or due by `now`), in one
   * statement: each one's next probe moves to `now` plus an exponential random delay of mean
   * `interval.meanMs` within [minMs, maxMs]; concurrent workers never claim the same provider.
   */
  async claimDue(
    now: Date,
    liveSince: Date,
    limit: number,
    interval: { meanMs: number; minMs: number; maxMs: number },
  ): Promise<DueProvider[]> {
    return this.prisma.$queryRaw<DueProvider[]>`
      WITH due AS (
        SELECT "peerId" FROM "Provider"
         WHERE status = 'ONLINE' AND "lastSeenAt" > ${liveSince}
           AND ("probeDueAt" IS NULL OR "probeDueAt" <= ${now})
         ORDER BY "probeDueAt" ASC NULLS FIRST, "peerId"
         LIMIT ${limit}
           FOR UPDATE SKIP LOCKED
      )
      UPDATE "Provider" p
         SET "probeDueAt" = ${now}::timestamptz + make_interval(secs => LEAST(${interval.maxMs / 1000}::float8,
               GREATEST(${interval.minMs / 1000}::float8, -${interval.meanMs / 1000}::float8 * ln(1 - random()))))
        FROM due
       WHERE p."peerId" = due."peerId"
      RETURNING p."peerId", p.gflops, p."pricePerUnit", p."measuredGflops"`;
  }

  /** Gives a claimed probe back (due at once), for a provider this process cannot reach. */
  async release(peerId: string): Promise<void> {
    await this.prisma.provider.updateMany({ where: { peerId }, data: { probeDueAt: null } });
  }

  /**
   * Stores a probe's measurement: the provider's credit (`credit`, see creditAfterProbe) and the flag
   * of an advert far above the probe (`overstated` sets it at `at`, or clears it).
   */
  async recordMeasurement(peerId: string, credit: Credit, at: Date, overstated: boolean): Promise<void> {
    await this.prisma.provider.updateMany({
      where: { peerId },
      data: {
        measuredGflops: credit.gflops,
        measuredAt: new Date(credit.at),
        capacityOverstatedAt: overstated ? at : null,
      },
    });
  }

  /** A provider's stored credit (null: never measured, or no such provider). */
  async credit(peerId: string): Promise<Credit | null> {
    const row = await this.prisma.provider.findUnique({
      where: { peerId },
      select: { measuredGflops: true, measuredAt: true },
    });
    if (!row || row.measuredGflops === null || row.measuredAt === null) return null;
    return { gflops: row.measuredGflops, at: row.measuredAt.getTime() };
  }

  /**
   * Replaces a provider's credit with `next` only while it still is `expected` (another worker may
   * have credited it meanwhile); false when it was not (read it again).
   */
  async replaceCredit(peerId: string, expected: Credit | null, next: Credit): Promise<boolean> {
    const { count } = await this.prisma.provider.updateMany({
      where: {
        peerId,
        measuredGflops: expected?.gflops ?? null,
        measuredAt: expected ? new Date(expected.at) : null,
      },
      data: { measuredGflops: next.gflops, measuredAt: new Date(next.at) },
    });
    return count > 0;
  }

  /** A probe job's state and whether `peerId`'s attempt on it succeeded (null: no such job). */
  async conclusion(jobId: string, peerId: string): Promise<ProbeConclusion | null> {
    const job = await this.prisma.job.findUnique({
      where: { id: jobId },
      select: { state: true, attempts: { where: { providerId: peerId }, select: { state: true } } },
    });
    if (!job) return null;
    return { state: job.state, answered: job.attempts.some((a) => a.state === 'SUCCEEDED') };
  }
}
