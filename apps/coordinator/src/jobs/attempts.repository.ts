import { Injectable } from '@nestjs/common';
import type { AttemptState, JobAttempt, Prisma } from '#prisma';
import type { Tx } from '../ledger/ledger.repository.js';
import { PrismaService } from '../database/prisma.service.js';

const OPEN_STATES: AttemptState[] = ['OFFERED', 'ACCEPTED', 'RUNNING'];

export interface AttemptOutcomeData {
  receipt?: unknown;
  outputHash?: string;
  error?: string;
  /** When the provider accepted, for an outcome recorded without a separate acceptance. */
  startedAt?: Date;
}

/**
 * Moves an attempt on only from an open state (ACCEPTED only from OFFERED), so a late or duplicate
 * outcome changes nothing. Runs on any client (inside a caller's transaction or not).
 */
export async function settleAttempt(
  db: Tx,
  id: string,
  to: AttemptState,
  data: AttemptOutcomeData = {},
): Promise<boolean> {
  const now = new Date();
  const result = await db.jobAttempt.updateMany({
    where: { id, state: { in: to === 'ACCEPTED' ? ['OFFERED'] : OPEN_STATES } },
    data: {
      state: to,
      ...(to === 'ACCEPTED' ? { startedAt: now } : { finishedAt: now }),
      ...(data.startedAt ? { startedAt: data.startedAt } : {}),
      ...(data.receipt !== undefined ? { receipt: data.receipt as Prisma.InputJsonValue } : {}),
      ...(data.outputHash ? { outputHash: data.outputHash } : {}),
      ...(data.error ? { error: data.error.slice(0, 2000) } : {}),
    },
  });
  return result.count === 1;
}

/** Offers attempts to providers inside a transaction; numbers continue after the job's earlier attempts. */
export async function createAttemptOffers(
  db: Tx,
  jobId: string,
  providerIds: string[],
): Promise<JobAttempt[]> {
  const last = await db.jobAttempt.aggregate({ where: { jobId }, _max: { attempt: true } });
  const first = (last._max.attempt ?? 0) + 1;
  const created: JobAttempt[] = [];
  for (const [i, providerId] of providerIds.entries()) {
    created.push(await db.jobAttempt.create({ data: { jobId, attempt: first + i, providerId } }));
  }
  return created;
}

@Injectable()
export class AttemptsRepository {
  constructor(private readonly prisma: PrismaService) {}

  forJob(jobId: string): Promise<JobAttempt[]> {
    return this.prisma.jobAttempt.findMany({ where: { jobId }, orderBy: { attempt: 'asc' } });
  }

  /** Moves an attempt on only from an open state, so a late or duplicate outcome changes nothing. */
  settle(id: string, to: AttemptState, data: AttemptOutcomeData = {}): Promise<boolean> {
    return settleAttempt(this.prisma, id, to, data);
  }

  /** Attempts left open by a process that died: they are lost. */
  async loseOpenAttempts(jobId: string, reason: string): Promise<JobAttempt[]> {
    const open = await this.prisma.jobAttempt.findMany({ where: { jobId, state: { in: OPEN_STATES } } });
    for (const attempt of open) await this.settle(attempt.id, 'LOST', { error: reason });
    return open;
  }

  /** Providers that already failed or lost this job: never offer it to them again. */
  async failedProviders(jobId: string): Promise<string[]> {
    const rows = await this.prisma.jobAttempt.findMany({
      // FAILED only: a LOST attempt (the provider or the coordinator worker restarted, a connection
      // dropped) says nothing against the provider, and excluding it could leave a job no one may take.
      where: { jobId, state: 'FAILED', providerId: { not: null } },
      select: { providerId: true },
    });
    return [...new Set(rows.map((r) => r.providerId as string))];
  }
}
