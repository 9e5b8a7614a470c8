import { Injectable } from '@nestjs/common';
import type { Prisma, ReputationEvent } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

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

/** Provider.reputation and the append-only ReputationEvent history: one transaction per change. */
@Injectable()
export class ReputationRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Applies one change under a lock of the provider row; null when the provider is unknown. */
  async apply(change: ReputationChange): Promise<ReputationOutcome | null> {
    return this.prisma.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<{ reputation: number; status: string; address: string }[]>`
        SELECT reputation, status::text AS status, address FROM "Provider" WHERE "peerId" = ${change.peerId} FOR UPDATE`;
      const row = rows[0];
      if (!row) return null;
      const last = await tx.reputationEvent.findFirst({
        where: { peerId: change.peerId },
        orderBy: { id: 'desc' },
        select: { createdAt: true },
      });
      const score = change.next(row.reputation, last?.createdAt ?? null);
      const banned = change.ban !== undefined && row.status !== 'BANNED';
      await tx.reputationEvent.create({
        data: {
          peerId: change.peerId,
          kind: change.kind,
          delta: score - row.reputation,
          score,
          jobId: change.jobId ?? null,
          detail: change.detail as Prisma.InputJsonValue | undefined,
        },
      });
      await tx.provider.update({
        where: { peerId: change.peerId },
        data: {
          reputation: score,
          ...(banned ? { status: 'BANNED', bannedAt: new Date(), banReason: change.ban?.slice(0, 500) } : {}),
          ...(change.lift ? { status: 'ONLINE', bannedAt: null, banReason: null } : {}),
        },
      });
      return { score, delta: score - row.reputation, banned, address: row.address };
    });
  }

  history(peerId: string, limit: number): Promise<ReputationEvent[]> {
    return this.prisma.reputationEvent.findMany({ where: { peerId }, orderBy: { id: 'desc' }, take: limit });
  }

  async isBanned(peerId: string): Promise<boolean> {
    const row = await this.prisma.provider.findUnique({ where: { peerId }, select: { status: true } });
    return row?.status === 'BANNED';
  }
}
