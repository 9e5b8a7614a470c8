import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Prisma, type Job, type JobEvent } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';
import { LedgerAccounts, splitPayment } from '../ledger/ledger-accounts.js';
import { LedgerRepository, type Tx } from '../ledger/ledger.repository.js';
import { DomainError } from '../common/domain-error.js';
import { JOB_TRANSITIONS, statesLeadingTo, type JobState } from './job-state.js';

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
}

export interface JobListQuery {
  accountId?: string;
  states?: JobState[];
  kind?: string;
  before?: { createdAt: Date; id: string };
  limit: number;
}

export type TransitionEffect =
  | { kind: 'none' }
  /** Return the whole reservation to the developer. */
  | { kind: 'release' }
  /** Pay providers from the reservation, take the fee, return the rest. */
  | { kind: 'settle'; payments: { peerId: string; amount: bigint }[]; feeBps: number };

export interface TransitionRequest {
  jobId: string;
  to: JobState;
  /** Only move if the job is in one of these states; defaults to every state that may lead to `to`. */
  from?: JobState[];
  eventType: string;
  eventData?: Record<string, unknown>;
  effect?: TransitionEffect;
  patch?: { result?: unknown; resultHash?: string; error?: string };
}

const PG_UNIQUE_VIOLATION = '23505';

function isUniqueViolation(err: unknown): boolean {
  if (err instanceof Prisma.PrismaClientKnownRequestError) return err.code === 'P2002';
  const text = err instanceof Error ? err.message : String(err);
  return text.includes(PG_UNIQUE_VIOLATION) || /unique constraint/i.test(text);
}

function jsonValue(value: unknown): Prisma.InputJsonValue {
  return JSON.parse(
    JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
  ) as Prisma.InputJsonValue;
}

/** Jobs, their events and the ledger moves that go with their transitions. */
@Injectable()
export class JobsRepository {
  constructor(
    private readonly prisma: PrismaService,
    private readonly ledger: LedgerRepository,
  ) {}

  /**
   * Stores a queued job, its first event and the reservation of its cost in ONE statement, so the
   * balance check, the debit and the insert are atomic and cost one round trip.
   * Returns null when the available balance is short; throws `IDEMPOTENCY_CONFLICT`-ready errors upward.
   */
  async insertWithReservation(job: NewJob): Promise<{ id: string; createdAt: Date } | null> {
    const available = LedgerAccounts.available(job.accountId);
    const reserved = LedgerAccounts.reserved(job.accountId);
    const txId = randomUUID();
    const spec = JSON.stringify(jsonValue(job.spec));
    const eventData = JSON.stringify({ cost: job.cost.toString(), workUnits: job.workUnits.toString() });
    try {
      const rows = await this.prisma.$queryRaw<{ id: string; createdAt: Date }[]>`
        WITH debit AS (
          UPDATE "LedgerBalance" SET balance = balance - ${job.cost}, "updatedAt" = now()
          WHERE account = ${available} AND balance >= ${job.cost}
          RETURNING account
        ), job AS (
          INSERT INTO "Job" (id, "accountId", kind, state, spec, "specHash", "workUnits", "pricePerUnit", cost,
                             redundancy, priority, "deadlineAt", "idempotencyKey", "createdAt", "updatedAt")
          SELECT ${job.id}::uuid, ${job.accountId}::uuid, ${job.kind}, 'QUEUED'::"JobState", ${spec}::jsonb, ${job.specHash},
                 ${job.workUnits}, ${job.pricePerUnit}, ${job.cost}, ${job.redundancy}, ${job.priority},
                 ${job.deadlineAt}, ${job.idempotencyKey}, now(), now()
          FROM debit
          RETURNING id, "createdAt"
        ), credit AS (
          INSERT INTO "LedgerBalance" (account, balance, "updatedAt")
          SELECT ${reserved}, ${job.cost}, now() FROM job
          ON CONFLICT (account) DO UPDATE SET balance = "LedgerBalance".balance + EXCLUDED.balance, "updatedAt" = now()
          RETURNING account
        ), entries AS (
          INSERT INTO "LedgerEntry" ("txId", account, amount, kind, "jobId", "createdAt")
          SELECT ${txId}::uuid, p.account, p.amount, 'reserve', job.id, now()
          FROM job CROSS JOIN (VALUES (${available}, ${-job.cost}::bigint), (${reserved}, ${job.cost}::bigint)) AS p(account, amount)
          RETURNING id
        ), event AS (
          INSERT INTO "JobEvent" ("jobId", type, "toState", data, "createdAt")
          SELECT id, 'job.submitted', 'QUEUED'::"JobState", ${eventData}::jsonb, now() FROM job
          RETURNING id
        )
        SELECT id::text AS id, "createdAt" FROM job`;
      return rows[0] ?? null;
    } catch (err) {
      if (isUniqueViolation(err)) throw new IdempotencyKeyTaken();
      throw err;
    }
  }

  findById(id: string): Promise<Job | null> {
    return this.prisma.job.findUnique({ where: { id } });
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
    const from = req.from ?? statesLeadingTo(req.to);
    for (const state of from) {
      if (!JOB_TRANSITIONS[state].includes(req.to)) {
        throw new DomainError(
          'ILLEGAL_TRANSITION',
          `a ${state.toLowerCase()} job cannot become ${req.to.toLowerCase()}`,
        );
      }
    }
    return this.prisma.$transaction(async (tx) => {
      const current = await tx.$queryRaw<{ state: JobState }[]>`
        SELECT state::text AS state FROM "Job" WHERE id = ${req.jobId}::uuid FOR UPDATE`;
      const state = current[0]?.state;
      if (!state || !from.includes(state)) return null;
      const terminal = ['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'].includes(req.to);
      const job = await tx.job.update({
        where: { id: req.jobId },
        data: {
          state: req.to,
          ...(terminal ? { finishedAt: new Date() } : {}),
          ...(req.patch?.result !== undefined ? { result: jsonValue(req.patch.result) } : {}),
          ...(req.patch?.resultHash ? { resultHash: req.patch.resultHash } : {}),
          ...(req.patch?.error ? { error: req.patch.error } : {}),
        },
      });
      await tx.jobEvent.create({
        data: {
          jobId: req.jobId,
          type: req.eventType,
          fromState: state,
          toState: req.to,
          data: req.eventData ? jsonValue(req.eventData) : undefined,
        },
      });
      await this.applyEffect(tx, job, req.effect ?? { kind: 'none' });
      return job;
    });
  }

  /** Records an event that does not change the state (progress, dispatch attempts, ...). */
  async appendEvent(jobId: string, type: string, data?: Record<string, unknown>): Promise<void> {
    await this.prisma.jobEvent.create({ data: { jobId, type, data: data ? jsonValue(data) : undefined } });
  }

  private async applyEffect(tx: Tx, job: Job, effect: TransitionEffect): Promise<void> {
    if (effect.kind === 'none') return;
    const reserved = LedgerAccounts.reserved(job.accountId);
    const available = LedgerAccounts.available(job.accountId);
    if (effect.kind === 'release') {
      await this.ledger.post(
        tx,
        'release',
        [
          { account: reserved, amount: -job.cost },
          { account: available, amount: job.cost },
        ],
        { jobId: job.id },
      );
      return;
    }
    const paid = effect.payments.reduce((sum, p) => sum + p.amount, 0n);
    if (paid > job.cost)
      throw new Error(`job ${job.id} would pay ${paid}, more than its reservation ${job.cost}`);
    const postings = [{ account: reserved, amount: -job.cost }];
    let fees = 0n;
    for (const payment of effect.payments) {
      const split = splitPayment(payment.amount, effect.feeBps);
      fees += split.fee;
      postings.push({ account: LedgerAccounts.providerEarned(payment.peerId), amount: split.provider });
    }
    if (fees > 0n) postings.push({ account: LedgerAccounts.fees, amount: fees });
    if (job.cost - paid > 0n) postings.push({ account: available, amount: job.cost - paid });
    await this.ledger.post(tx, 'settle', postings, { jobId: job.id });
  }
}

export class IdempotencyKeyTaken extends Error {
  constructor() {
    super('idempotency key already used');
  }
}
