import { Injectable } from '@nestjs/common';
import { Prisma, type AttemptState, type Job, type JobAttempt, type JobEvent } from '#prisma';
import { createAttemptOffers, settleAttempt, type AttemptOutcomeData } from './attempts.repository.js';
import { PrismaService } from '../database/prisma.service.js';
import { LedgerAccounts, splitPayment } from '../ledger/ledger-accounts.js';
import { LedgerRepository, type Tx } from '../ledger/ledger.repository.js';
import { DomainError } from '../common/domain-error.js';
import { VerificationAccounts } from '../verification/verification-accounts.js';
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
  /** The policy the job runs under (verification/policy.ts JobVerification). */
  verification?: unknown;
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
  /**
   * Pay providers from the reservation, take the fee, return the rest. `hold` credits providers'
   * held accounts (they vest later, see verification/vesting.service.ts); `canaryFee` (at most the
   * fee) is the part of the platform fee that goes to the canary fund.
   */
  | {
      kind: 'settle';
      payments: { peerId: string; amount: bigint }[];
      feeBps: number;
      hold?: boolean;
      canaryFee?: bigint;
    };

export interface TransitionRequest {
  jobId: string;
  to: JobState;
  /** Only move if the job is in one of these states; defaults to every state that may lead to `to`. */
  from?: JobState[];
  eventType: string;
  eventData?: Record<string, unknown>;
  effect?: TransitionEffect;
  patch?: { result?: unknown; resultHash?: string; error?: string };
  /** A state passed through on the way, in the same transaction, with its own event row. */
  via?: { state: JobState; eventType: string; eventData?: Record<string, unknown> };
  /** Events without a state change, recorded first in the same transaction. */
  notes?: { type: string; data?: Record<string, unknown> }[];
  /** An attempt moved in the same transaction (only from an open state). */
  attempt?: { id: string; to: AttemptState } & AttemptOutcomeData;
  /** New attempts offered to these providers in the same transaction. */
  offers?: string[];
}

export interface TransitionResult {
  job: Job;
  offered: JobAttempt[];
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
    return (await this.transitionWith(req))?.job ?? null;
  }

  /**
   * Like `transition`, plus what goes with the move in the same database transaction: notes, an
   * attempt's outcome, new offers, and a state passed through on the way (one commit, not four).
   */
  async transitionWith(req: TransitionRequest): Promise<TransitionResult | null> {
    const from = req.from ?? statesLeadingTo(req.via?.state ?? req.to);
    if (req.via && !JOB_TRANSITIONS[req.via.state].includes(req.to)) {
      throw new DomainError(
        'ILLEGAL_TRANSITION',
        `a ${req.via.state.toLowerCase()} job cannot become ${req.to.toLowerCase()}`,
      );
    }
    const first = req.via?.state ?? req.to;
    for (const state of from) {
      if (!JOB_TRANSITIONS[state].includes(first)) {
        throw new DomainError(
          'ILLEGAL_TRANSITION',
          `a ${state.toLowerCase()} job cannot become ${first.toLowerCase()}`,
        );
      }
    }
    return this.prisma.$transaction(async (tx) => {
      const current = await tx.$queryRaw<{ state: JobState }[]>`
        SELECT state::text AS state FROM "Job" WHERE id = ${req.jobId}::uuid FOR UPDATE`;
      const state = current[0]?.state;
      if (!state || !from.includes(state)) return null;
      for (const note of req.notes ?? []) {
        await tx.jobEvent.create({
          data: { jobId: req.jobId, type: note.type, data: note.data ? jsonValue(note.data) : undefined },
        });
      }
      if (req.attempt) {
        const { id, to, ...data } = req.attempt;
        await settleAttempt(tx, id, to, data);
      }
      if (req.via) {
        await tx.jobEvent.create({
          data: {
            jobId: req.jobId,
            type: req.via.eventType,
            fromState: state,
            toState: req.via.state,
            data: req.via.eventData ? jsonValue(req.via.eventData) : undefined,
          },
        });
      }
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
          fromState: req.via?.state ?? state,
          toState: req.to,
          data: req.eventData ? jsonValue(req.eventData) : undefined,
        },
      });
      await this.applyEffect(tx, job, req.effect ?? { kind: 'none' });
      const offered = req.offers ? await createAttemptOffers(tx, req.jobId, req.offers) : [];
      return { job, offered };
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
          // Lock order of every ledger writer: fees, canary fund, available, reserved, providers.
          { account: available, amount: job.cost },
          { account: reserved, amount: -job.cost },
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
      const credited = effect.hold
        ? VerificationAccounts.held(payment.peerId)
        : LedgerAccounts.providerEarned(payment.peerId);
      postings.push({ account: credited, amount: split.provider });
    }
    const toCanary =
      effect.canaryFee && effect.canaryFee > 0n ? (effect.canaryFee < fees ? effect.canaryFee : fees) : 0n;
    if (fees - toCanary > 0n) postings.push({ account: LedgerAccounts.fees, amount: fees - toCanary });
    if (toCanary > 0n) postings.push({ account: VerificationAccounts.canary, amount: toCanary });
    if (job.cost - paid > 0n) postings.push({ account: available, amount: job.cost - paid });
    // Rows are locked in one order by every ledger writer (no deadlock cycle): the shared fee and
    // canary rows first (waiting for them holds nothing else), then available before reserved (as
    // submissions lock them), then providers.
    const rank = (account: string): number =>
      account === LedgerAccounts.fees
        ? 0
        : account === VerificationAccounts.canary
          ? 1
          : account === available
            ? 2
            : account === reserved
              ? 3
              : 4;
    postings.sort((a, b) => rank(a.account) - rank(b.account));
    await this.ledger.post(tx, 'settle', postings, { jobId: job.id });
  }
}
