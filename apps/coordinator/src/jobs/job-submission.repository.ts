import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Job } from '#prisma';
import { fitsSpendingCap, type SpendingCapDomain } from '@gpumesh/rewards';
import { SPENDING_CAP_DOMAIN } from '../accounts/spending-cap-domain.js';
import { spendingBoundsIn } from '../accounts/spending-caps.repository.js';
import { GroupCommit } from '../common/group-commit.js';
import { SqlParams, SqlService, jsonText, type SqlRunner } from '../database/sql.service.js';
import { LedgerAccounts } from '../ledger/accounts.js';
import { reserveInsertedJobsSql } from '../ledger/ledger.repository.js';
import { JOB_COLUMNS, type NewJob } from './jobs.repository.js';

/** How one submission of a batch ended. */
export type SubmissionOutcome =
  | { kind: 'inserted'; job: Job }
  | { kind: 'insufficient-balance' }
  | { kind: 'idempotency-key-taken' }
  /** The account asked the escrow to unlock its deposit: it may not start new spending. */
  | { kind: 'escrow-unlocking'; unlockAt: Date }
  /** Its cost would take the account's escrowed spending past the cap it signed. */
  | { kind: 'spending-cap-exceeded'; cap: bigint; committed: bigint };

/**
 * A canary job (or another known-answer job the coordinator makes): owned and paid by the platform
 * account, stored QUEUED with `canary` set, with no idempotency key and priority 0.
 */
export type NewCanaryJob = Omit<NewJob, 'priority' | 'idempotencyKey' | 'verification'> & {
  verification: unknown;
};

const MAX_BATCH = 256;

/**
 * Stores new jobs with the reservation of their cost, several submissions per database transaction.
 *
 * Every reservation debits the account's one available-balance row, so one transaction per job
 * serialises all of an account's submissions on that row lock and on a WAL flush each. Group commit
 * takes the submissions that arrive in one event-loop turn, locks the balances once, admits them in
 * arrival order while the balance lasts (a job that does not fit gets 402, later smaller ones still
 * go in), and writes jobs, ledger entries, balances and events in one statement.
 *
 * An account whose escrow unlock is pending (an `EscrowUnlock` row) is refused: its deposit is on
 * its way out, so nothing new may be spent from it. The row is written under the same balance-row
 * lock (SettlementRepository.applyEscrowEvent), so a submission either commits before the unlock is
 * applied or sees it.
 *
 * With a chain, an account is also refused new spending past the spending cap it signed (the
 * SpendingCap row; JobEscrow.debit enforces the same cap on chain): what it committed (deposited less
 * available: spent, held or reserved) plus the job's cost must stay within the cap. Read under the
 * same lock, so concurrent submissions cannot pass it together.
 */
@Injectable()
export class JobSubmissionRepository {
  /** One batch in flight at a time: the next one gathers while this one commits. */
  private readonly submissions = new GroupCommit<NewJob, SubmissionOutcome>({
    commit: (jobs) => this.writeBatch(jobs),
    maxBatch: MAX_BATCH,
    maxInFlight: 1,
    retryAlone: false,
  });

  constructor(
    private readonly sql: SqlService,
    @Inject(SPENDING_CAP_DOMAIN) private readonly capDomain: SpendingCapDomain | null,
  ) {}

  submit(job: NewJob): Promise<SubmissionOutcome> {
    return this.submissions.submit(job);
  }

  /**
   * Inserts a canary job and its `job.submitted` event (as a submission's) in one statement, inside
   * the caller's transaction, which checks and reserves its cost (VerificationRepository.insertCanary
   * also stores the canary's answer). Sent before this returns: on a pipelined transaction the
   * caller's next statement travels with it.
   */
  insertCanaryIn(tx: SqlRunner, c: NewCanaryJob): Promise<Job> {
    const inserted = tx.query<Job>(
      `WITH job AS (
         INSERT INTO "Job" (id, "accountId", kind, state, spec, "specHash", "workUnits", "pricePerUnit", cost,
                            redundancy, verification, canary, "deadlineAt", "createdAt", "updatedAt")
         VALUES ($1::uuid, $2::uuid, $3, 'QUEUED'::"JobState", $4::jsonb, $5, $6::bigint, $7::bigint, $8::bigint,
                 $9, $10::jsonb, true, $11::timestamptz, now(), now())
         RETURNING *
       ), event AS (
         INSERT INTO "JobEvent" ("jobId", type, "toState", data, "createdAt")
         SELECT id, 'job.submitted', 'QUEUED'::"JobState",
                jsonb_build_object('cost', cost::text, 'workUnits', "workUnits"::text), now()
         FROM job
       )
       SELECT ${JOB_COLUMNS} FROM job`,
      [
        c.id,
        c.accountId,
        c.kind,
        jsonText(c.spec),
        c.specHash,
        c.workUnits.toString(),
        c.pricePerUnit.toString(),
        c.cost.toString(),
        c.redundancy,
        jsonText(c.verification),
        c.deadlineAt.toISOString(),
      ],
    );
    return inserted.then(([job]) => job);
  }

  private async writeBatch(jobs: NewJob[]): Promise<SubmissionOutcome[]> {
    return this.sql.transaction(async (tx) => {
      const accounts = [...new Set(jobs.map((j) => LedgerAccounts.available(j.accountId)))];
      const balances = await tx.query<{ account: string; balance: bigint }>(
        `SELECT account, balance FROM "LedgerBalance" WHERE account = ANY($1::text[])
          ORDER BY account COLLATE "C" FOR UPDATE`,
        [accounts],
      );
      const left = new Map(balances.map((b) => [b.account, b.balance]));
      const accountIds = [...new Set(jobs.map((j) => j.accountId))];
      // Both sent at once (pipelined), after the lock: one round trip.
      const [unlocks, bounds] = await Promise.all([
        tx.query<{ accountId: string; unlockAt: Date }>(
          `SELECT "accountId"::text AS "accountId", "unlockAt" FROM "EscrowUnlock" WHERE "accountId" = ANY($1::uuid[])`,
          [accountIds],
        ),
        this.capDomain ? spendingBoundsIn(tx, accountIds, this.capDomain) : null,
      ]);
      const unlocking = new Map(unlocks.map((u) => [u.accountId, u.unlockAt]));
      const admitted: NewJob[] = [];
      const outcomes: (SubmissionOutcome | null)[] = jobs.map((job) => {
        const unlockAt = unlocking.get(job.accountId);
        if (unlockAt) return { kind: 'escrow-unlocking', unlockAt };
        const account = LedgerAccounts.available(job.accountId);
        const available = left.get(account) ?? 0n;
        if (job.cost > available) return { kind: 'insufficient-balance' };
        const bound = bounds?.get(job.accountId);
        if (bound) {
          // `left` already holds this batch's earlier admissions: they count as committed.
          const committed = bound.deposited - available;
          if (!fitsSpendingCap(bound.cap, committed, job.cost)) {
            return { kind: 'spending-cap-exceeded', cap: bound.cap, committed };
          }
        }
        left.set(account, available - job.cost);
        admitted.push(job);
        return null;
      });
      if (admitted.length === 0) return outcomes as SubmissionOutcome[];

      const p = new SqlParams();
      for (const values of [
        admitted.map((j) => j.id),
        admitted.map((j) => j.accountId),
        admitted.map((j) => j.kind),
        admitted.map((j) => jsonText(j.spec)),
        admitted.map((j) => j.specHash),
        admitted.map((j) => j.workUnits.toString()),
        admitted.map((j) => j.pricePerUnit.toString()),
        admitted.map((j) => j.cost.toString()),
        admitted.map((j) => j.redundancy),
        admitted.map((j) => j.priority),
        admitted.map((j) => j.deadlineAt.toISOString()),
        admitted.map((j) => j.idempotencyKey),
        admitted.map((j) => (j.verification === undefined ? null : JSON.stringify(j.verification))),
      ]) {
        p.add(values);
      }
      // The ledger writes the reservations of the jobs inserted ($14 on).
      const reserve = reserveInsertedJobsSql('ins', randomUUID(), admitted, p);
      const inserted = tx.query<Job>(
        `
        WITH input AS (
          SELECT * FROM unnest(
            $1::text[], $2::text[],
            $3::text[], $4::text[],
            $5::text[], $6::text[],
            $7::text[], $8::text[],
            $9::int[], $10::int[],
            $11::text[], $12::text[],
            $13::text[]
          ) AS t(id, account_id, kind, spec, spec_hash, work_units, price, cost, redundancy, priority, deadline_at, idem, verification)
        ), ins AS (
          INSERT INTO "Job" (id, "accountId", kind, state, spec, "specHash", "workUnits", "pricePerUnit", cost,
                             redundancy, priority, "deadlineAt", "idempotencyKey", verification, "createdAt", "updatedAt")
          SELECT id::uuid, account_id::uuid, kind, 'QUEUED'::"JobState", spec::jsonb, spec_hash, work_units::bigint,
                 price::bigint, cost::bigint, redundancy, priority, deadline_at::timestamptz, idem, verification::jsonb,
                 now(), now()
          FROM input
          ON CONFLICT ("accountId", "idempotencyKey") DO NOTHING
          RETURNING *
        ), ${reserve.join(',\n')}, events AS (
          INSERT INTO "JobEvent" ("jobId", type, "toState", data, "createdAt")
          SELECT id, 'job.submitted', 'QUEUED'::"JobState",
                 jsonb_build_object('cost', cost::text, 'workUnits', "workUnits"::text), now()
          FROM ins
          RETURNING id
        )
        SELECT id::text AS id, "accountId"::text AS "accountId", kind, state::text AS state, spec, "specHash",
               "workUnits", "pricePerUnit", cost, redundancy, verification, canary, priority, "deadlineAt",
               "idempotencyKey", result,
               "resultHash", error, "createdAt", "updatedAt", "finishedAt"
        FROM ins`,
        p.values,
      );
      // The commit travels with the insert (one round trip).
      const [rows] = await Promise.all([inserted, tx.commit()]);
      const byId = new Map(rows.map((r) => [r.id, r]));
      let next = 0;
      return outcomes.map((outcome) => {
        if (outcome) return outcome;
        const job = admitted[next++];
        const row = byId.get(job.id);
        return row ? { kind: 'inserted', job: row } : { kind: 'idempotency-key-taken' };
      });
    });
  }
}
