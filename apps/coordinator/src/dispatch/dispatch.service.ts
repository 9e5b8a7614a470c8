import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Job, JobAttempt } from '#prisma';
import {
  hashOutputs,
  hashSpec,
  randomNonce,
  type JobSpec,
  type ResultReceipt,
  type Signed,
  type TensorWire,
} from '#protocol';
import { JobProtocolError, type JobOfferOutcome } from '#p2p';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import {
  JobsRepository,
  REJECTED_ATTEMPT,
  WORKER_LOST_ATTEMPT,
  COORDINATOR_FAULT_ATTEMPT,
  type PassThrough,
  type TransitionRequest,
} from '../jobs/jobs.repository.js';
import type { JobState } from '../jobs/job-state.js';
import { JobsService } from '../jobs/jobs.service.js';
import { AttemptsRepository } from '../jobs/attempts.repository.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { LOGGER } from '../logging/logger.js';
import { P2pService } from '../p2p/p2p.service.js';
import { ProviderViewService } from '../p2p/provider-view.service.js';
import { compareResults } from '../verification/compare.js';
import { jobVerification } from '../verification/policy.js';
import { CanaryService } from '../verification/canary.service.js';
import { VerifierService, type Reference } from '../verification/verifier.service.js';
import { VerificationRepository } from '../verification/verification.repository.js';
import { holdSeconds } from '../verification/vesting.service.js';
import { TrustTierService, type SingleCheck } from '../verification/tiers.service.js';
import { offerIdentity } from './offer-id.js';
import { attemptFault, type AttemptFault } from './attempt-faults.js';
import { ReputationService } from '../reputation/reputation.service.js';
import { CapacityProbeService } from '../providers/capacity/capacity-probe.service.js';
import { probeMarker } from '../providers/capacity/capacity.js';
import { SettingsService } from '../settings/settings.service.js';
import { TRUSTED_REPUTATION, isSlow, type ReputationKind } from '../reputation/reputation.js';

/**
 * How long a job must have waited before providers that lost it (see JobsRepository.findForDispatch)
 * may be offered it again, when no other provider can take it.
 */
export const LOST_LAST_RESORT_AFTER_MS = 10_000;

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
  /** The provider's signed receipt of a result. */
  receipt?: Signed<ResultReceipt>;
  outputHash?: string;
  succeeded?: { type: string; data: Record<string, unknown> };
  /**
   * When the provider accepted, for a result that came back before the acceptance was recorded:
   * the RUNNING move is then folded into the completion's commit.
   */
  acceptedAt?: number;
  /** From the provider's acceptance to its result, on this process's clock (proven speed). */
  runMs?: number;
}

/** Who was right about a job's results (DispatchService.decide). */
interface Verdict {
  winners: AttemptOutcome[];
  losers: AttemptOutcome[];
  reference: Reference | null;
  disagreed: boolean;
  tiebreak?: string;
  results: number;
}

/** Progress events are throttled per attempt so a chatty provider cannot flood the event table. */
const PROGRESS_EVENT_EVERY_MS = 1_000;

/**
 * An acceptance is recorded (job RUNNING) this long after it arrives, unless the result comes first:
 * a short job then completes in one commit instead of two, and the dashboard still shows longer
 * jobs running.
 */
export const RUNNING_RECORD_DELAY_MS = 200;

/** The move to RUNNING on a provider's acceptance: recorded alone, or folded into the completion. */
function runningStep(attempt: JobAttempt, peerId: string): PassThrough {
  return {
    state: 'RUNNING',
    eventType: 'job.running',
    eventData: { attempt: attempt.attempt, provider: peerId },
  };
}

/**
 * One dispatch of one job: place it with libs/scheduler, offer it to the chosen providers over
 * libp2p, record every step as a job event, and settle it. A failed, rejected or lost attempt sends
 * the job back to the queue (excluding that provider); BullMQ retries it with backoff. A dispatch
 * re-delivered after a worker crash finds the job still dispatched: its open attempts are lost and
 * it is placed again.
 */
@Injectable()
export class DispatchService {
  /** Providers with results in open disagreements (see review()). */
  private readonly underReview = new Map<string, number>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly jobsRepo: JobsRepository,
    private readonly jobs: JobsService,
    private readonly attempts: AttemptsRepository,
    private readonly view: ProviderViewService,
    private readonly p2p: P2pService,
    private readonly metrics: MetricsService,
    private readonly canaries: CanaryService,
    private readonly verifier: VerifierService,
    private readonly verification: VerificationRepository,
    private readonly reputation: ReputationService,
    private readonly settings: SettingsService,
    private readonly capacity: CapacityProbeService,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly tiers: TrustTierService,
  ) {}

  async dispatch(jobId: string, now = new Date()): Promise<DispatchOutcome> {
    // The job and the providers that failed it, in one query shared with concurrent dispatches;
    // a job this process just submitted needs no read on its first dispatch.
    const found = this.jobsRepo.takeInserted(jobId) ?? (await this.jobsRepo.findForDispatch(jobId));
    // Providers whose results are in an open disagreement get no new work until it is decided.
    const hardExclude = [...(found?.failedProviders ?? []), ...this.underReview.keys()];
    // Providers that lost the job are not offered it again while anyone else can take it.
    const exclude = [...hardExclude, ...(found?.lostProviders ?? [])];
    let job = found?.job ?? null;
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
    // An interrupted job's recovery fails no attempt (it marks them LOST), so `exclude` still holds.
    // Wait (briefly) for a slot rather than going back to BullMQ's backoff: slots free up every few
    // milliseconds under load, while a backoff would idle the job for seconds.
    const waitUntil = Date.now() + this.config.CAPACITY_WAIT_MS;
    let placement = this.view.place(job, Date.now(), exclude);
    while (!placement.ok && Date.now() < waitUntil && job.deadlineAt.getTime() > Date.now()) {
      await this.view.waitForCapacity(Math.min(250, waitUntil - Date.now()));
      placement = this.view.place(job, Date.now(), exclude);
    }
    const lost = found?.lostProviders ?? [];
    if (
      !placement.ok &&
      lost.length > 0 &&
      Date.now() - job.createdAt.getTime() >= LOST_LAST_RESORT_AFTER_MS
    ) {
      // Providers that lost this job (gone, silent, reset) are a last resort: nobody else could
      // take it for a while, so one that came back (an agent restarted mid-job) may finish it; a
      // liar that keeps losing has its circuit breaker open and is not placeable anyway.
      placement = this.view.place(job, Date.now(), hardExclude);
    }
    if (!placement.ok) {
      this.metrics.dispatchAttempts.inc({ outcome: 'no_capacity' });
      const why = this.view.explain(job, Date.now());
      throw new NoCapacityError(jobId, why.message);
    }
    const peers = placement.placements.map((p) => p.peerId);
    const dispatched = await this.jobs
      .transitionWith({
        jobId,
        from: ['QUEUED'],
        to: 'DISPATCHED',
        eventType: 'job.dispatched',
        eventData: { providers: peers },
        offers: peers,
      })
      .catch((err: unknown) => {
        // The database failed (e.g. PostgreSQL restarting): no offer went out, so free the slots
        // now rather than at the reservation's TTL (30 s of no capacity after every database blip).
        this.view.cancel(jobId);
        throw err;
      });
    if (!dispatched) {
      this.view.cancel(jobId);
      return 'skipped';
    }
    this.metrics.dispatchAttempts.inc({ outcome: 'dispatched' });
    this.maybeFollowWithCanary(job, peers);
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
    const lost = await this.attempts.loseOpenAttempts(
      job.id,
      `${WORKER_LOST_ATTEMPT}the coordinator worker running it stopped`,
    );
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
    if (!provider) {
      return this.failAttempt(
        job,
        attempt,
        base,
        'LOST',
        'DISCONNECTED: provider advert vanished',
        attemptFault('DISCONNECTED'),
      );
    }
    const pricePerUnit = provider.pricePerUnit < job.pricePerUnit ? provider.pricePerUnit : job.pricePerUnit;
    let lastProgressEvent = 0;
    let accepted: Promise<void> = Promise.resolve();
    let acceptedAt: number | undefined;
    let recordTimer: NodeJS.Timeout | undefined;
    let acceptanceRecorded = false;
    const recordAcceptance = (): void => {
      clearTimeout(recordTimer);
      if (acceptanceRecorded || acceptedAt === undefined) return;
      acceptanceRecorded = true;
      accepted = this.onAccepted(job, attempt, peerId).catch((err: unknown) =>
        this.logger.warn({ err, jobId: job.id }, 'could not record an accepted attempt'),
      );
    };
    let outcome: JobOfferOutcome;
    try {
      outcome = await this.p2p.offer(
        peerId,
        {
          version: 1,
          ...offerIdentity(attempt),
          ...offeredSpec(job),
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
            acceptedAt = Date.now();
            this.view.confirm(job.id, peerId, acceptedAt);
            recordTimer = setTimeout(recordAcceptance, RUNNING_RECORD_DELAY_MS);
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
      clearTimeout(recordTimer); // the failure is what gets recorded
      await accepted;
      const code = err instanceof JobProtocolError ? err.code : 'ERROR';
      const fault = attemptFault(code, { probe: probeMarker(job.verification) !== null });
      return this.failAttempt(
        job,
        attempt,
        { ...base, pricePerUnit },
        fault.state,
        `${fault.coordinatorFault === true ? COORDINATOR_FAULT_ATTEMPT : ''}${code}: ${err instanceof Error ? err.message : String(err)}`,
        fault,
      );
    }
    const resultAt = Date.now(); // the provider's timings are its word; this clock is ours
    // A result of a single-copy job that beat the acceptance's record carries the acceptance into the
    // completion's commit; otherwise the RUNNING transition lands before the attempt concludes.
    const foldAcceptance = job.redundancy === 1 && outcome.status !== 'rejected' && !acceptanceRecorded;
    if (foldAcceptance) clearTimeout(recordTimer);
    else recordAcceptance();
    await accepted;
    if (outcome.status === 'rejected') {
      this.view.attemptNeutral(peerId);
      return this.failAttempt(
        job,
        attempt,
        { ...base, pricePerUnit },
        'FAILED',
        `${REJECTED_ATTEMPT}${outcome.reason}`,
      );
    }
    const outputHash = hashOutputs(outcome.outputs);
    const junk = this.tiers.sanity(job, peerId, outcome.outputs); // Inf from finite inputs, bad shapes
    if (junk) return this.failAttempt(job, attempt, { ...base, pricePerUnit }, 'FAILED', junk);
    this.view.complete(job.id, peerId);
    this.view.attemptSucceeded(peerId);
    if (this.view.isBanned(peerId)) {
      return this.failAttempt(job, attempt, { ...base, pricePerUnit }, 'FAILED', 'provider banned meanwhile');
    }
    const runMs = resultAt - (acceptedAt ?? attempt.offeredAt.getTime());
    this.checkSpeed(job, peerId, runMs);
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
        acceptedAt: foldAcceptance ? acceptedAt : undefined,
        runMs,
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
    return {
      ...base,
      pricePerUnit,
      ok: true,
      outputs: outcome.outputs,
      receipt: outcome.receipt,
      outputHash,
      runMs,
    };
  }

  private async onAccepted(job: Job, attempt: JobAttempt, peerId: string): Promise<void> {
    const moved = await this.jobs.transition({
      jobId: job.id,
      from: ['DISPATCHED'],
      to: 'RUNNING',
      eventType: 'job.running',
      eventData: runningStep(attempt, peerId).eventData,
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
    fault?: AttemptFault,
  ): Promise<AttemptOutcome> {
    this.view.fail(job.id, base.peerId); // first: a database error below must not hold the slot
    if (fault) this.chargeFault(job, base.peerId, fault, error);
    await this.attempts.settle(attempt.id, state, { error });
    this.metrics.attempts.inc({ outcome: state.toLowerCase() });
    await this.jobs.note(job.id, state === 'LOST' ? 'attempt.lost' : 'attempt.failed', {
      attempt: attempt.attempt,
      provider: base.peerId,
      error,
    });
    return { ...base, ok: false, error };
  }

  /**
   * What a failed attempt costs its provider (ATTEMPT_FAULTS): reputation, p2p score for wire
   * misbehaviour, and a loss toward its circuit breaker (an open breaker keeps offers away from it).
   */
  private chargeFault(job: Job, peerId: string, fault: AttemptFault, error: string): void {
    if (fault.breakerLoss) {
      const breaker = this.view.attemptLost(peerId);
      if (breaker.opened) this.metrics.attempts.inc({ outcome: 'breaker_opened' });
    } else {
      this.view.attemptNeutral(peerId);
    }
    if (fault.reputation) this.recordReputation(peerId, fault.reputation, job.id, { error });
    if (fault.penalty) {
      this.p2p.penalize(peerId, fault.penalty, error.split(':')[0] ?? 'attempt fault');
      this.logger.warn({ peerId, jobId: job.id, error }, 'provider penalised for a failed attempt');
    }
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
    const answer = job.canary ? await this.verification.canaryAnswer(job.id) : null;
    const answerOutputs = answer ? (answer.outputs as unknown as TensorWire[]) : null;
    if (outcomes.length === 1 && outcomes[0].succeeded) {
      const only = outcomes[0];
      if (answerOutputs && !this.agree(job, only.outputs ?? [], answerOutputs)) {
        return this.failCanary(job, [only], answerOutputs);
      }
      if (this.view.isBanned(only.peerId)) {
        // Banned while its result was on the way: unpaid, and the job runs again elsewhere.
        await this.attempts.settle(only.attempt.id, 'FAILED', { error: 'provider banned meanwhile' });
        return this.requeueAfterVerification(
          job,
          ['RUNNING', 'DISPATCHED'],
          'the provider was banned meanwhile',
        );
      }
      // Trust tiers: a probation provider's result (or any, for a `verified` job) waits for a check.
      const check = answerOutputs
        ? null
        : await this.tiers.checkSingle(job, only, (u) => this.tieBreak(job, u));
      if (check?.kind === 'requeue')
        return this.requeueAfterVerification(job, ['RUNNING', 'DISPATCHED'], check.reason);
      if (check?.ranExtra && only.acceptedAt !== undefined) {
        await this.catchUpRunning(job.id); // the check run may have moved the job to RUNNING already
        only.acceptedAt = undefined;
      }
      // Verified: by the canary's known answer, or by a check that passed (not a spot-checked delivery).
      const verified = answerOutputs !== null || check?.outcome.verified === true;
      return this.completeSingle(job, only, check?.passKind ?? 'verified_pass', check ?? undefined, verified);
    }
    const toVerifying = {
      jobId: job.id,
      from: ['RUNNING' as const],
      to: 'VERIFYING' as const,
      eventType: 'job.verifying',
      eventData: { results: outcomes.length },
    };
    let verifying = await this.jobs.transition(toVerifying);
    if (!verifying && (await this.catchUpRunning(job.id)))
      verifying = await this.jobs.transition(toVerifying);
    if (!verifying) return 'skipped';
    // Until the verdict and its convictions are recorded, these providers get no new work (a
    // disagreement takes a tie-break and a recompute; agreeing results are decided at once).
    const suspects = outcomes.map((o) => o.peerId);
    this.review(suspects, +1);
    let verdict: Verdict;
    try {
      verdict = await this.decide(job, outcomes, answerOutputs);
      if (verdict.reference) {
        for (const loser of verdict.losers) {
          await this.convictOutcome(
            job,
            loser,
            verdict.reference,
            job.canary ? 'failed_canary' : 'lost_tiebreak',
          );
        }
      }
    } finally {
      this.review(suspects, -1);
    }
    // A winner banned meanwhile (caught on another job) is not paid; its result does not count.
    for (const w of verdict.winners.filter((o) => this.view.isBanned(o.peerId))) {
      await this.verification.rejectAttempt(w.attempt.id, 'verification failed: provider banned meanwhile');
    }
    verdict.winners = verdict.winners.filter((o) => !this.view.isBanned(o.peerId));
    if (verdict.winners.length === 0) {
      if (job.canary) {
        await this.jobs.transition({
          jobId: job.id,
          from: ['VERIFYING'],
          to: 'FAILED',
          eventType: 'job.failed',
          eventData: { reason: 'no result matched the known answer' },
          effect: { kind: 'release' },
          patch: { error: 'no result matched the known answer' },
        });
        return 'failed';
      }
      const reason = verdict.reference
        ? 'no result matched the reference; running it again'
        : 'results disagree and no reference could decide; running it again';
      return this.requeueAfterVerification(job, ['VERIFYING'], reason);
    }
    const outputs = verdict.winners[0].outputs ?? [];
    const completed = await this.jobs.transition({
      jobId: job.id,
      from: ['VERIFYING'],
      to: 'COMPLETED',
      eventType: 'job.completed',
      eventData: {
        providers: verdict.winners.map((o) => o.peerId),
        verification: {
          results: verdict.results,
          disagreed: verdict.disagreed,
          tiebreak: verdict.tiebreak ?? null,
          reference: verdict.reference?.source ?? (job.canary ? 'canary' : 'providers'),
          rejected: verdict.losers.map((o) => o.peerId),
        },
      },
      effect: {
        kind: 'settle',
        payments: verdict.winners.map((o) => ({ peerId: o.peerId, amount: o.pricePerUnit * job.workUnits })),
        feeBps: await this.settings.get('platformFeeBps'),
        hold: holdSeconds(this.config) > 0,
      },
      patch: {
        result: {
          outputs,
          verification: {
            method: verdict.reference?.source === 'coordinator' ? 'reference' : 'redundant',
            verified: true,
          },
        },
        resultHash: hashOutputs(outputs),
      },
    });
    if (completed) {
      for (const w of verdict.winners) {
        this.recordReputation(w.peerId, verdict.disagreed ? 'won_tiebreak' : 'verified_pass', job.id);
        this.creditSpeed(job, w); // agreement, the reference or the known answer checked it
      }
      this.metrics.jobDuration.observe({ kind: job.kind }, (Date.now() - job.createdAt.getTime()) / 1000);
      this.logger.debug({ jobId: job.id }, 'job completed');
    }
    return completed ? 'completed' : 'skipped';
  }

  /**
   * Counts open disagreements per provider: while its result is in one, a provider gets no new work,
   * so a cheater caught at its first disagreement returns at most the jobs it already holds before
   * its ban lands (this worker's view; another worker learns of the ban from the database).
   */
  private review(peers: readonly string[], change: 1 | -1): void {
    for (const peer of peers) {
      const open = (this.underReview.get(peer) ?? 0) + change;
      if (open > 0) this.underReview.set(peer, open);
      else this.underReview.delete(peer);
    }
  }

  /**
   * Who was right. A canary: whoever matches the known answer. Otherwise, when all agree, all.
   * On disagreement a further provider of another operator is placed (tie-break), and the
   * coordinator recomputes the job when it is within the work budget: its reference decides, else
   * a strict majority of distinct operators does, else nobody (the job runs again, nobody is
   * penalised).
   */
  private async decide(job: Job, outcomes: AttemptOutcome[], answer: TensorWire[] | null): Promise<Verdict> {
    if (answer) {
      const winners = outcomes.filter((o) => this.agree(job, o.outputs ?? [], answer));
      return {
        winners,
        losers: outcomes.filter((o) => !winners.includes(o)),
        reference: { source: 'canary', outputs: answer },
        disagreed: winners.length !== outcomes.length,
        results: outcomes.length,
      };
    }
    if (this.cluster(job, outcomes).length === 1) {
      return { winners: outcomes, losers: [], reference: null, disagreed: false, results: outcomes.length };
    }
    await this.jobs.note(job.id, 'verification.disagreement', {
      providers: outcomes.map((o) => ({ provider: o.peerId, outputHash: o.outputHash })),
    });
    const all = [...outcomes];
    const extra = await this.tieBreak(
      job,
      outcomes.map((o) => o.peerId),
    );
    if (extra?.ok) all.push(extra);
    const reference = await this.verifier.reference(job);
    if (reference) {
      const winners = all.filter((o) => this.agree(job, o.outputs ?? [], reference));
      return {
        winners,
        losers: all.filter((o) => !winners.includes(o)),
        reference: { source: 'coordinator', outputs: reference },
        disagreed: true,
        tiebreak: extra?.peerId,
        results: all.length,
      };
    }
    const clusters = this.cluster(job, all).sort((a, b) => b.length - a.length);
    const [top, second] = clusters;
    if (top.length >= 2 && (!second || top.length > second.length)) {
      return {
        winners: top,
        losers: all.filter((o) => !top.includes(o)),
        reference: {
          source: 'providers',
          outputs: top[0].outputs ?? [],
          receipts: top.flatMap((o) => (o.receipt ? [o.receipt] : [])),
        },
        disagreed: true,
        tiebreak: extra?.peerId,
        results: all.length,
      };
    }
    return {
      winners: [],
      losers: [],
      reference: null,
      disagreed: true,
      tiebreak: extra?.peerId,
      results: all.length,
    };
  }

  /** Groups results that agree within tolerance (each with the first member of a group). */
  private cluster(job: Job, outcomes: AttemptOutcome[]): AttemptOutcome[][] {
    const clusters: AttemptOutcome[][] = [];
    for (const o of outcomes) {
      const home = clusters.find((c) => this.agree(job, c[0].outputs ?? [], o.outputs ?? []));
      if (home) home.push(o);
      else clusters.push([o]);
    }
    return clusters;
  }

  private agree(job: Job, a: readonly TensorWire[], b: readonly TensorWire[]): boolean {
    return compareResults(a, b, { spec: job.spec as unknown as JobSpec }).agree;
  }

  private async providersThatFailedOrLost(jobId: string): Promise<string[]> {
    const read = await this.jobsRepo.findForDispatch(jobId);
    return read ? [...read.failedProviders, ...read.lostProviders] : [];
  }

  /** Runs the job once more on a provider of an operator that has not run it; null when none is free. */
  private async tieBreak(job: Job, used: string[]): Promise<AttemptOutcome | null> {
    const single = { ...job, redundancy: 1 };
    const exclude = [
      ...new Set([
        ...this.view.peersOfSameOperators(used),
        ...(await this.providersThatFailedOrLost(job.id)),
        ...this.underReview.keys(),
      ]),
    ];
    const waitUntil = Date.now() + Math.min(this.config.CAPACITY_WAIT_MS, 2_000);
    let placement = this.view.place(single, Date.now(), exclude);
    while (!placement.ok && Date.now() < waitUntil) {
      await this.view.waitForCapacity(Math.min(250, waitUntil - Date.now()));
      placement = this.view.place(single, Date.now(), exclude);
    }
    if (!placement.ok) return null;
    const peerId = placement.placements[0].peerId;
    const attempt = await this.verification.offerExtra(job.id, peerId);
    await this.jobs.note(job.id, 'verification.tiebreak', { attempt: attempt.attempt, provider: peerId });
    return this.runAttempt(job, attempt);
  }

  private async convictOutcome(
    job: Job,
    loser: AttemptOutcome,
    reference: Reference,
    kind: ReputationKind,
  ): Promise<void> {
    if (!loser.receipt) return;
    try {
      await this.verifier.convict(
        job,
        {
          attemptId: loser.attempt.id,
          peerId: loser.peerId,
          receipt: loser.receipt,
          outputs: loser.outputs ?? [],
        },
        reference,
        kind,
      );
    } catch (err) {
      this.logger.error({ err, jobId: job.id, peerId: loser.peerId }, 'could not record a conviction');
    }
  }

  /** A single-provider canary answered wrongly: convict, record the attempt, end the canary. */
  private async failCanary(
    job: Job,
    wrong: AttemptOutcome[],
    answer: TensorWire[],
  ): Promise<DispatchOutcome> {
    for (const o of wrong) {
      await this.attempts.settle(o.attempt.id, 'SUCCEEDED', { receipt: o.receipt, outputHash: o.outputHash });
      await this.convictOutcome(job, o, { source: 'canary', outputs: answer }, 'failed_canary');
    }
    await this.jobs.transition({
      jobId: job.id,
      from: ['RUNNING', 'DISPATCHED'],
      to: 'FAILED',
      eventType: 'job.failed',
      eventData: { reason: 'the result did not match the known answer' },
      effect: { kind: 'release' },
      patch: { error: 'the result did not match the known answer' },
    });
    return 'failed';
  }

  /**
   * With the job's canary rate (raised for providers on probation), a canary mirrors this job; when
   * the `peers` it was placed on agree on it, the canary is placed on them too (CanaryService.mirror).
   */
  private maybeFollowWithCanary(job: Job, peers: string[]): void {
    if (job.canary || !this.canaries.canMirror(job)) return;
    const policy = jobVerification(job);
    const probation = peers.some((p) => this.view.reputation(p) < TRUSTED_REPUTATION);
    const rate = Math.max(policy.canaryRate, probation ? this.config.PROBATION_CANARY_RATE : 0);
    if (rate <= 0 || Math.random() >= rate) return;
    void this.canaries
      .mirror(job, job.redundancy, peers)
      .then((canary) => {
        if (canary) this.metrics.jobsSubmitted.inc({ kind: `${job.kind}` });
      })
      .catch((err: unknown) => this.logger.warn({ err, jobId: job.id }, 'could not create a canary'));
  }

  /** A verified, completed result's timing proves its provider's speed (capacity/proven-speed.ts). */
  private creditSpeed(job: Job, outcome: AttemptOutcome): void {
    if (outcome.runMs === undefined) return;
    this.capacity.creditVerifiedJob(job, outcome.peerId, outcome.runMs, outcome.outputs ?? []);
  }

  /** `runMs`: from the provider's acceptance to its result, on this process's clock. */
  private checkSpeed(job: Job, peerId: string, runMs: number): void {
    this.capacity.observe(job, peerId, runMs); // a capacity probe's timing
    const gflops = this.view.gflops(peerId);
    if (gflops !== undefined && isSlow(job.workUnits, gflops, runMs)) {
      this.recordReputation(peerId, 'slow_vs_advertised', job.id, { runMs, gflops });
    }
  }

  private recordReputation(
    peerId: string,
    kind: ReputationKind,
    jobId: string,
    detail?: Record<string, unknown>,
  ): void {
    void this.reputation
      .record(peerId, kind, { jobId, detail })
      .catch((err: unknown) => this.logger.warn({ err, peerId, kind }, 'could not record reputation'));
  }

  private async requeueAfterVerification(
    job: Job,
    from: JobState[],
    reason: string,
  ): Promise<DispatchOutcome> {
    const requeued = await this.jobs.transition({
      jobId: job.id,
      from,
      to: 'QUEUED',
      eventType: 'job.requeued',
      eventData: { reasons: [reason] },
    });
    if (!requeued) return 'skipped';
    throw new AttemptsFailedError(job.id, [reason]);
  }

  /**
   * A result came back while the job is still DISPATCHED (recording its acceptance failed, e.g. a
   * transaction timed out under load): move it to RUNNING so the result is not lost to the deadline.
   */
  private async catchUpRunning(jobId: string): Promise<boolean> {
    const moved = await this.jobs.transition({
      jobId,
      from: ['DISPATCHED'],
      to: 'RUNNING',
      eventType: 'job.running',
      eventData: { recovered: 'the acceptance was not recorded' },
    });
    return moved !== null;
  }

  /** One provider's verified result: attempt, events, completion and payment in one commit. */
  private async completeSingle(
    job: Job,
    outcome: AttemptOutcome,
    passKind: ReputationKind,
    check?: Extract<SingleCheck, { kind: 'deliver' }>,
    verified = false,
  ): Promise<DispatchOutcome> {
    const outputs = outcome.outputs ?? [];
    const verifying = { state: 'VERIFYING' as const, eventType: 'job.verifying', eventData: { results: 1 } };
    const { acceptedAt } = outcome;
    const folded = acceptedAt !== undefined;
    const request: TransitionRequest = {
      jobId: job.id,
      from: folded ? ['DISPATCHED'] : ['RUNNING'],
      notes: outcome.succeeded ? [outcome.succeeded] : [],
      attempt: {
        id: outcome.attempt.id,
        to: 'SUCCEEDED',
        receipt: outcome.receipt,
        outputHash: outcome.outputHash,
        startedAt: folded ? new Date(acceptedAt) : undefined,
      },
      via: folded ? [runningStep(outcome.attempt, outcome.peerId), verifying] : verifying,
      to: 'COMPLETED',
      eventType: 'job.completed',
      eventData: { providers: [outcome.peerId], ...(check ? { verification: check.outcome } : {}) },
      effect: {
        kind: 'settle',
        payments: check?.payments ?? [
          { peerId: outcome.peerId, amount: outcome.pricePerUnit * job.workUnits },
        ],
        feeBps: await this.settings.get('platformFeeBps'),
        hold: holdSeconds(this.config) > 0,
      },
      patch: {
        result: { outputs, ...(check ? { verification: check.outcome } : {}) },
        resultHash: hashOutputs(outputs),
      },
    };
    let completed = await this.jobs.transition(request);
    if (!completed && !folded && (await this.catchUpRunning(job.id)))
      completed = await this.jobs.transition(request);
    if (!completed) {
      this.metrics.attempts.inc({ outcome: 'late_ignored' });
      return 'skipped';
    }
    this.metrics.attempts.inc({ outcome: 'succeeded' });
    this.recordReputation(outcome.peerId, passKind, job.id);
    if (verified) this.creditSpeed(job, outcome);
    this.metrics.jobDuration.observe({ kind: job.kind }, (Date.now() - job.createdAt.getTime()) / 1000);
    return 'completed';
  }
}

/**
 * The spec and hash a provider is offered: the job's spec without any verification policy
 * (redundancy 1), so a redundant or canary job looks like any other. Jobs are stored that way;
 * older rows are stripped here and re-hashed.
 */
export function offeredSpec(job: Job): { spec: JobSpec; specHash: string } {
  const spec = job.spec as unknown as JobSpec;
  if ((spec.redundancy ?? 1) === 1) return { spec, specHash: job.specHash };
  const stripped = { ...spec, redundancy: 1 };
  return { spec: stripped, specHash: hashSpec(stripped) };
}
