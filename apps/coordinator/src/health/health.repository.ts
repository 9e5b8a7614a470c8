import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service.js';
import { LedgerAccounts } from '../ledger/accounts.js';

/** What the marketplace looks like now, for /metrics and /health (a few aggregate queries). */
export interface MarketplaceState {
  /** Providers per status, and how many of each advertised within the online window. */
  providers: { status: string; n: number; fresh: number; gpus: number }[];
  /** Verification failures (reputation events that ban) per kind in the last hour. */
  verificationFailures1h: Record<string, number>;
  /** Platform fees accrued and not yet paid out in an epoch (the `system:fees` balance). */
  feesUnsettled: bigint;
}

/** Kinds of reputation event that mean a wrong result was caught (see reputation.ts). */
const FAILURE_KINDS = [
  'failed_canary',
  'lost_tiebreak',
  'failed_reverification',
  'failed_check',
  'failed_sanity',
];

@Injectable()
export class HealthRepository {
  constructor(private readonly prisma: PrismaService) {}

  async ping(): Promise<void> {
    await this.prisma.$queryRaw`SELECT 1`;
  }

  async marketplaceState(onlineSince: Date): Promise<MarketplaceState> {
    const [providers, failures, fees] = await Promise.all([
      this.prisma.$queryRaw<{ status: string; n: number; fresh: number; gpus: number }[]>`
        SELECT status::text AS status, count(*)::int AS n,
               count(*) FILTER (WHERE "lastSeenAt" > ${onlineSince} AND "advertExpiresAt" > now())::int AS fresh,
               COALESCE(sum(CASE WHEN jsonb_typeof(gpus::jsonb) = 'array' THEN jsonb_array_length(gpus::jsonb) ELSE 0 END)
                 FILTER (WHERE "lastSeenAt" > ${onlineSince} AND "advertExpiresAt" > now()), 0)::int AS gpus
          FROM "Provider" GROUP BY status`,
      this.prisma.$queryRaw<{ kind: string; n: number }[]>`
        SELECT kind, count(*)::int AS n FROM "ReputationEvent"
         WHERE "createdAt" > now() - interval '1 hour' AND kind = ANY(${FAILURE_KINDS}::text[])
         GROUP BY kind`,
      this.prisma.ledgerBalance.findUnique({
        where: { account: LedgerAccounts.fees },
        select: { balance: true },
      }),
    ]);
    const verificationFailures1h: Record<string, number> = Object.fromEntries(
      FAILURE_KINDS.map((k) => [k, 0]),
    );
    for (const f of failures) verificationFailures1h[f.kind] = f.n;
    return {
      providers,
      verificationFailures1h,
      feesUnsettled: fees?.balance ?? 0n,
    };
  }

  /** Seconds since the oldest CLOSED (not yet posted) epoch closed; 0 when none waits. */
  async postingLagSeconds(): Promise<number> {
    const [row] = await this.prisma.$queryRaw<{ lag: number | null }[]>`
      SELECT EXTRACT(EPOCH FROM now() - min("closedAt"))::float8 AS lag FROM "Epoch" WHERE state = 'CLOSED'`;
    return Math.max(0, Math.round(row?.lag ?? 0));
  }
}
