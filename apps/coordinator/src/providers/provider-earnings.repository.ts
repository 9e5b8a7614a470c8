import { Injectable } from '@nestjs/common';
import type { Prisma } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';
import { LedgerAccounts } from '../ledger/accounts.js';

/** One ledger posting of a transaction that touched a provider's accounts. */
export interface EarningsPostingRow {
  id: bigint;
  txId: string;
  account: string;
  amount: bigint;
  kind: string;
  jobId: string | null;
  createdAt: Date;
}

/** A provider's attempt at a job (what the agent's journal knows it by). */
export interface EarningsAttemptRow {
  jobId: string;
  attempt: number;
  state: string;
  finishedAt: Date | null;
}

/** A closed epoch: it covers ledger entries with ids up to `lastEntryId`. */
export interface EarningsEpochRow {
  id: number;
  state: string;
  lastEntryId: bigint;
  closedAt: Date | null;
}

/** The ledger accounts of one provider peer that its earnings pass through. */
export function providerEarningAccounts(peerId: string): { earned: string; held: string; heldFee: string } {
  return {
    earned: LedgerAccounts.providerEarned(peerId),
    held: LedgerAccounts.held(peerId),
    heldFee: LedgerAccounts.heldFee(peerId),
  };
}

/** Reads (never writes) what a provider earned: ledger postings, its attempts and the epochs. */
@Injectable()
export class ProviderEarningsRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** The provider's payout address, or null when no advert of it was ever stored. */
  async providerAddress(peerId: string): Promise<string | null> {
    const row = await this.prisma.provider.findUnique({ where: { peerId }, select: { address: true } });
    return row?.address ?? null;
  }

  /** The ids of the `limit` jobs that most recently moved money on the provider's accounts. */
  async recentJobIds(peerId: string, limit: number): Promise<string[]> {
    const a = providerEarningAccounts(peerId);
    const rows = await this.prisma.$queryRaw<{ jobId: string }[]>`
      SELECT "jobId"::text AS "jobId" FROM "LedgerEntry"
      WHERE account IN (${a.earned}, ${a.held}, ${a.heldFee}) AND "jobId" IS NOT NULL
      GROUP BY "jobId" ORDER BY MAX(id) DESC LIMIT ${limit}`;
    return rows.map((r) => r.jobId);
  }

  /**
   * Every posting of the ledger transactions (on these jobs) that touched the provider's accounts:
   * the fee, the developer's side and any co-paid provider come with them.
   */
  async postingsOf(peerId: string, jobIds: readonly string[]): Promise<EarningsPostingRow[]> {
    if (jobIds.length === 0) return [];
    const a = providerEarningAccounts(peerId);
    return this.prisma.$queryRaw<EarningsPostingRow[]>`
      SELECT e.id, e."txId"::text AS "txId", e.account, e.amount, e.kind, e."jobId"::text AS "jobId",
             e."createdAt"
      FROM "LedgerEntry" e
      WHERE e."txId" IN (
        SELECT "txId" FROM "LedgerEntry"
        WHERE account IN (${a.earned}, ${a.held}, ${a.heldFee})
          AND "jobId" = ANY(${[...jobIds]}::uuid[]))
      ORDER BY e.id`;
  }

  /** Σ of the provider's credits by account and kind over all time (totals beyond the listed jobs). */
  async totals(
    peerId: string,
  ): Promise<{ account: string; kind: string; credits: bigint; debits: bigint }[]> {
    const a = providerEarningAccounts(peerId);
    return this.prisma.$queryRaw<{ account: string; kind: string; credits: bigint; debits: bigint }[]>`
      SELECT account, kind,
             COALESCE(SUM(amount) FILTER (WHERE amount > 0), 0)::bigint AS credits,
             COALESCE(-SUM(amount) FILTER (WHERE amount < 0), 0)::bigint AS debits
      FROM "LedgerEntry"
      WHERE account IN (${a.earned}, ${a.held}, ${a.heldFee})
      GROUP BY account, kind`;
  }

  attemptsOf(peerId: string, jobIds: readonly string[]): Promise<EarningsAttemptRow[]> {
    if (jobIds.length === 0) return Promise.resolve([]);
    return this.prisma.jobAttempt.findMany({
      where: { providerId: peerId, jobId: { in: [...jobIds] } } satisfies Prisma.JobAttemptWhereInput,
      select: { jobId: true, attempt: true, state: true, finishedAt: true },
      orderBy: [{ jobId: 'asc' }, { attempt: 'asc' }],
    });
  }

  /** Closed epochs covering ledger ids from `fromEntryId` on, in order. */
  async epochsFrom(fromEntryId: bigint): Promise<EarningsEpochRow[]> {
    const rows = await this.prisma.epoch.findMany({
      where: { lastEntryId: { gte: fromEntryId } },
      select: { id: true, state: true, lastEntryId: true, closedAt: true },
      orderBy: { lastEntryId: 'asc' },
    });
    return rows.flatMap((r) => (r.lastEntryId === null ? [] : [{ ...r, lastEntryId: r.lastEntryId }]));
  }

  /** The open epoch (the next to close), if any. */
  async openEpoch(): Promise<number | null> {
    const row = await this.prisma.epoch.findFirst({ where: { state: 'OPEN' }, orderBy: { id: 'desc' } });
    return row?.id ?? null;
  }
}
