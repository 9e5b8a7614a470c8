import { Injectable } from '@nestjs/common';
import type { Account, Epoch, Job, LedgerEntry } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';
import type { JobState } from '../jobs/job-state.js';

/** The batch an export reads at a time (one batch is in memory while it streams). */
export const EXPORT_BATCH = 1000;

export interface TimeWindow {
  since?: Date;
  until?: Date;
}

/** Which jobs: a time window of creation and the filters of the jobs list. */
export interface JobFilter extends TimeWindow {
  states?: JobState[];
  kind?: string;
  accountId?: string;
  providerId?: string;
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

  async *jobs(filter: JobFilter): AsyncGenerator<ExportedJob[]> {
    let after: { createdAt: Date; id: string } | null = null;
    for (;;) {
      const rows: ExportedJob[] = await this.prisma.job.findMany({
        where: {
          createdAt: createdIn(filter),
          ...(filter.states && filter.states.length > 0 ? { state: { in: filter.states } } : {}),
          ...(filter.kind ? { kind: filter.kind } : {}),
          ...(filter.accountId ? { accountId: filter.accountId } : {}),
          ...(filter.providerId ? { attempts: { some: { providerId: filter.providerId } } } : {}),
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
