import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { AttemptState, JobAttempt } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';
import { SqlParams, SqlService, jsonText, type SqlRunner } from '../database/sql.service.js';

const OPEN_STATES: AttemptState[] = ['OFFERED', 'ACCEPTED', 'RUNNING'];

export interface AttemptOutcomeData {
  receipt?: unknown;
  outputHash?: string;
  error?: string;
  /** When the provider accepted, for an outcome recorded without a separate acceptance. */
  startedAt?: Date;
}

/** One attempt's move, as `settleAttempts` takes it. */
export interface AttemptMove extends AttemptOutcomeData {
  id: string;
  to: AttemptState;
}

/**
 * The statement that moves attempts on only from an open state (ACCEPTED only from OFFERED), so a
 * late or duplicate outcome changes nothing; it returns the ids that moved. Usable as a CTE.
 */
export function settleAttemptsSql(moves: readonly AttemptMove[], p: SqlParams): string {
  const now = new Date().toISOString();
  return `UPDATE "JobAttempt" a
        SET state = u.next::"AttemptState",
            "startedAt" = COALESCE(u.started, a."startedAt"),
            "finishedAt" = COALESCE(u.finished, a."finishedAt"),
            receipt = COALESCE(u.receipt::jsonb, a.receipt),
            "outputHash" = COALESCE(u.output_hash, a."outputHash"),
            error = COALESCE(u.error, a.error)
       FROM unnest(${p.add(moves.map((m) => m.id))}::uuid[], ${p.add(moves.map((m) => m.to))}::text[],
                   ${p.add(moves.map((m) => m.startedAt?.toISOString() ?? (m.to === 'ACCEPTED' ? now : null)))}::timestamptz[],
                   ${p.add(moves.map((m) => (m.to === 'ACCEPTED' ? null : now)))}::timestamptz[],
                   ${p.add(moves.map((m) => (m.receipt === undefined ? null : jsonText(m.receipt))))}::text[],
                   ${p.add(moves.map((m) => m.outputHash ?? null))}::text[],
                   ${p.add(moves.map((m) => (m.error ? m.error.slice(0, 2000) : null)))}::text[])
            AS u(id, next, started, finished, receipt, output_hash, error)
      WHERE a.id = u.id
        AND (a.state = 'OFFERED' OR (u.next <> 'ACCEPTED' AND a.state IN ('ACCEPTED', 'RUNNING')))
      RETURNING a.id::text AS id`;
}

/** Moves attempts (see `settleAttemptsSql`) in one statement, on any client; returns the ids that moved. */
export async function settleAttempts(db: SqlRunner, moves: readonly AttemptMove[]): Promise<Set<string>> {
  if (moves.length === 0) return new Set();
  const p = new SqlParams();
  const rows = await db.query<{ id: string }>(settleAttemptsSql(moves, p), p.values);
  return new Set(rows.map((r) => r.id));
}

/** One attempt's move (see `settleAttempts`); true when it moved. */
export async function settleAttempt(
  db: SqlRunner,
  id: string,
  to: AttemptState,
  data: AttemptOutcomeData = {},
): Promise<boolean> {
  return (await settleAttempts(db, [{ id, to, ...data }])).has(id);
}

/** New attempts laid out for one insert: one row per (job, provider), numbered per job. */
export interface OfferRows {
  offers: readonly { jobId: string; providerIds: readonly string[] }[];
  ids: string[];
  jobs: string[];
  providers: string[];
  steps: number[];
}

export function offerRows(offers: readonly { jobId: string; providerIds: readonly string[] }[]): OfferRows {
  const rows: OfferRows = { offers, ids: [], jobs: [], providers: [], steps: [] };
  const perJob = new Map<string, number>();
  for (const offer of offers) {
    for (const providerId of offer.providerIds) {
      const step = (perJob.get(offer.jobId) ?? 0) + 1;
      perJob.set(offer.jobId, step);
      rows.ids.push(randomUUID());
      rows.jobs.push(offer.jobId);
      rows.providers.push(providerId);
      rows.steps.push(step);
    }
  }
  return rows;
}

/** The insert of offered attempts, each job's numbers after its earlier attempts. Usable as a CTE. */
export function insertOffersSql(rows: OfferRows, p: SqlParams): string {
  return `INSERT INTO "JobAttempt" (id, "jobId", attempt, "providerId", state, "offeredAt")
     SELECT t.id, t.job, COALESCE(m.last, 0) + t.step, t.provider, 'OFFERED', now()
       FROM unnest(${p.add(rows.ids)}::uuid[], ${p.add(rows.jobs)}::uuid[], ${p.add(rows.providers)}::text[],
                   ${p.add(rows.steps)}::int[]) AS t(id, job, provider, step)
       LEFT JOIN LATERAL (SELECT MAX(a.attempt) AS last FROM "JobAttempt" a WHERE a."jobId" = t.job) m ON true
     RETURNING id::text AS id, "jobId"::text AS "jobId", attempt, "providerId", state::text AS state, receipt,
               "outputHash", error, "offeredAt", "startedAt", "finishedAt"`;
}

/** Each offer's inserted attempts, in the order given. */
export function offeredAttempts(rows: OfferRows, inserted: readonly JobAttempt[]): JobAttempt[][] {
  const byId = new Map(inserted.map((r) => [r.id, r]));
  let next = 0;
  return rows.offers.map((offer) =>
    offer.providerIds.map(() => {
      const row = byId.get(rows.ids[next++]);
      if (!row) throw new Error(`attempt offer for job ${offer.jobId} was not inserted`);
      return row;
    }),
  );
}

/**
 * Offers attempts to providers inside a transaction, for several jobs in one statement; each job's
 * numbers continue after its earlier attempts. Returns each request's attempts, in the order given.
 */
export async function createAttemptOffers(
  db: SqlRunner,
  offers: readonly { jobId: string; providerIds: readonly string[] }[],
): Promise<JobAttempt[][]> {
  const rows = offerRows(offers);
  if (rows.ids.length === 0) return offers.map(() => []);
  const p = new SqlParams();
  return offeredAttempts(rows, await db.query<JobAttempt>(insertOffersSql(rows, p), p.values));
}

/** An attempt whose provider said the job itself cannot run (see AttemptsRepository.inputFaults). */
export interface InputFaultAttempt {
  attemptId: string;
  attempt: number;
  providerId: string;
  /** The provider's operator, as placement counts operators. */
  operator: string;
  /** The provider's error ("CODE: message"), without the prefix. */
  error: string;
}

/**
 * The job event a completion records for each input-fault claim its verified result disproved
 * (dispatch/input-faults.ts claimDisprovedNote). Its partial index (JobEvent_claim_disproved_idx,
 * prisma/schema.prisma) names this value, and a query finds it there only with the value in its text.
 */
export const CLAIM_DISPROVED_EVENT = 'attempt.claim_disproved';

/** An input-fault attempt a completion of its job disproved (see AttemptsRepository.disprovedUncharged). */
export interface DisprovedAttempt extends InputFaultAttempt {
  jobId: string;
}

@Injectable()
export class AttemptsRepository {
  constructor(
    private readonly prisma: PrismaService,
    private readonly sql: SqlService,
  ) {}

  forJob(jobId: string): Promise<JobAttempt[]> {
    return this.prisma.jobAttempt.findMany({ where: { jobId }, orderBy: { attempt: 'asc' } });
  }

  /** Moves an attempt on only from an open state, so a late or duplicate outcome changes nothing. */
  settle(id: string, to: AttemptState, data: AttemptOutcomeData = {}): Promise<boolean> {
    return settleAttempt(this.sql, id, to, data);
  }

  /** A SUCCEEDED attempt whose result failed verification: FAILED, so it is neither paid nor reused. */
  async reject(attemptId: string, error: string): Promise<void> {
    await this.prisma.jobAttempt.updateMany({
      where: { id: attemptId, state: 'SUCCEEDED' },
      data: { state: 'FAILED', error: error.slice(0, 2000) },
    });
  }

  /** One more attempt of a job (a tie-break on another operator), numbered after the others. */
  async offerExtra(jobId: string, peerId: string): Promise<JobAttempt> {
    const [[attempt]] = await createAttemptOffers(this.sql, [{ jobId, providerIds: [peerId] }]);
    return attempt;
  }

  /**
   * The job's attempts whose provider reported an input fault (`errorPrefix`, INPUT_FAULT_ATTEMPT),
   * with each provider's operator: the lower-case address it signs with, as placement counts operators.
   */
  async inputFaults(jobId: string, errorPrefix: string): Promise<InputFaultAttempt[]> {
    return this.sql.query<InputFaultAttempt>(
      `SELECT a.id::text AS "attemptId", a.attempt, a."providerId" AS "providerId",
              lower(COALESCE(p.address, a."providerId")) AS operator,
              substr(a.error, length($2) + 1) AS error
         FROM "JobAttempt" a LEFT JOIN "Provider" p ON p."peerId" = a."providerId"
        WHERE a."jobId" = $1::uuid AND a.state = 'FAILED' AND a."providerId" IS NOT NULL
          AND starts_with(a.error, $2)
        ORDER BY a.attempt`,
      [jobId, errorPrefix],
    );
  }

  /**
   * The input-fault claims (attempts failed with `errorPrefix`, as `inputFaults` reads them) that a
   * completion disproved, recorded before `before`, that no DisprovedClaim row charges yet: the ones a
   * worker that stopped between the completion's commit and the charge left. Oldest event first, at
   * most `limit`. The event names its attempt by number and provider; a claim whose provider row is
   * gone is left out (nobody to charge). The type is written into the statement, not bound, so the
   * planner can prove the partial index's predicate and read only claim events (a prepared
   * statement's generic plan could not with a parameter).
   */
  async disprovedUncharged(errorPrefix: string, before: Date, limit: number): Promise<DisprovedAttempt[]> {
    return this.sql.query<DisprovedAttempt>(
      `SELECT a.id::text AS "attemptId", a."jobId"::text AS "jobId", a.attempt, a."providerId" AS "providerId",
              lower(COALESCE(p.address, a."providerId")) AS operator,
              substr(a.error, length($1) + 1) AS error
         FROM "JobEvent" e
         JOIN "JobAttempt" a ON a."jobId" = e."jobId" AND a.attempt = (e.data->>'attempt')::int
         JOIN "Provider" p ON p."peerId" = a."providerId"
        WHERE e.type = '${CLAIM_DISPROVED_EVENT}' AND e."createdAt" < $2::timestamp
          AND a."providerId" = e.data->>'provider' AND a.state = 'FAILED' AND starts_with(a.error, $1)
          AND NOT EXISTS (SELECT 1 FROM "DisprovedClaim" d WHERE d."attemptId" = a.id)
        ORDER BY e.id
        LIMIT $3`,
      // timestamp (no zone) from the UTC ISO text: what Prisma writes, whatever the session's time zone.
      [errorPrefix, before.toISOString(), limit],
    );
  }

  /** Attempts left open by a process that died: they are lost. */
  async loseOpenAttempts(jobId: string, reason: string): Promise<JobAttempt[]> {
    const open = await this.prisma.jobAttempt.findMany({ where: { jobId, state: { in: OPEN_STATES } } });
    await settleAttempts(
      this.sql,
      open.map((attempt) => ({ id: attempt.id, to: 'LOST' as const, error: reason })),
    );
    return open;
  }
}
