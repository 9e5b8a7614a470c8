import { Injectable } from '@nestjs/common';
import { REJECT_NO_CAPACITY } from '@gpumesh/protocol';
import { Prisma, type AttemptState, type Job, type JobAttempt, type JobEvent } from '#prisma';
import {
  insertOffersSql,
  offerRows,
  offeredAttempts,
  settleAttemptsSql,
  type AttemptMove,
  type AttemptOutcomeData,
} from './attempts.repository.js';
import {
  SqlParams,
  SqlService,
  jsonText,
  prismaRunner,
  type SqlTransaction,
} from '../database/sql.service.js';
import { PrismaService } from '../database/prisma.service.js';
import type { LedgerEntryKind, LedgerPosting } from '../ledger/ledger-accounts.js';
import { jobEffectPostings, type JobLedgerEffect } from '../ledger/postings.js';
import { LedgerRepository, insertEntriesSql, planPostings } from '../ledger/ledger.repository.js';
import { DomainError } from '../common/domain-error.js';
import {
  CORRECTABLE_STATES,
  JOB_CORRECTED_EVENT,
  JOB_TRANSITIONS,
  isTerminal,
  statesLeadingTo,
  type JobState,
} from './job-state.js';
import { GroupCommit } from '../common/group-commit.js';
import { lifecycleDeliveryRows } from '../events/webhooks/webhook-events.js';
import { insertLifecycleDeliveriesSql } from '../events/webhooks/webhooks.repository.js';

/** How the error of an attempt the provider rejected starts (then the provider's reason). */
export const REJECTED_ATTEMPT = 'rejected: ';
/**
 * The error of an attempt lost through no fault of its provider (the coordinator worker running it
 * stopped): unlike every other LOST attempt, it does not exclude the provider from the job.
 */
export const WORKER_LOST_ATTEMPT = 'worker stopped: ';
/**
 * The error of an attempt this coordinator failed itself (no room in its result byte budget): like
 * WORKER_LOST_ATTEMPT, it does not exclude the provider from the job.
 */
export const COORDINATOR_FAULT_ATTEMPT = 'coordinator: ';
/**
 * How the error of a FAILED attempt starts when its provider said the job itself cannot run (an
 * `error` frame code of INPUT_FAULT_ERROR_CODES), then the provider's code and message. Like any
 * failure it excludes the provider from the job; providers of two distinct operators saying so fail
 * the job (dispatch/input-faults.ts).
 */
export const INPUT_FAULT_ATTEMPT = 'input fault: ';

export interface NewJob {
  id: string;
  accountId: string;
  kind: string;
  spec: unknown;
  specHash: string;
  workUnits: bigint;
  pricePerUnit: bigint;
  cost: bigint;
  redundancy: number;
  priority: number;
  deadlineAt: Date;
  idempotencyKey: string | null;
  /** The policy the job runs under (pricing/policy.ts JobVerification). */
  verification?: unknown;
}

export interface JobListQuery {
  accountId?: string;
  states?: JobState[];
  kind?: string;
  before?: { createdAt: Date; id: string };
  limit: number;
}

/** What a transition does to the job's reservation (the ledger builds the postings: ledger/postings.ts). */
export type TransitionEffect = JobLedgerEffect;

export interface TransitionRequest {
  jobId: string;
  to: JobState;
  /** Only move if the job is in one of these states; defaults to every state that may lead to `to`. */
  from?: JobState[];
  eventType: string;
  eventData?: Record<string, unknown>;
  effect?: TransitionEffect;
  patch?: { result?: unknown; resultHash?: string; error?: string };
  /** States passed through on the way, in order, in the same transaction, each with its own event row. */
  via?: PassThrough | PassThrough[];
  /** Events without a state change, recorded first in the same transaction. */
  notes?: { type: string; data?: Record<string, unknown> }[];
  /** An attempt moved in the same transaction (only from an open state). */
  attempt?: { id: string; to: AttemptState } & AttemptOutcomeData;
  /** New attempts offered to these providers in the same transaction. */
  offers?: string[];
}

export interface PassThrough {
  state: JobState;
  eventType: string;
  eventData?: Record<string, unknown>;
}

/** The pass-through states of a request, in order. */
export function passThroughs(req: TransitionRequest): PassThrough[] {
  if (!req.via) return [];
  return Array.isArray(req.via) ? req.via : [req.via];
}

export interface TransitionResult {
  job: Job;
  offered: JobAttempt[];
}

interface QueuedTransition {
  req: TransitionRequest;
  from: JobState[];
}

/** Most transitions committed together. */
const MAX_TRANSITION_BATCH = 128;
/** Batches committing at once (each holds one pooled connection). */
const MAX_BATCHES_IN_FLIGHT = 2;

/**
 * Rows of jobs this process inserted and has not dispatched yet, kept for their first dispatch (see
 * takeInserted), up to this many tensor bytes in all (their specs' inputs, as base64).
 */
const INSERTED_KEPT_BYTES = 16 * 1024 * 1024;

/** JSON for a Json column: bigints as decimal strings. */
export function jsonValue(value: unknown): Prisma.InputJsonValue {
  return JSON.parse(jsonText(value)) as Prisma.InputJsonValue;
}

/** A job as dispatch reads it, with the providers that failed it and those that lost it. */
export interface DispatchRead {
  job: Job;
  /** Providers whose attempt FAILED (never offered the job again). */
  failedProviders: string[];
  /** Providers whose attempt was LOST through them (offered the job again only as a last resort). */
  lostProviders: string[];
}

/** Jobs, their events and the ledger moves that go with their transitions. */
@Injectable()
export class JobsRepository {
  /** Concurrent transitions share database transactions (see GroupCommit). */
  private readonly transitions: GroupCommit<QueuedTransition, TransitionResult | null>;

  /** See takeInserted: job rows by id, with the bytes each holds, oldest first. */
  private readonly inserted = new Map<string, { job: Job; bytes: number }>();
  private insertedBytes = 0;

  /** Reads for dispatch, batched (see findForDispatch). */
  private readonly dispatchReads: GroupCommit<string, DispatchRead | null>;

  constructor(
    private readonly prisma: PrismaService,
    private readonly sql: SqlService,
    private readonly ledger: LedgerRepository,
  ) {
    this.dispatchReads = new GroupCommit({
      commit: async (ids) => {
        // FAILED: a provider that failed the job is never offered it again. LOST (dial or negotiation
        // failure, accept-then-silence, reset, disconnect): a provider that lost it is offered it
        // again only when nobody else can take it (a last resort, see DispatchService.dispatch), so
        // one liar cannot take a job back while honest capacity exists, and an honest provider that
        // restarted mid-job is not shut out of it for good. Neither: a provider that was only full
        // (two workers offered its last slot at once), or whose attempt ended through this
        // coordinator (its worker stopped, no byte budget for the result).
        const rows = await this.sql.query<Job & { failedProviders: string[]; lostProviders: string[] }>(
          `SELECT ${JOB_COLUMNS},
                  ARRAY(SELECT DISTINCT a."providerId" FROM "JobAttempt" a
                         WHERE a."jobId" = "Job".id AND a."providerId" IS NOT NULL
                           AND a.state = 'FAILED' AND coalesce(a.error, '') NOT LIKE $2)
                    AS "failedProviders",
                  ARRAY(SELECT DISTINCT a."providerId" FROM "JobAttempt" a
                         WHERE a."jobId" = "Job".id AND a."providerId" IS NOT NULL
                           AND a.state = 'LOST' AND NOT coalesce(a.error, '') LIKE ANY($3::text[]))
                    AS "lostProviders"
             FROM "Job" WHERE id = ANY($1::uuid[])`,
          [
            [...new Set(ids)],
            `${REJECTED_ATTEMPT}${REJECT_NO_CAPACITY}%`,
            [`${WORKER_LOST_ATTEMPT}%`, `${COORDINATOR_FAULT_ATTEMPT}%`],
          ],
        );
        const byId = new Map(
          rows.map(({ failedProviders, lostProviders, ...job }) => [
            job.id,
            { job: job as Job, failedProviders, lostProviders },
          ]),
        );
        return ids.map((id) => byId.get(id) ?? null);
      },
      key: (id) => id,
      maxBatch: MAX_TRANSITION_BATCH,
      maxInFlight: MAX_BATCHES_IN_FLIGHT,
    });
    this.transitions = new GroupCommit({
      commit: (batch) => this.sql.transaction((tx) => this.applyBatch(tx, batch)),
      key: (t) => t.req.jobId,
      maxBatch: MAX_TRANSITION_BATCH,
      maxInFlight: MAX_BATCHES_IN_FLIGHT,
    });
  }

  /**
   * A job with the providers that failed it (never offered it again), for a dispatch or a tie-break.
   * Concurrent reads share one query (under load many dispatches start in the same event-loop turn).
   */
  async findForDispatch(id: string): Promise<DispatchRead | null> {
    if (!UUID.test(id)) return null;
    return this.dispatchReads.submit(id);
  }

  /**
   * Keeps the row of a job this process just inserted (and queued) for its first dispatch, which
   * then needs no read: a new job has no failed providers, and a job that moved meanwhile (cancelled,
   * expired) fails the dispatch's QUEUED → DISPATCHED move, which checks the state under lock. The
   * oldest rows give way beyond INSERTED_KEPT_BYTES; a job not found here is read as before.
   */
  rememberInserted(job: Job): void {
    const inputs = (job.spec as { inputs?: { data?: unknown }[] } | null)?.inputs ?? [];
    const bytes = inputs.reduce((n, t) => n + (typeof t.data === 'string' ? t.data.length : 0), 256);
    if (bytes > INSERTED_KEPT_BYTES / 16 || this.inserted.has(job.id)) return;
    this.inserted.set(job.id, { job, bytes });
    this.insertedBytes += bytes;
    for (const [id, kept] of this.inserted) {
      if (this.insertedBytes <= INSERTED_KEPT_BYTES) break;
      this.inserted.delete(id);
      this.insertedBytes -= kept.bytes;
    }
  }

  /** The row rememberInserted kept for this job's first dispatch (taken: a second call finds none). */
  takeInserted(id: string): DispatchRead | null {
    const kept = this.inserted.get(id);
    if (!kept) return null;
    this.inserted.delete(id);
    this.insertedBytes -= kept.bytes;
    return { job: kept.job, failedProviders: [], lostProviders: [] };
  }

  async findById(id: string): Promise<Job | null> {
    if (!UUID.test(id)) return null;
    const [job] = await this.sql.query<Job>(`SELECT ${JOB_COLUMNS} FROM "Job" WHERE id = $1::uuid`, [id]);
    return job ?? null;
  }

  findByIdempotencyKey(accountId: string, idempotencyKey: string): Promise<Job | null> {
    return this.prisma.job.findUnique({ where: { accountId_idempotencyKey: { accountId, idempotencyKey } } });
  }

  list(query: JobListQuery): Promise<Job[]> {
    const where: Prisma.JobWhereInput = {};
    if (query.accountId) where.accountId = query.accountId;
    if (query.states && query.states.length > 0) where.state = { in: query.states };
    if (query.kind) where.kind = query.kind;
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
    });
  }

  events(jobId: string, afterId = 0n): Promise<JobEvent[]> {
    return this.prisma.jobEvent.findMany({ where: { jobId, id: { gt: afterId } }, orderBy: { id: 'asc' } });
  }

  /** Jobs that should be in the dispatch queue (used to re-enqueue after a crash between commit and enqueue). */
  async queuedJobs(limit: number): Promise<Pick<Job, 'id' | 'deadlineAt' | 'priority'>[]> {
    return this.prisma.job.findMany({
      where: { state: 'QUEUED' },
      select: { id: true, deadlineAt: true, priority: true },
      orderBy: { createdAt: 'asc' },
      take: limit,
    });
  }

  /** Jobs dispatched, running or verifying that have not moved since `before` (oldest first). */
  async inFlightJobs(before: Date, limit: number): Promise<string[]> {
    const rows = await this.prisma.job.findMany({
      where: { state: { in: ['DISPATCHED', 'RUNNING', 'VERIFYING'] }, updatedAt: { lte: before } },
      select: { id: true },
      orderBy: { updatedAt: 'asc' },
      take: limit,
    });
    return rows.map((r) => r.id);
  }

  async overdueJobs(now: Date, limit: number): Promise<string[]> {
    const rows = await this.prisma.job.findMany({
      where: { state: { in: ['QUEUED', 'DISPATCHED', 'RUNNING'] }, deadlineAt: { lte: now } },
      select: { id: true },
      take: limit,
    });
    return rows.map((r) => r.id);
  }

  /**
   * Moves a job to `to` if it is in an allowed state, records the event and applies the ledger
   * effect, all in one database transaction. Returns the updated job, or null when the job was not
   * in an allowed state (another process got there first).
   */
  async transition(req: TransitionRequest): Promise<Job | null> {
    return (await this.transitionWith(req))?.job ?? null;
  }

  /**
   * Like `transition`, plus what goes with the move in the same database transaction: notes, an
   * attempt's outcome, new offers, and a state passed through on the way (one commit, not four).
   */
  async transitionWith(req: TransitionRequest): Promise<TransitionResult | null> {
    // Validated here, so an illegal request fails alone and never reaches a batch.
    const from = allowedFrom(req);
    return this.transitions.submit({ req, from });
  }

  /**
   * Every transition of a batch in one database transaction, in a fixed number of statements however
   * large the batch: lock the jobs, move the attempts, update the jobs, insert the offers, the events
   * and the ledger postings. Null where the job was not in an allowed state.
   */
  private async applyBatch(
    tx: SqlTransaction,
    batch: QueuedTransition[],
  ): Promise<(TransitionResult | null)[]> {
    const ids = [...new Set(batch.map((p) => p.req.jobId))].sort();
    // NO KEY UPDATE: moves of one job serialise, while events and attempts of these jobs inserted
    // elsewhere (their foreign-key checks take KEY SHARE) do not wait for this batch.
    const rows = await tx.query<Job>(
      `SELECT ${JOB_COLUMNS} FROM "Job" WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE`,
      [ids],
    );
    const current = new Map(rows.map((r) => [r.id, r]));
    const now = new Date();
    const events: EventRow[] = [];
    const ledger: { kind: LedgerEntryKind; postings: LedgerPosting[]; jobId: string }[] = [];
    const attempts: AttemptMove[] = [];
    const offers: { jobId: string; providerIds: string[] }[] = [];
    const moved: (Job | null)[] = [];
    for (const { req, from } of batch) {
      const before = current.get(req.jobId);
      if (!before || !from.includes(before.state)) {
        moved.push(null);
        continue;
      }
      // Events of one job keep their order: they are inserted in the order collected.
      for (const note of req.notes ?? []) events.push(eventRow(req.jobId, note.type, note.data));
      if (req.attempt) attempts.push(req.attempt);
      let previous = before.state;
      for (const step of passThroughs(req)) {
        events.push(eventRow(req.jobId, step.eventType, step.eventData, previous, step.state));
        previous = step.state;
      }
      const job = applyPatch(before, req, now);
      events.push(eventRow(req.jobId, req.eventType, req.eventData, previous, req.to));
      const effect = jobEffectPostings(job, req.effect ?? { kind: 'none' });
      if (effect) ledger.push({ ...effect, jobId: job.id });
      if (req.offers) offers.push({ jobId: req.jobId, providerIds: req.offers });
      current.set(req.jobId, job);
      moved.push(job);
    }
    // Each moved job once, as it ends the batch.
    const changed = [...new Set(batch.filter((_, i) => moved[i] !== null).map((t) => t.req.jobId))].map(
      (id) => current.get(id) as Job,
    );
    const plan = planPostings(ledger);
    const offerRowsOfBatch = offerRows(offers);
    // Every write of the batch in one statement: attempts, jobs, offers, events and ledger entries;
    // then the balances, locked in the ledger's one lock order; then COMMIT. The three travel
    // together (one round trip after the read above).
    const p = new SqlParams();
    const parts: string[] = [];
    if (attempts.length > 0) parts.push(`settled AS (${settleAttemptsSql(attempts, p)})`);
    if (changed.length > 0) parts.push(`moved AS (${updateJobsSql(changed, p)})`);
    if (events.length > 0) parts.push(`events AS (${insertEventsSql(events, p)})`);
    // Lifecycle webhooks (job.running, job.succeeded, ...), queued with the change they report.
    const hooks = lifecycleDeliveryRows(events, (id) => current.get(id), now);
    if (hooks.length > 0) parts.push(`hooks AS (${insertLifecycleDeliveriesSql(hooks, now, p)})`);
    if (plan.entries.account.length > 0) parts.push(`entries AS (${insertEntriesSql(plan, p)})`);
    const insertOffers = offerRowsOfBatch.ids.length > 0;
    const main = insertOffers ? insertOffersSql(offerRowsOfBatch, p) : 'SELECT 1';
    const written =
      parts.length > 0 || insertOffers
        ? tx.query<JobAttempt>(parts.length > 0 ? `WITH ${parts.join(',\n')}\n${main}` : main, p.values)
        : Promise.resolve([]);
    const [inserted] = await Promise.all([written, this.ledger.applyDeltas(tx, plan.deltas), tx.commit()]);
    const offered = insertOffers ? offeredAttempts(offerRowsOfBatch, inserted) : [];
    let nextOffer = 0;
    return batch.map(({ req }, i) => {
      const job = moved[i];
      if (!job) return null;
      return { job, offered: req.offers ? offered[nextOffer++] : [] };
    });
  }

  /**
   * Replaces the stored result of a job in a correctable state (CORRECTABLE_STATES: completed; the
   * state stays) and records its `job.corrected` event, the way transitions record theirs, with
   * `alsoIn` (the webhook delivery of the correction, an outbox) in the same transaction. A
   * conditional update, like a transition's: false, writing nothing, when the job is in no such state.
   */
  async correctResult(
    correction: { jobId: string; result: unknown; resultHash: string; eventData: Record<string, unknown> },
    alsoIn: (tx: Prisma.TransactionClient) => Promise<unknown>,
  ): Promise<boolean> {
    const { jobId, result, resultHash, eventData } = correction;
    return this.prisma.$transaction(async (tx) => {
      const { count } = await tx.job.updateMany({
        where: { id: jobId, state: { in: [...CORRECTABLE_STATES] } },
        data: { result: jsonValue(result), resultHash },
      });
      if (count === 0) return false;
      const p = new SqlParams();
      await prismaRunner(tx).query(
        insertEventsSql([eventRow(jobId, JOB_CORRECTED_EVENT, eventData)], p),
        p.values,
      );
      await alsoIn(tx);
      return true;
    });
  }

  /** Records an event that does not change the state (progress, dispatch attempts, ...). */
  async appendEvent(jobId: string, type: string, data?: Record<string, unknown>): Promise<void> {
    await this.prisma.jobEvent.create({ data: { jobId, type, data: data ? jsonValue(data) : undefined } });
  }
}

/** The states a request may move from; throws on a transition the state machine forbids. */
function allowedFrom(req: TransitionRequest): JobState[] {
  const path = [...passThroughs(req).map((step) => step.state), req.to];
  const from = req.from ?? statesLeadingTo(path[0]);
  for (let i = 1; i < path.length; i++) {
    if (!JOB_TRANSITIONS[path[i - 1]].includes(path[i])) {
      throw new DomainError(
        'ILLEGAL_TRANSITION',
        `a ${path[i - 1].toLowerCase()} job cannot become ${path[i].toLowerCase()}`,
      );
    }
  }
  for (const state of from) {
    if (!JOB_TRANSITIONS[state].includes(path[0])) {
      throw new DomainError(
        'ILLEGAL_TRANSITION',
        `a ${state.toLowerCase()} job cannot become ${path[0].toLowerCase()}`,
      );
    }
  }
  return from;
}

interface EventRow {
  jobId: string;
  type: string;
  fromState: JobState | null;
  toState: JobState | null;
  data: string | null;
}

function eventRow(
  jobId: string,
  type: string,
  data?: Record<string, unknown>,
  fromState?: JobState,
  toState?: JobState,
): EventRow {
  return {
    jobId,
    type,
    fromState: fromState ?? null,
    toState: toState ?? null,
    data: data ? jsonText(data) : null,
  };
}

/** Every column of "Job", typed as Prisma's `Job`. */
export const JOB_COLUMNS = `id::text AS id, "accountId"::text AS "accountId", kind, state::text AS state, spec, "specHash",
  "workUnits", "pricePerUnit", cost, redundancy, verification, canary, priority, "deadlineAt", "idempotencyKey",
  result, "resultHash", error, "createdAt", "updatedAt", "finishedAt"`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The job after a transition (what `updateJobs` writes). */
function applyPatch(job: Job, req: TransitionRequest, now: Date): Job {
  const terminal = isTerminal(req.to);
  return {
    ...job,
    state: req.to,
    updatedAt: now,
    finishedAt: terminal ? now : job.finishedAt,
    result: req.patch?.result !== undefined ? (jsonValue(req.patch.result) as Prisma.JsonValue) : job.result,
    resultHash: req.patch?.resultHash || job.resultHash,
    error: req.patch?.error || job.error,
  };
}

/** The update of the moving columns of these jobs. Usable as a CTE. */
function updateJobsSql(jobs: readonly Job[], p: SqlParams): string {
  return `UPDATE "Job" j
        SET state = u.state::"JobState", "updatedAt" = u.updated, "finishedAt" = u.finished,
            result = u.result::jsonb, "resultHash" = u.result_hash, error = u.error
       FROM unnest(${p.add(jobs.map((j) => j.id))}::uuid[], ${p.add(jobs.map((j) => j.state))}::text[],
                   ${p.add(jobs.map((j) => j.updatedAt.toISOString()))}::timestamptz[],
                   ${p.add(jobs.map((j) => j.finishedAt?.toISOString() ?? null))}::timestamptz[],
                   ${p.add(jobs.map((j) => (j.result === null ? null : JSON.stringify(j.result))))}::text[],
                   ${p.add(jobs.map((j) => j.resultHash))}::text[], ${p.add(jobs.map((j) => j.error))}::text[])
            AS u(id, state, updated, finished, result, result_hash, error)
      WHERE j.id = u.id
      RETURNING j.id`;
}

/** The insert of events in the order given (their ids keep that order). Usable as a CTE. */
function insertEventsSql(events: readonly EventRow[], p: SqlParams): string {
  return `INSERT INTO "JobEvent" ("jobId", type, "fromState", "toState", data, "createdAt")
     SELECT job, type, from_state::"JobState", to_state::"JobState", data::jsonb, now()
       FROM unnest(${p.add(events.map((e) => e.jobId))}::uuid[], ${p.add(events.map((e) => e.type))}::text[],
                   ${p.add(events.map((e) => e.fromState))}::text[], ${p.add(events.map((e) => e.toState))}::text[],
                   ${p.add(events.map((e) => e.data))}::text[]) WITH ORDINALITY
            AS e(job, type, from_state, to_state, data, n)
      ORDER BY n
     RETURNING id`;
}
