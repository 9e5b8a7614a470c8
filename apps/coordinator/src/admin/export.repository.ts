import { Injectable } from '@nestjs/common';
import type { Account, Epoch, Job, LedgerEntry } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

/** The batch an export reads at a time (one batch is in memory while it streams). */
export const EXPORT_BATCH = 1000;

export interface TimeWindow {
  since?: Date;
  until?: Date;
}

export type ExportedJob = Omit<Job, 'spec' | 'result' | 'verification'> & {
  account: Pick<Account, 'address'>;
};

function createdIn(window: TimeWindow): { gte?: Date; lt?: Date } {
  return { ...(window.since ? { gte: window.since } : {}), ...(window.until ? { lt: window.until } : {}) };
}

/** The reads of the admin CSV exports: every row of a time window, oldest first, batch by batch. */
@Injectable()
export class ExportRepository {
  constructor(private readonly prisma: PrismaService) {}

  async *jobs(window: TimeWindow): AsyncGenerator<ExportedJob[]> {
    let after: { createdAt: Date; id: string } | null = null;
    for (;;) {
      const rows: ExportedJob[] = await this.prisma.job.findMany({
        where: {
          createdAt: createdIn(window),
          ...(after
            ? {
                OR: [
                  { createdAt: { gt: after.createdAt } },
                  { createdAt: after.createdAt, id: { gt: after.id } },
                ],
              }
            : {}),
        },
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        take: EXPORT_BATCH,
        omit: { spec: true, result: true, verification: true },
        include: { account: { select: { address: true } } },
      });
      yield rows;
      const last = rows[rows.length - 1];
      if (!last || rows.length < EXPORT_BATCH) return;
      after = { createdAt: last.createdAt, id: last.id };
    }
  }

  async *ledger(window: TimeWindow): AsyncGenerator<LedgerEntry[]> {
    let after = 0n;
    for (;;) {
      const rows = await this.prisma.ledgerEntry.findMany({
        where: { id: { gt: after }, createdAt: createdIn(window) },
        orderBy: { id: 'asc' },
        take: EXPORT_BATCH,
      });
      yield rows;
      const last = rows[rows.length - 1];
      if (!last || rows.length < EXPORT_BATCH) return;
      after = last.id;
    }
  }

  async *epochs(window: TimeWindow): AsyncGenerator<Epoch[]> {
    let after = -1;
    for (;;) {
      const rows = await this.prisma.epoch.findMany({
        where: { id: { gt: after }, startedAt: createdIn(window) },
        orderBy: { id: 'asc' },
        take: EXPORT_BATCH,
      });
      yield rows;
      const last = rows[rows.length - 1];
      if (!last || rows.length < EXPORT_BATCH) return;
      after = last.id;
    }
  }
}
