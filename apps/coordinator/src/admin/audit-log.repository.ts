import { Injectable } from '@nestjs/common';
import type { AdminAuditEntry, Prisma } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

/** What an admin did, to what, why, and the target before and after (JSON, without secrets). */
export interface AuditEntryInput {
  actor: string;
  apiKeyId?: string;
  action: string;
  target: string;
  reason: string;
  before?: Prisma.InputJsonValue;
  after?: Prisma.InputJsonValue;
}

export interface AuditLogQuery {
  action?: string;
  target?: string;
  actor?: string;
  since?: Date;
  until?: Date;
  /** Entries older than this id (the cursor of the previous page). */
  beforeId?: bigint;
  limit: number;
}

/** The admin audit log's only reader and writer. The table is append-only (a trigger refuses the rest). */
@Injectable()
export class AuditLogRepository {
  constructor(private readonly prisma: PrismaService) {}

  append(entry: AuditEntryInput, tx: Prisma.TransactionClient = this.prisma): Promise<AdminAuditEntry> {
    return tx.adminAuditEntry.create({ data: entry });
  }

  /** Newest first. */
  list(q: AuditLogQuery): Promise<AdminAuditEntry[]> {
    return this.prisma.adminAuditEntry.findMany({
      where: {
        action: q.action,
        target: q.target,
        actor: q.actor,
        at: q.since || q.until ? { gte: q.since, lt: q.until } : undefined,
        id: q.beforeId !== undefined ? { lt: q.beforeId } : undefined,
      },
      orderBy: { id: 'desc' },
      take: q.limit,
    });
  }
}
