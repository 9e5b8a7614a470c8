import { Injectable } from '@nestjs/common';
import type { Prisma, ReputationEvent } from '#prisma';
import type { Tx } from '../ledger/ledger.repository.js';
import { PrismaService } from '../database/prisma.service.js';
import { GroupCommit } from '../common/group-commit.js';

export interface ReputationChange {
  peerId: string;
  kind: string;
  jobId?: string;
  detail?: Record<string, unknown>;
  /** The new score from the stored one and the time of the provider's last reputation event. */
  next: (stored: number, lastEventAt: Date | null) => number;
  /** Ban the provider in the same transaction (status, bannedAt, banReason). */
  ban?: string;
  /** Lift a ban in the same transaction. */
  lift?: boolean;
}

export interface ReputationOutcome {
  score: number;
  delta: number;
  /** The provider was banned by this change (it was not before). */
  banned: boolean;
  address: string;
}

/** Most changes committed together, and batches committing at once. */
const MAX_CHANGE_BATCH = 256;
const MAX_BATCHES_IN_FLIGHT = 2;

/**
 * Provider.reputation and the append-only ReputationEvent history. Concurrent changes share one
 * transaction (every completed job records one, so this is on the hot path): the providers' rows are
 * locked in one order, the changes applied in the order asked, and each provider written once.
 */
@Injectable()
export class ReputationRepository {
  private readonly changes: GroupCommit<ReputationChange, ReputationOutcome | null>;

  constructor(private readonly prisma: PrismaService) {
    this.changes = new GroupCommit({
      commit: (batch) => this.prisma.$transaction((tx) => this.applyBatch(tx, batch)),
      key: (change) => change.peerId,
      maxBatch: MAX_CHANGE_BATCH,
      maxInFlight: MAX_BATCHES_IN_FLIGHT,
    });
  }

  /** Applies one change under a lock of the provider row; null when the provider is unknown. */
  apply(change: ReputationChange): Promise<ReputationOutcome | null> {
    return this.changes.submit(change);
  }

  private async applyBatch(tx: Tx, batch: ReputationChange[]): Promise<(ReputationOutcome | null)[]> {
    const peers = [...new Set(batch.map((c) => c.peerId))].sort();
    // NO KEY UPDATE: serialises reputation writers without blocking the JobAttempt inserts that
    // reference these rows (their foreign-key check takes KEY SHARE, which FOR UPDATE would block).
    const rows = await tx.$queryRaw<
      { peerId: string; reputation: number; status: string; address: string }[]
    >`
      SELECT "peerId", reputation, status::text AS status, address FROM "Provider"
       WHERE "peerId" = ANY(${peers}::text[]) ORDER BY "peerId" FOR NO KEY UPDATE`;
    // Each provider's latest event through the (peerId, id) index: a LIMIT 1 per provider, not a
    // scan of every event the providers ever had.
    const lastEvents = await tx.$queryRaw<{ peerId: string; createdAt: Date }[]>`
      SELECT p."peerId", e."createdAt" FROM unnest(${peers}::text[]) AS p("peerId")
       CROSS JOIN LATERAL (SELECT "createdAt" FROM "ReputationEvent" r
                            WHERE r."peerId" = p."peerId" ORDER BY r.id DESC LIMIT 1) e`;
    const lastAt = new Map(lastEvents.map((e) => [e.peerId, e.createdAt]));
    interface Provider {
      reputation: number;
      status: string;
      address: string;
      lastAt: Date | null;
      touched: boolean;
      /** A ban set or lifted by this batch. */
      banChange?: { status: 'BANNED' | 'ONLINE'; bannedAt: Date | null; banReason: string | null };
    }
    const providers = new Map<string, Provider>(
      rows.map((r) => [
        r.peerId,
        {
          reputation: r.reputation,
          status: r.status,
          address: r.address,
          lastAt: lastAt.get(r.peerId) ?? null,
          touched: false,
        },
      ]),
    );
    const now = new Date();
    const events: Prisma.ReputationEventCreateManyInput[] = [];
    const outcomes = batch.map((change): ReputationOutcome | null => {
      const p = providers.get(change.peerId);
      if (!p) return null;
      const score = change.next(p.reputation, p.lastAt);
      const banned = change.ban !== undefined && p.status !== 'BANNED';
      events.push({
        peerId: change.peerId,
        kind: change.kind,
        delta: score - p.reputation,
        score,
        jobId: change.jobId ?? null,
        detail: change.detail as Prisma.InputJsonValue | undefined,
        createdAt: now,
      });
      const outcome = { score, delta: score - p.reputation, banned, address: p.address };
      p.reputation = score;
      p.lastAt = now;
      p.touched = true;
      if (banned) {
        p.status = 'BANNED';
        p.banChange = { status: 'BANNED', bannedAt: now, banReason: change.ban?.slice(0, 500) ?? null };
      }
      if (change.lift) {
        p.status = 'ONLINE';
        p.banChange = { status: 'ONLINE', bannedAt: null, banReason: null };
      }
      return outcome;
    });
    if (events.length > 0) await tx.reputationEvent.createMany({ data: events });
    for (const [peerId, p] of providers) {
      if (!p.touched) continue;
      await tx.provider.update({ where: { peerId }, data: { reputation: p.reputation, ...p.banChange } });
    }
    return outcomes;
  }

  history(peerId: string, limit: number): Promise<ReputationEvent[]> {
    return this.prisma.reputationEvent.findMany({ where: { peerId }, orderBy: { id: 'desc' }, take: limit });
  }

  async isBanned(peerId: string): Promise<boolean> {
    const row = await this.prisma.provider.findUnique({ where: { peerId }, select: { status: true } });
    return row?.status === 'BANNED';
  }
}
