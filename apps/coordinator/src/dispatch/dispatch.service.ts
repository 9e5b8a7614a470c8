import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Job, JobAttempt } from '#prisma';
import { hashOutputs, randomNonce, type JobSpec, type TensorWire } from '#protocol';
import { JobProtocolError, type JobOfferOutcome } from '#p2p';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { JobsRepository } from '../jobs/jobs.repository.js';
import { JobsService } from '../jobs/jobs.service.js';
import { AttemptsRepository } from '../jobs/attempts.repository.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { LOGGER } from '../logging/logger.js';
import { P2pService } from '../p2p/p2p.service.js';
import { ProviderViewService } from '../p2p/provider-view.service.js';
import { compareOutputs } from '../verification/compare-outputs.js';

export type DispatchOutcome = 'completed' | 'skipped' | 'expired' | 'failed';

/** Thrown to make BullMQ retry with backoff: nothing can take the job right now. */
export class NoCapacityError extends Error {
  constructor(jobId: string, detail: string) {
    super(`no provider can take job ${jobId} now: ${detail}`);
    this.name = 'NoCapacityError';
  }
}

/** Thrown to make BullMQ retry with backoff: an attempt failed and the job went back to the queue. */
export class AttemptsFailedError extends Error {
  constructor(jobId: string, reasons: string[]) {
    super(`job ${jobId}: ${reasons.join('; ')}`);
    this.name = 'AttemptsFailedError';
  }
}

interface AttemptOutcome {
  attempt: JobAttempt;
  peerId: string;
  pricePerUnit: bigint;
  ok: boolean;
  outputs?: TensorWire[];
  error?: string;
  /** Set when the success is still to be recorded (single-provider jobs record it with completion). */
  receipt?: unknown;
  outputHash?: string;
  succeeded?: { type: string; data: Record<string, unknown> };
}

/** Progress events are throttled per attempt so a chatty provider cannot flood the event table. */
const PROGRESS_EVENT_EVERY_MS = 1_000;

/**
 * One dispatch of one job: place it with libs/scheduler, offer it to the chosen providers over
 * libp2p, record every step as a job event, and settle it. A failed, rejected or lost attempt sends
 * the job back to the queue (excluding that provider); BullMQ retries it with backoff. A dispatch
 * re-delivered after a worker crash finds the job still dispatched: its open attempts are lost and
 * it is placed again.
 */
@Injectable()
export class DispatchService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly jobsRepo: JobsRepository,
    private readonly jobs: JobsService,
    private readonly attempts: AttemptsRepository,
    private readonly view: ProviderViewService,
    private readonly p2p: P2pService,
    private readonly metrics: MetricsService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async dispatch(jobId: string, now = new Date()): Promise<DispatchOutcome> {
    let job = await this.jobsRepo.findById(jobId);
    if (
      !job ||
      job.state === 'COMPLETED' ||
      job.state === 'FAILED' ||
      job.state === 'CANCELLED' ||
      job.state === 'EXPIRED'
    ) {
      this.metrics.dispatchAttempts.inc({ outcome: 'skipped' });
      return 'skipped';
    }
    if (job.state !== 'QUEUED') {
      job = await this.recoverInterrupted(job);
      if (!job) return 'skipped';
    }
    if (job.deadlineAt <= now) {
      await this.expire(jobId);
      return 'expired';
    }
    const exclude = await this.attempts.failedProviders(jobId);
    // Wait (briefly) for a slot rather than going back to BullMQ's backoff: slots free up every few
    // milliseconds under load, while a backoff would idle the job for seconds.
    const waitUntil = Date.now() + this.config.CAPACITY_WAIT_MS;
    let placement = this.view.place(job, Date.now(), exclude);
    while (!placement.ok && Date.now() < waitUntil && job.deadlineAt.getTime() > Date.now()) {
      await this.view.waitForCapacity(Math.min(250, waitUntil - Date.now()));
      placement = this.view.place(job, Date.now(), exclude);
    }
    if (!placement.ok) {
      this.metrics.dispatchAttempts.inc({ outcome: 'no_capacity' });
      const why = this.view.explain(job, Date.now());
      throw new NoCapacityError(jobId, why.message);
    }
    const peers = placement.placements.map((p) => p.peerId);
    const dispatched = await this.jobs.transitionWith({
      jobId,
      from: ['QUEUED'],
      to: 'DISPATCHED',
      eventType: 'job.dispatched',
      eventData: { providers: peers },
      offers: peers,
    });
    if (!dispatched) {
      this.view.cancel(jobId);
      return 'skipped';
    }
    this.metrics.dispatchAttempts.inc({ outcome: 'dispatched' });
    const moved = dispatched.job;
    const offered = dispatched.offered;
    const outcomes = await Promise.all(offered.map((attempt) => this.runAttempt(moved, attempt)));
    return this.conclude(moved, outcomes);
  }

  /** Ends a job whose deadline passed and returns its reservation. */
  async expire(jobId: string): Promise<boolean> {
    const job = await this.jobs.transition({
      jobId,
      from: ['QUEUED', 'DISPATCHED', 'RUNNING'],
      to: 'EXPIRED',
      eventType: 'job.expired',
      eventData: { reason: 'deadline passed' },
      effect: { kind: 'release' },
      patch: { error: 'the deadline passed before a provider finished the job' },
    });
    if (job) {
      this.view.cancel(jobId);
      await this.attempts.loseOpenAttempts(jobId, 'job expired');
    }
    return job !== null;
  }

  async recordDeadLetter(jobId: string, reason: string, attemptsMade: number): Promise<void> {
    await this.jobs.note(jobId, 'dispatch.dead_lettered', { reason, attemptsMade });
  }

  private async recoverInterrupted(job: Job): Promise<Job | null> {
    const lost = await this.attempts.loseOpenAttempts(job.id, 'the coordinator worker running it stopped');
    const requeued = await this.jobs.transition({
      jobId: job.id,
      from: ['DISPATCHED', 'RUNNING', 'VERIFYING'],
      to: 'QUEUED',
      eventType: 'attempt.lost',
      eventData: { attempts: lost.map((a) => a.attempt), reason: 'dispatch interrupted; placing again' },
    });
    return requeued;
  }

  private async runAttempt(job: Job, attempt: JobAttempt): Promise<AttemptOutcome> {
    const peerId = attempt.providerId as string;
    const provider = this.view.provider(peerId);
    const base = { attempt, peerId, pricePerUnit: provider?.pricePerUnit ?? job.pricePerUnit };
    if (!provider) return this.failAttempt(job, attempt, base, 'LOST', 'provider advert vanished');
    const pricePerUnit = provider.pricePerUnit < job.pricePerUnit ? provider.pricePerUnit : job.pricePerUnit;
    let lastProgressEvent = 0;
    let accepted: Promise<void> = Promise.resolve();
    let outcome: JobOfferOutcome;
    try {
      outcome = await this.p2p.offer(
        peerId,
        {
          version: 1,
          jobId: job.id,
          attempt: attempt.attempt,
          spec: job.spec as unknown as JobSpec,
          specHash: job.specHash,
          pricePerUnit: pricePerUnit.toString(),
          workUnits: job.workUnits.toString(),
          deadlineAt: job.deadlineAt.getTime(),
          nonce: randomNonce(),
          issuedAt: Date.now(),
        },
        {
          providerAddress: provider.address,
          acceptTimeoutMs: this.config.OFFER_ACCEPT_TIMEOUT_MS,
          onAccepted: () => {
            accepted = this.onAccepted(job, attempt, peerId).catch((err: unknown) =>
              this.logger.warn({ err, jobId: job.id }, 'could not record an accepted attempt'),
            );
          },
          onProgress: (progress) => {
            const t = Date.now();
            if (t - lastProgressEvent < PROGRESS_EVENT_EVERY_MS) return;
            lastProgressEvent = t;
            void this.jobs
              .note(job.id, 'attempt.progress', {
                attempt: attempt.attempt,
                fraction: progress.fraction,
                message: progress.message,
              })
              .catch(() => undefined);
          },
        },
      );
    } catch (err) {
      await accepted;
      const code = err instanceof JobProtocolError ? err.code : 'ERROR';
      const state =
        code === 'DISCONNECTED' || code === 'DIAL_FAILED' || code === 'STREAM_RESET' || code === 'TIMEOUT'
          ? 'LOST'
          : 'FAILED';
      return this.failAttempt(
        job,
        attempt,
        { ...base, pricePerUnit },
        state,
        `${code}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    await accepted; // the RUNNING transition lands before the attempt concludes
    if (outcome.status === 'rejected') {
      return this.failAttempt(
        job,
        attempt,
        { ...base, pricePerUnit },
        'FAILED',
        `rejected: ${outcome.reason}`,
      );
    }
    const outputHash = hashOutputs(outcome.outputs);
    this.view.complete(job.id, peerId);
    const succeeded = {
      type: 'attempt.succeeded',
      data: {
        attempt: attempt.attempt,
        provider: peerId,
        backend: outcome.receipt.payload.backend,
        outputHash,
        timings: outcome.receipt.payload.timings,
      },
    };
    if (job.redundancy === 1) {
      // Recorded together with the job's completion in conclude(): one commit for the whole result.
      return {
        ...base,
        pricePerUnit,
        ok: true,
        outputs: outcome.outputs,
        receipt: outcome.receipt,
        outputHash,
        succeeded,
      };
    }
    const recorded = await this.attempts.settle(attempt.id, 'SUCCEEDED', {
      receipt: outcome.receipt,
      outputHash,
    });
    if (!recorded) {
      // The attempt was already closed (lost, expired): a late duplicate result changes nothing.
      this.metrics.attempts.inc({ outcome: 'late_ignored' });
      return { ...base, pricePerUnit, ok: false, error: 'late result ignored' };
    }
    this.metrics.attempts.inc({ outcome: 'succeeded' });
    await this.jobs.note(job.id, succeeded.type, succeeded.data);
    return { ...base, pricePerUnit, ok: true, outputs: outcome.outputs };
  }

  private async onAccepted(job: Job, attempt: JobAttempt, peerId: string): Promise<void> {
    this.view.confirm(job.id, peerId, Date.now());
    const moved = await this.jobs.transition({
      jobId: job.id,
      from: ['DISPATCHED'],
      to: 'RUNNING',
      eventType: 'job.running',
      eventData: { attempt: attempt.attempt, provider: peerId },
      attempt: { id: attempt.id, to: 'ACCEPTED' },
    });
    if (!moved) {
      // Another attempt of a redundant job got there first: record this one's acceptance alone.
      await this.attempts.settle(attempt.id, 'ACCEPTED');
      await this.jobs.note(job.id, 'attempt.accepted', { attempt: attempt.attempt, provider: peerId });
    }
  }

  private async failAttempt(
    job: Job,
    attempt: JobAttempt,
    base: Omit<AttemptOutcome, 'ok'>,
    state: 'FAILED' | 'LOST',
    error: string,
  ): Promise<AttemptOutcome> {
    await this.attempts.settle(attempt.id, state, { error });
    this.view.fail(job.id, base.peerId);
    this.metrics.attempts.inc({ outcome: state.toLowerCase() });
    await this.jobs.note(job.id, state === 'LOST' ? 'attempt.lost' : 'attempt.failed', {
      attempt: attempt.attempt,
      provider: base.peerId,
      error,
    });
    return { ...base, ok: false, error };
  }

  /** All attempts answered: verify agreement and pay, or send the job back to the queue. */
  private async conclude(job: Job, outcomes: AttemptOutcome[]): Promise<DispatchOutcome> {
    const failed = outcomes.filter((o) => !o.ok);
    if (failed.length > 0) {
      const requeued = await this.jobs.transition({
        jobId: job.id,
        from: ['DISPATCHED', 'RUNNING'],
        to: 'QUEUED',
        eventType: 'job.requeued',
        eventData: { reasons: failed.map((f) => f.error) },
      });
      if (!requeued) return 'skipped'; // cancelled or expired meanwhile
      throw new AttemptsFailedError(
        job.id,
        failed.map((f) => `attempt ${f.attempt.attempt} on ${f.peerId}: ${f.error}`),
      );
    }
    if (outcomes.length === 1 && outcomes[0].succeeded) {
      return this.completeSingle(job, outcomes[0]);
    }
    const verifying = await this.jobs.transition({
      jobId: job.id,
      from: ['RUNNING'],
      to: 'VERIFYING',
      eventType: 'job.verifying',
      eventData: { results: outcomes.length },
    });
    if (!verifying) return 'skipped';
    const [first, ...others] = outcomes;
    for (const other of others) {
      const agreement = compareOutputs(first.outputs ?? [], other.outputs ?? []);
      if (!agreement.agree) {
        await this.jobs.transition({
          jobId: job.id,
          from: ['VERIFYING'],
          to: 'FAILED',
          eventType: 'job.failed',
          eventData: { reason: `redundant results disagree: ${agreement.reason}` },
          effect: { kind: 'release' },
          patch: { error: `redundant results disagree: ${agreement.reason}` },
        });
        return 'failed';
      }
    }
    const outputs = first.outputs ?? [];
    const completed = await this.jobs.transition({
      jobId: job.id,
      from: ['VERIFYING'],
      to: 'COMPLETED',
      eventType: 'job.completed',
      eventData: { providers: outcomes.map((o) => o.peerId) },
      effect: {
        kind: 'settle',
        payments: outcomes.map((o) => ({ peerId: o.peerId, amount: o.pricePerUnit * job.workUnits })),
        feeBps: this.config.PLATFORM_FEE_BPS,
      },
      patch: { result: { outputs }, resultHash: hashOutputs(outputs) },
    });
    if (completed) {
      this.metrics.jobDuration.observe({ kind: job.kind }, (Date.now() - job.createdAt.getTime()) / 1000);
      this.logger.debug({ jobId: job.id }, 'job completed');
    }
    return completed ? 'completed' : 'skipped';
  }

  /** One provider's verified result: attempt, events, completion and payment in one commit. */
  private async completeSingle(job: Job, outcome: AttemptOutcome): Promise<DispatchOutcome> {
    const outputs = outcome.outputs ?? [];
    const completed = await this.jobs.transition({
      jobId: job.id,
      from: ['RUNNING'],
      notes: outcome.succeeded ? [outcome.succeeded] : [],
      attempt: {
        id: outcome.attempt.id,
        to: 'SUCCEEDED',
        receipt: outcome.receipt,
        outputHash: outcome.outputHash,
      },
      via: { state: 'VERIFYING', eventType: 'job.verifying', eventData: { results: 1 } },
      to: 'COMPLETED',
      eventType: 'job.completed',
      eventData: { providers: [outcome.peerId] },
      effect: {
        kind: 'settle',
        payments: [{ peerId: outcome.peerId, amount: outcome.pricePerUnit * job.workUnits }],
        feeBps: this.config.PLATFORM_FEE_BPS,
      },
      patch: { result: { outputs }, resultHash: hashOutputs(outputs) },
    });
    if (!completed) {
      this.metrics.attempts.inc({ outcome: 'late_ignored' });
      return 'skipped';
    }
    this.metrics.attempts.inc({ outcome: 'succeeded' });
    this.metrics.jobDuration.observe({ kind: job.kind }, (Date.now() - job.createdAt.getTime()) / 1000);
    return 'completed';
  }
}
