import { Injectable } from '@nestjs/common';
import type { JobState } from '#prisma';
import { PrismaService } from '../../database/prisma.service.js';

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

  /** Stores a measurement; `overstated` sets (or clears) the flag of an advert far above it. */
  async recordMeasurement(peerId: string, gflops: number, at: Date, overstated: boolean): Promise<void> {
    await this.prisma.provider.updateMany({
      where: { peerId },
      data: { measuredGflops: gflops, measuredAt: at, capacityOverstatedAt: overstated ? at : null },
    });
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
