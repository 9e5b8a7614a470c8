import { Inject, Injectable } from '@nestjs/common';
import { type CanaryAnswer, type Job, type JobAttempt, type Prisma } from '#prisma';
import { fitsSpendingCap, type SpendingCapDomain } from '@gpumesh/rewards';
import { SPENDING_CAP_DOMAIN } from '../accounts/spending-cap-domain.js';
import { spendingBoundsIn } from '../accounts/spending-caps.repository.js';
import { PrismaService } from '../database/prisma.service.js';
import { LedgerRepository } from '../ledger/ledger.repository.js';
import { LedgerAccounts, type AccountKind } from '../ledger/accounts.js';
import { reservePostings, reversePostings, vestPostings } from '../ledger/postings.js';
import { jsonText, SqlService } from '../database/sql.service.js';
import { JobsRepository } from '../jobs/jobs.repository.js';
import { JobSubmissionRepository, type NewCanaryJob } from '../jobs/job-submission.repository.js';
import { JOB_CORRECTED_EVENT } from '../jobs/job-state.js';
import { WebhooksRepository } from '../events/webhooks/webhooks.repository.js';

/** A canary job with its precomputed answer. */
export interface NewCanary extends NewCanaryJob {
  answer: { outputs: unknown; outputHash: string };
}

/** How far back a convicted provider's work counts for compensation. */
export const COMPENSATION_WINDOW_MS = 7 * 86_400_000;
/** ProviderStaking.MAX_BENEFICIARIES. */
export const MAX_SLASH_BENEFICIARIES = 64;

export interface HeldCredit {
  peerId: string;
  jobId: string;
  amount: bigint;
}

/**
 * Serialises the transactions that take a held credit out (vesting, reversal) per provider and job:
 * each reads what is left and then posts it, so two at once would both take it. An advisory lock, taken
 * before any row lock, keeps the ledger's row lock order intact.
 */
async function lockCredit(tx: Prisma.TransactionClient, held: string, jobId: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${held} || '/' || ${jobId}, 0))`;
}

/** What is still held of one provider's credit for one job, and the fee held on it. */
async function heldOfJob(
  tx: Prisma.TransactionClient,
  peerId: string,
  jobId: string,
): Promise<{ credit: bigint; fee: bigint }> {
  const rows = await tx.$queryRaw<{ account: string; amount: bigint | null }[]>`
    SELECT account, SUM(amount)::bigint AS amount FROM "LedgerEntry"
    WHERE account IN (${LedgerAccounts.held(peerId)}, ${LedgerAccounts.heldFee(peerId)})
      AND "jobId" = ${jobId}::uuid
    GROUP BY account`;
  const of = (account: string): bigint => rows.find((r) => r.account === account)?.amount ?? 0n;
  return { credit: of(LedgerAccounts.held(peerId)), fee: of(LedgerAccounts.heldFee(peerId)) };
}

/** Canaries, evidence, slash proposals and held provider credits: the tables verification writes. */
/** Why a canary (or another known-answer job) was not stored. */
export type CanaryRefusal = 'insufficient-balance' | 'escrow-unlocking' | 'spending-cap-exceeded';

@Injectable()
export class VerificationRepository {
  constructor(
    private readonly prisma: PrismaService,
    private readonly sql: SqlService,
    private readonly ledger: LedgerRepository,
    private readonly jobs: JobsRepository,
    private readonly submissions: JobSubmissionRepository,
    private readonly webhooks: WebhooksRepository,
    @Inject(SPENDING_CAP_DOMAIN) private readonly capDomain: SpendingCapDomain | null,
  ) {}

  /**
   * Stores a canary job (QUEUED, owned by the platform account) with its precomputed answer, and
   * reserves its cost from the platform account's available balance like any job's (its escrow
   * deposit pays for canaries on chain). Null, storing nothing, when that balance is short or the
   * platform account's escrow is unlocking.
   */
  async insertCanary(c: NewCanary): Promise<{ job: Job } | { refused: CanaryRefusal }> {
    // Raw SQL like every statement a job runs (≈ 4% of jobs are canaries; through Prisma their four
    // writes and three reads cost about a fifth of the coordinator's CPU a job). The job and its event
    // are the jobs lifecycle's to write (JobSubmissionRepository), the answer this repository's.
    return this.sql.transaction(async (tx) => {
      const availableAccount = LedgerAccounts.available(c.accountId);
      // Locked first, like submissions do (see JobSubmissionRepository): the check holds until commit.
      const [balance] = await tx.query<{ balance: bigint }>(
        `SELECT balance FROM "LedgerBalance" WHERE account = $1 FOR UPDATE`,
        [availableAccount],
      );
      const available = balance?.balance ?? 0n;
      if (available < c.cost) return { refused: 'insufficient-balance' } as const;
      const [[unlock], bounds] = await Promise.all([
        tx.query<{ n: number }>(`SELECT 1 AS n FROM "EscrowUnlock" WHERE "accountId" = $1::uuid`, [
          c.accountId,
        ]),
        this.capDomain ? spendingBoundsIn(tx, [c.accountId], this.capDomain) : null,
      ]);
      if (unlock) return { refused: 'escrow-unlocking' } as const;
      // The platform account's escrowed spending stays within the cap it signed, like a developer's.
      const bound = bounds?.get(c.accountId);
      if (bound && !fitsSpendingCap(bound.cap, bound.deposited - available, c.cost)) {
        return { refused: 'spending-cap-exceeded' } as const;
      }
      // Both sent before either answer (pipelined): the answer's row follows its job's.
      const inserted = this.submissions.insertCanaryIn(tx, c);
      const answer = tx.query(
        `INSERT INTO "CanaryAnswer" ("jobId", outputs, "outputHash", "createdAt")
         VALUES ($1::uuid, $2::jsonb, $3, now())`,
        [c.id, jsonText(c.answer.outputs), c.answer.outputHash],
      );
      const [job] = await Promise.all([inserted, answer]);
      await this.ledger.postMany(tx, [{ ...reservePostings(c.accountId, c.cost), jobId: c.id }]);
      return { job };
    });
  }

  async canaryAnswer(jobId: string): Promise<CanaryAnswer | null> {
    const [answer] = await this.sql.query<CanaryAnswer>(
      `SELECT "jobId"::text AS "jobId", outputs, "outputHash", "createdAt" FROM "CanaryAnswer" WHERE "jobId" = $1::uuid`,
      [jobId],
    );
    return answer ?? null;
  }

  /**
   * Evidence, and the slash proposal that cites it, in one transaction. Idempotent per convicted
   * attempt (the same conviction recorded twice stores one row).
   */
  async recordConviction(input: {
    jobId: string;
    attemptId: string;
    peerId: string;
    operatorAddress: string;
    bundle: string;
    bundleHash: string;
    amount: bigint;
    reason: string;
    executeAfter: Date;
  }): Promise<{ evidenceId: string; created: boolean }> {
    return this.prisma.$transaction(async (tx) => {
      const existing = await tx.evidence.findFirst({
        where: { attemptId: input.attemptId, peerId: input.peerId },
      });
      if (existing) return { evidenceId: existing.id, created: false };
      const beneficiaries = await compensationBeneficiaries(tx, {
        peerId: input.peerId,
        operatorAddress: input.operatorAddress,
        convictedJobId: input.jobId,
        now: new Date(),
      });
      const evidence = await tx.evidence.create({
        data: {
          jobId: input.jobId,
          attemptId: input.attemptId,
          peerId: input.peerId,
          bundle: input.bundle,
          bundleHash: input.bundleHash,
        },
      });
      await tx.slashProposal.create({
        data: {
          peerId: input.peerId,
          operatorAddress: input.operatorAddress,
          evidenceId: evidence.id,
          evidenceHash: input.bundleHash,
          amount: input.amount,
          reason: input.reason.slice(0, 500),
          beneficiaries: beneficiaries.map((b) => ({ account: b.account, weight: b.weight.toString() })),
          executeAfter: input.executeAfter,
        },
      });
      return { evidenceId: evidence.id, created: true };
    });
  }

  /** Credits still held for a provider (per job), oldest first. */
  async heldCredits(peerId: string): Promise<HeldCredit[]> {
    const rows = await this.prisma.$queryRaw<{ jobId: string; amount: bigint }[]>`
      SELECT "jobId"::text AS "jobId", SUM(amount)::bigint AS amount FROM "LedgerEntry"
      WHERE account = ${LedgerAccounts.held(peerId)} AND "jobId" IS NOT NULL
      GROUP BY "jobId" HAVING SUM(amount) > 0 ORDER BY MIN(id)`;
    return rows.map((r) => ({ peerId, jobId: r.jobId, amount: r.amount }));
  }

  /** Held credits older than `before` of providers that are not banned (ready to vest). */
  async vestable(before: Date, limit: number): Promise<HeldCredit[]> {
    const held: AccountKind = 'held';
    const credits = await this.prisma.$queryRaw<HeldCredit[]>`
      SELECT e."payeePeerId" AS "peerId", e."jobId"::text AS "jobId", SUM(e.amount)::bigint AS amount
      FROM "LedgerEntry" e
      WHERE e."accountKind" = ${held} AND e."payeePeerId" IS NOT NULL AND e."jobId" IS NOT NULL
      GROUP BY e."payeePeerId", e."jobId"
      HAVING SUM(e.amount) > 0 AND MAX(e."createdAt") < ${before}
      LIMIT ${limit}`;
    if (credits.length === 0) return [];
    const banned = await this.prisma.provider.findMany({
      where: { peerId: { in: [...new Set(credits.map((c) => c.peerId))] }, status: 'BANNED' },
      select: { peerId: true },
    });
    const bannedSet = new Set(banned.map((b) => b.peerId));
    return credits.filter((c) => !bannedSet.has(c.peerId));
  }

  /**
   * Moves a held credit into the provider's earnings and the fee held on it into the platform's
   * fees, together (an epoch pays both from there, debiting the developer for both).
   */
  async vest(credit: HeldCredit): Promise<boolean> {
    return this.prisma.$transaction(async (tx) => {
      const held = LedgerAccounts.held(credit.peerId);
      await lockCredit(tx, held, credit.jobId);
      const { credit: left, fee } = await heldOfJob(tx, credit.peerId, credit.jobId);
      if (left <= 0n) return false;
      const { kind, postings } = vestPostings(credit.peerId, left, fee);
      await this.ledger.post(tx, kind, postings, { jobId: credit.jobId });
      return true;
    });
  }

  /**
   * Takes back what is still held of a credit: the provider's share and the fee held on it go back
   * to the developer's available balance. Returns the refunded amount (0 when nothing is held any
   * more: a credit already reversed, or vested, is not reversed again).
   */
  async reverse(credit: HeldCredit, job: Job): Promise<bigint> {
    return this.prisma.$transaction(async (tx) => {
      const held = LedgerAccounts.held(credit.peerId);
      await lockCredit(tx, held, job.id);
      const { credit: left, fee } = await heldOfJob(tx, credit.peerId, job.id);
      if (left <= 0n) return 0n;
      const { kind, postings } = reversePostings(job.accountId, credit.peerId, left, fee);
      await this.ledger.post(tx, kind, postings, { jobId: job.id });
      return left + fee;
    });
  }

  /**
   * A completed job whose result was found wrong: the coordinator's reference replaces it (its
   * verification marked corrected), a `job.corrected` event is recorded (both by the jobs lifecycle,
   * JobsRepository.correctResult) and, when the developer's account has a webhook, its delivery is
   * queued in the same transaction (outbox). False, changing nothing, when the job is not completed.
   */
  async correctResult(
    job: Job,
    outputs: unknown,
    resultHash: string,
    detail: Record<string, unknown>,
  ): Promise<boolean> {
    const before = (job.result as { verification?: Record<string, unknown> } | null)?.verification ?? {};
    const verification = { ...before, method: 'reference', verified: true, corrected: true };
    const data = { jobId: job.id, resultHash, ...detail };
    return this.jobs.correctResult(
      { jobId: job.id, result: { outputs, verification }, resultHash, eventData: data },
      (tx) =>
        this.webhooks.enqueueIn(tx, {
          accountId: job.accountId,
          jobId: job.id,
          event: JOB_CORRECTED_EVENT,
          data,
        }),
    );
  }

  /** Whether a job's result was already corrected. */
  async wasCorrected(jobId: string): Promise<boolean> {
    const row = await this.prisma.jobEvent.findFirst({
      where: { jobId, type: JOB_CORRECTED_EVENT },
      select: { id: true },
    });
    return row !== null;
  }

  /**
   * Completed developer jobs whose delivered result a provider's accepted attempt produced, finished
   * since `since`, newest first (the jobs a banned provider's re-verification covers once its
   * credits vested: with a hold of 0 s they vest at once).
   */
  async deliveredBy(peerId: string, since: Date, limit: number): Promise<string[]> {
    const rows = await this.prisma.$queryRaw<{ jobId: string }[]>`
      SELECT t."jobId"::text AS "jobId", MAX(t."finishedAt") AS at
        FROM "JobAttempt" t JOIN "Job" j ON j.id = t."jobId"
       WHERE t."providerId" = ${peerId} AND t.state = 'SUCCEEDED' AND t."finishedAt" >= ${since}
         AND j.state = 'COMPLETED' AND j.canary = false
       GROUP BY t."jobId" ORDER BY at DESC LIMIT ${limit}`;
    return rows.map((r) => r.jobId);
  }

  /**
   * What a provider's tier is decided from: its checked results (counted up to `cap`) and its latest
   * verification penalty.
   */
  async trustRecord(
    peerId: string,
    cap: number,
    verifiedKinds: readonly string[],
    penaltyKinds: readonly string[],
  ): Promise<{ verifiedResults: number; lastPenaltyAt: Date | null }> {
    const [row] = await this.sql.query<{ verified: number; lastPenaltyAt: Date | null }>(
      `SELECT (SELECT COUNT(*)::int FROM (SELECT 1 FROM "ReputationEvent"
                 WHERE "peerId" = $1 AND kind = ANY($2::text[]) LIMIT $3) v) AS verified,
              (SELECT MAX("createdAt") FROM "ReputationEvent"
                 WHERE "peerId" = $1 AND kind = ANY($4::text[])) AS "lastPenaltyAt"`,
      [peerId, verifiedKinds, cap, penaltyKinds],
    );
    return { verifiedResults: row?.verified ?? 0, lastPenaltyAt: row?.lastPenaltyAt ?? null };
  }

  attempts(jobId: string): Promise<JobAttempt[]> {
    return this.sql.query<JobAttempt>(
      `SELECT id::text AS id, "jobId"::text AS "jobId", attempt, "providerId", state::text AS state, receipt,
              "outputHash", error, "offeredAt", "startedAt", "finishedAt"
         FROM "JobAttempt" WHERE "jobId" = $1::uuid ORDER BY attempt`,
      [jobId],
    );
  }

  /** The latest real (non-canary) job of a kind, or null. */
  latestRealJob(kind: string): Promise<Job | null> {
    return this.prisma.job.findFirst({ where: { kind, canary: false }, orderBy: { createdAt: 'desc' } });
  }

  findJob(jobId: string): Promise<Job | null> {
    return this.jobs.findById(jobId);
  }
}

/**
 * Who a slash of `peerId` compensates: the developers (account addresses) of the jobs it ran with a
 * SUCCEEDED attempt finishing in the 7 days up to `now`, and of the convicted job itself, weighted by
 * the jobs' cost (base units), the largest 64 first. Canary jobs (the coordinator's own) count for
 * nobody, nor does the convicted operator's own address. None: the slash is burnt.
 */
export async function compensationBeneficiaries(
  tx: Prisma.TransactionClient,
  input: { peerId: string; operatorAddress: string; convictedJobId: string; now: Date },
): Promise<{ account: string; weight: bigint }[]> {
  const { peerId, convictedJobId, now } = input;
  const operator = input.operatorAddress.toLowerCase();
  const since = new Date(now.getTime() - COMPENSATION_WINDOW_MS);
  const rows = await tx.$queryRaw<{ account: string; weight: bigint }[]>`
    SELECT a.address AS account, SUM(j.cost)::bigint AS weight
    FROM "Job" j JOIN "Account" a ON a.id = j."accountId"
    WHERE j.canary = false AND j.cost > 0 AND a.address <> ${operator} AND (
      j.id = ${convictedJobId}::uuid OR EXISTS (
        SELECT 1 FROM "JobAttempt" t
        WHERE t."jobId" = j.id AND t."providerId" = ${peerId} AND t.state = 'SUCCEEDED'
          AND t."finishedAt" >= ${since} AND t."finishedAt" <= ${now}))
    GROUP BY a.address
    ORDER BY weight DESC, account ASC
    LIMIT ${MAX_SLASH_BENEFICIARIES}`;
  return rows.map((r) => ({ account: r.account, weight: BigInt(r.weight) }));
}
