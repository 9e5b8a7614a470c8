import { Injectable } from '@nestjs/common';
import type {
  Account,
  ApiKey,
  Epoch,
  Job,
  JobAttempt,
  JobEvent,
  LedgerEntry,
  Prisma,
  Provider,
  ProviderStatus,
  ReputationEvent,
} from '#prisma';
import { PrismaService } from '../database/prisma.service.js';
import type { JobState } from '../jobs/job-state.js';
import type { AccountKind } from '../ledger/accounts.js';

export interface AdminJobQuery {
  states?: JobState[];
  accountId?: string;
  providerId?: string;
  kind?: string;
  before?: { createdAt: Date; id: string };
  limit: number;
}

export interface FinishedCounts {
  state: string;
  n: number;
  disagree: number;
}

export type AttemptWithJob = JobAttempt & { job: Pick<Job, 'id' | 'kind' | 'state' | 'createdAt'> };

/** Every database read and write of the admin API. */
@Injectable()
export class AdminRepository {
  constructor(private readonly prisma: PrismaService) {}

  // ---- providers ----

  providers(filter: { statuses?: ProviderStatus[]; limit: number }): Promise<Provider[]> {
    return this.prisma.provider.findMany({
      where: filter.statuses ? { status: { in: filter.statuses } } : {},
      orderBy: [{ lastSeenAt: 'desc' }, { peerId: 'asc' }],
      take: filter.limit,
    });
  }

  provider(peerId: string): Promise<Provider | null> {
    return this.prisma.provider.findUnique({ where: { peerId } });
  }

  providerAttempts(peerId: string, limit: number): Promise<AttemptWithJob[]> {
    return this.prisma.jobAttempt.findMany({
      where: { providerId: peerId },
      orderBy: { offeredAt: 'desc' },
      take: limit,
      include: { job: { select: { id: true, kind: true, state: true, createdAt: true } } },
    });
  }

  async providerAttemptCounts(peerId: string): Promise<Record<string, number>> {
    const rows = await this.prisma.jobAttempt.groupBy({
      by: ['state'],
      where: { providerId: peerId },
      _count: { _all: true },
    });
    return Object.fromEntries(rows.map((r) => [r.state, r._count._all]));
  }

  /** How many of a provider's input-fault claims verified results disproved (DisprovedClaim). */
  disprovedClaims(peerId: string): Promise<number> {
    return this.prisma.disprovedClaim.count({ where: { peerId } });
  }

  /** The newest `limit` reputation events of a provider, oldest first. */
  async reputationEvents(peerId: string, limit: number): Promise<ReputationEvent[]> {
    const rows = await this.prisma.reputationEvent.findMany({
      where: { peerId },
      orderBy: { id: 'desc' },
      take: limit,
    });
    return rows.reverse();
  }

  /** Moves a provider from status `from` to `status`; null when it is not (any longer) in `from`. */
  async setProviderStatus(
    peerId: string,
    status: ProviderStatus,
    from: ProviderStatus,
  ): Promise<Provider | null> {
    const result = await this.prisma.provider.updateMany({
      where: { peerId, status: from },
      data: { status },
    });
    return result.count === 0 ? null : this.provider(peerId);
  }

  /** An admin's ban: status, time and reason; the reputation is left alone. */
  async banProvider(peerId: string, banReason: string, bannedAt: Date): Promise<Provider | null> {
    const result = await this.prisma.provider.updateMany({
      where: { peerId },
      data: { status: 'BANNED', bannedAt, banReason: banReason.slice(0, 500) },
    });
    return result.count === 0 ? null : this.provider(peerId);
  }

  /** Providers per status; `fresh`: seen since `onlineSince` with an advert still unexpired at `now`. */
  async providerStatusCounts(
    onlineSince: Date,
    now: Date,
  ): Promise<{ status: string; n: number; fresh: number }[]> {
    return this.prisma.$queryRaw<{ status: string; n: number; fresh: number }[]>`
      SELECT status::text AS status, count(*)::int AS n,
             count(*) FILTER (WHERE "lastSeenAt" > ${onlineSince} AND "advertExpiresAt" > ${now})::int AS fresh
      FROM "Provider" GROUP BY status`;
  }

  onlineHardware(
    onlineSince: Date,
    now: Date,
  ): Promise<Pick<Provider, 'backend' | 'gpus' | 'slots' | 'freeSlots'>[]> {
    return this.prisma.provider.findMany({
      where: {
        status: { in: ['ONLINE', 'DRAINING'] },
        lastSeenAt: { gt: onlineSince },
        advertExpiresAt: { gt: now },
      },
      select: { backend: true, gpus: true, slots: true, freeSlots: true },
    });
  }

  // ---- jobs ----

  jobs(query: AdminJobQuery): Promise<(Job & { account: Pick<Account, 'address'> })[]> {
    const where: Prisma.JobWhereInput = {};
    if (query.accountId) where.accountId = query.accountId;
    if (query.states && query.states.length > 0) where.state = { in: query.states };
    if (query.kind) where.kind = query.kind;
    if (query.providerId) where.attempts = { some: { providerId: query.providerId } };
    if (query.before) {
      where.OR = [
        { createdAt: { lt: query.before.createdAt } },
        { createdAt: query.before.createdAt, id: { lt: query.before.id } },
      ];
    }
    return this.prisma.job.findMany({
      where,
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: query.limit,
      include: { account: { select: { address: true } } },
    });
  }

  job(id: string): Promise<
    | (Job & {
        account: Pick<Account, 'address'>;
        events: JobEvent[];
        attempts: JobAttempt[];
      })
    | null
  > {
    return this.prisma.job.findUnique({
      where: { id },
      include: {
        account: { select: { address: true } },
        events: { orderBy: { id: 'asc' } },
        attempts: { orderBy: { attempt: 'asc' } },
      },
    });
  }

  jobLedger(jobId: string): Promise<LedgerEntry[]> {
    return this.prisma.ledgerEntry.findMany({ where: { jobId }, orderBy: { id: 'asc' } });
  }

  // ---- accounts ----

  accounts(limit: number): Promise<(Account & { _count: { apiKeys: number; jobs: number } })[]> {
    return this.prisma.account.findMany({
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      take: limit,
      include: { _count: { select: { apiKeys: true, jobs: true } } },
    });
  }

  account(id: string): Promise<Account | null> {
    return this.prisma.account.findUnique({ where: { id } });
  }

  apiKeys(accountId: string): Promise<ApiKey[]> {
    return this.prisma.apiKey.findMany({ where: { accountId }, orderBy: { createdAt: 'desc' } });
  }

  async openJobCounts(accountIds: string[]): Promise<Map<string, number>> {
    const rows = await this.prisma.job.groupBy({
      by: ['accountId'],
      where: {
        accountId: { in: accountIds },
        state: { in: ['QUEUED', 'DISPATCHED', 'RUNNING', 'VERIFYING'] },
      },
      _count: { _all: true },
    });
    return new Map(rows.map((r) => [r.accountId, r._count._all]));
  }

  // ---- stats ----

  async jobCounts(since: Date): Promise<{ lastMinute: number; queued: number; active: number }> {
    const rows = await this.prisma.$queryRaw<{ last_minute: number; queued: number; active: number }[]>`
      SELECT
        (SELECT count(*) FROM "Job" WHERE "createdAt" > ${since})::int AS last_minute,
        (SELECT count(*) FROM "Job" WHERE state = 'QUEUED')::int AS queued,
        (SELECT count(*) FROM "Job" WHERE state IN ('DISPATCHED', 'RUNNING', 'VERIFYING'))::int AS active`;
    const row = rows[0];
    return { lastMinute: row?.last_minute ?? 0, queued: row?.queued ?? 0, active: row?.active ?? 0 };
  }

  finishedCounts(since: Date): Promise<FinishedCounts[]> {
    return this.prisma.$queryRaw<FinishedCounts[]>`
      SELECT state::text AS state, count(*)::int AS n,
             count(*) FILTER (WHERE error LIKE 'redundant results disagree%')::int AS disagree
      FROM "Job" WHERE "finishedAt" > ${since} GROUP BY state`;
  }

  async latency(since: Date): Promise<{ p50: number | null; p99: number | null; n: number }> {
    const rows = await this.prisma.$queryRaw<{ p50: number | null; p99: number | null; n: number }[]>`
      SELECT
        percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ("finishedAt" - "createdAt")))::float8 AS p50,
        percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM ("finishedAt" - "createdAt")))::float8 AS p99,
        count(*)::int AS n
      FROM "Job" WHERE state = 'COMPLETED' AND "finishedAt" > ${since}`;
    return rows[0] ?? { p50: null, p99: null, n: 0 };
  }

  jobsPerMinute(since: Date): Promise<{ minute: Date; submitted: number; completed: number }[]> {
    return this.prisma.$queryRaw<{ minute: Date; submitted: number; completed: number }[]>`
      WITH s AS (
        SELECT date_trunc('minute', "createdAt") AS minute, count(*)::int AS n
        FROM "Job" WHERE "createdAt" > ${since} GROUP BY 1
      ), c AS (
        SELECT date_trunc('minute', "finishedAt") AS minute, count(*)::int AS n
        FROM "Job" WHERE state = 'COMPLETED' AND "finishedAt" > ${since} GROUP BY 1
      )
      SELECT COALESCE(s.minute, c.minute) AS minute, COALESCE(s.n, 0)::int AS submitted,
             COALESCE(c.n, 0)::int AS completed
      FROM s FULL OUTER JOIN c ON s.minute = c.minute ORDER BY 1`;
  }

  currentEpoch(): Promise<Epoch | null> {
    return this.prisma.epoch.findFirst({ orderBy: { id: 'desc' } });
  }

  /**
   * Since a moment: provider earnings and platform fees credited by settlements (`fees`: straight to
   * the platform; `feesCharged`: also the fees held with a provider's credits until they vest), and
   * the canary share of the jobs settled, the part of their fees that funds canary jobs.
   */
  async earningsSince(
    since: Date,
  ): Promise<{ providers: bigint; fees: bigint; feesCharged: bigint; canaryShare: bigint }> {
    const earned: AccountKind = 'earned';
    const fees: AccountKind = 'fees';
    const heldFee: AccountKind = 'held-fee';
    const rows = await this.prisma.$queryRaw<
      { providers: bigint | null; fees: bigint | null; charged: bigint | null; canary: bigint | null }[]
    >`
      SELECT
        SUM(amount) FILTER (WHERE "accountKind" = ${earned})::bigint AS providers,
        SUM(amount) FILTER (WHERE "accountKind" = ${fees})::bigint AS fees,
        SUM(amount) FILTER (WHERE "accountKind" IN (${fees}, ${heldFee}))::bigint AS charged,
        (SELECT SUM((verification->>'canaryFee')::numeric)::bigint FROM "Job"
          WHERE state = 'COMPLETED' AND NOT canary AND "finishedAt" >= ${since}
            AND verification->>'canaryFee' ~ '^[0-9]+$') AS canary
      FROM "LedgerEntry" WHERE "createdAt" >= ${since} AND kind = 'settle'`;
    const row = rows[0];
    return {
      providers: row?.providers ?? 0n,
      fees: row?.fees ?? 0n,
      feesCharged: row?.charged ?? 0n,
      canaryShare: row?.canary ?? 0n,
    };
  }

  // ---- epochs and audit ----

  epochs(limit: number): Promise<Epoch[]> {
    return this.prisma.epoch.findMany({ orderBy: { id: 'desc' }, take: limit });
  }

  /** Ledger invariants: entries sum to zero, balances match their entries, no overdrawn developer. */
  async ledgerAudit(): Promise<{
    entriesTotal: bigint;
    unbalancedTransactions: number;
    mismatchedBalances: number;
    negativeDeveloperBalances: number;
    entries: number;
  }> {
    const rows = await this.prisma.$queryRaw<
      {
        total: bigint | null;
        unbalanced: number;
        mismatched: number;
        negative: number;
        entries: number;
      }[]
    >`
      SELECT
        (SELECT SUM(amount) FROM "LedgerEntry")::bigint AS total,
        (SELECT count(*) FROM (SELECT "txId" FROM "LedgerEntry" GROUP BY "txId" HAVING SUM(amount) <> 0) t)::int AS unbalanced,
        (SELECT count(*) FROM "LedgerBalance" b
           WHERE b.balance <> COALESCE((SELECT SUM(amount) FROM "LedgerEntry" e WHERE e.account = b.account), 0))::int AS mismatched,
        (SELECT count(*) FROM "LedgerBalance" WHERE account LIKE 'acct:%' AND balance < 0)::int AS negative,
        (SELECT count(*) FROM "LedgerEntry")::int AS entries`;
    const row = rows[0];
    return {
      entriesTotal: row?.total ?? 0n,
      unbalancedTransactions: row?.unbalanced ?? 0,
      mismatchedBalances: row?.mismatched ?? 0,
      negativeDeveloperBalances: row?.negative ?? 0,
      entries: row?.entries ?? 0,
    };
  }
}
