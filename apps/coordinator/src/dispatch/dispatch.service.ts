import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Job } from '#prisma';
import type { TensorWire } from '@gpumesh/protocol';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { INPUT_FAULT_ATTEMPT, JobsRepository, WORKER_LOST_ATTEMPT } from '../jobs/jobs.repository.js';
import { jobErrorEvent, storedJobError, type JobError } from '../jobs/job-error.js';
import { isTerminal, type JobState } from '../jobs/job-state.js';
import { JobsService } from '../jobs/jobs.service.js';
import { AttemptsRepository } from '../jobs/attempts.repository.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { LOGGER } from '../logging/logger.js';
import { ProviderViewService } from '../p2p/provider-view.service.js';
import { CanaryService } from '../verification/canary.service.js';
import { VerificationRepository } from '../verification/verification.repository.js';
import { holdSeconds } from '../verification/vesting.service.js';
import { SettingsService } from '../settings/settings.service.js';
import { TRUSTED_REPUTATION } from '../reputation/reputation.js';
import { TensorsService } from '../tensors/tensors.service.js';
import { AttemptRunner, type AttemptOutcome } from './attempt-runner.service.js';
import { Adjudicator, type Adjudication, type SingleJudgement } from './adjudicator.service.js';
import { singleCompletion, verifiedCompletion, verifiedResult, type SettleTerms } from './completion.js';
import { AttemptsFailedError, NoCapacityError, type DispatchOutcome } from './dispatch-errors.js';
import { inputFaultFailure } from './input-faults.js';
import { DisprovedClaims } from './disproved-claims.service.js';
import { deadlineError } from './deadline.js';
import { unplaceableFailure } from './unplaceable.js';

/**
 * How long a job must have waited before providers that lost it (see JobsRepository.findForDispatch)
 * may be offered it again, when no other provider can take it.
 */
export const LOST_LAST_RESORT_AFTER_MS = 10_000;

export { AttemptsFailedError, NoCapacityError, type DispatchOutcome } from './dispatch-errors.js';

/**
 * One dispatch of one job: place it with libs/scheduler, offer it to the chosen providers over
 * libp2p, record every step as a job event, and settle it. A failed, rejected or lost attempt sends
 * the job back to the queue (excluding that provider); BullMQ retries it with backoff. A dispatch
 * re-delivered after a worker crash finds the job still dispatched: its open attempts are lost and
 * it is placed again. Running an attempt is AttemptRunner's; judging results is the Adjudicator's
 * (decideVerdict); this records the job's moves and their ledger effects.
 */
@Injectable()
export class DispatchService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly jobsRepo: JobsRepository,
    private readonly jobs: JobsService,
    private readonly attempts: AttemptsRepository,
    private readonly view: ProviderViewService,
    private readonly metrics: MetricsService,
    private readonly canaries: CanaryService,
    private readonly verification: VerificationRepository,
    private readonly settings: SettingsService,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly runner: AttemptRunner,
    private readonly adjudicator: Adjudicator,
    private readonly tensors: TensorsService,
    private readonly claims: DisprovedClaims,
  ) {}

  async dispatch(jobId: string, now = new Date()): Promise<DispatchOutcome> {
    // The job and the providers that failed it, in one query shared with concurrent dispatches;
    // a job this process just submitted needs no read on its first dispatch.
    const found = this.jobsRepo.takeInserted(jobId) ?? (await this.jobsRepo.findForDispatch(jobId));
    // Providers whose results are in an open disagreement get no new work until it is decided.
    const hardExclude = [...(found?.failedProviders ?? []), ...this.adjudicator.reviewing()];
    // Providers that lost the job are not offered it again while anyone else can take it.
    const exclude = [...hardExclude, ...(found?.lostProviders ?? [])];
    // Providers failed it before: some may have said its input cannot run (see DisprovedClaims).
    const claimed = (found?.failedProviders.length ?? 0) > 0;
    let job = found?.job ?? null;
    if (!job || isTerminal(job.state)) {
      // A dispatch re-delivered after its completion's commit (the worker stopped before charging
      // the claims the result disproved) charges them now; a claim charged already is not again.
      if (job && claimed) {
        await this.claims.charge(job.id, await this.claims.disprovedBy(job.id, verifiedResult(job)));
      }
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
      const at = Date.now();
      const why = this.view.explain(job, at, found?.failedProviders ?? []);
      // Waited since it was queued last (a requeued job gets a fresh grace period).
      const waitedMs = at - job.updatedAt.getTime();
      const graceMs = this.config.UNPLACEABLE_GRACE_SECONDS * 1000;
      if (unplaceableFailure(why, waitedMs, graceMs)) {
        const reported = (await this.attempts.inputFaults(jobId, INPUT_FAULT_ATTEMPT)).map((r) => r.error);
        const failure = unplaceableFailure(why, waitedMs, graceMs, reported);
        if (failure && (await this.fail(jobId, ['QUEUED'], failure))) return 'failed';
      }
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
    const { job: moved, offered } = dispatched;
    const outcomes = await Promise.all(offered.map((attempt) => this.runner.run(moved, attempt)));
    return this.conclude(moved, outcomes, claimed);
  }

  /** Ends a job whose deadline passed and returns its reservation. */
  async expire(jobId: string): Promise<boolean> {
    // What its attempts ended with, so an expired job says why no provider finished it.
    const error = deadlineError(await this.attempts.forJob(jobId));
    const job = await this.jobs.transition({
      jobId,
      from: ['QUEUED', 'DISPATCHED', 'RUNNING'],
      to: 'EXPIRED',
      eventType: 'job.expired',
      eventData: { reason: 'deadline passed', ...jobErrorEvent(error) },
      effect: { kind: 'release' },
      patch: { error: storedJobError(error) },
    });
    if (job) {
      this.view.cancel(jobId);
      await this.attempts.loseOpenAttempts(jobId, 'job expired');
    }
    return job !== null;
  }

  /**
   * Ends a job that cannot run (its input, or no provider could ever take it) with its reason, and
   * returns its reservation.
   */
  private async fail(jobId: string, from: JobState[], error: JobError): Promise<boolean> {
    const job = await this.jobs.transition({
      jobId,
      from,
      to: 'FAILED',
      eventType: 'job.failed',
      eventData: { reason: error.message, ...jobErrorEvent(error) },
      effect: { kind: 'release' },
      patch: { error: storedJobError(error) },
    });
    if (job) {
      // Its attempts have all ended (input faults) or it has none open (queued): nothing to lose.
      this.view.cancel(jobId);
      this.logger.info({ jobId, code: error.code }, 'job failed');
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
    return this.jobs.transition({
      jobId: job.id,
      from: ['DISPATCHED', 'RUNNING', 'VERIFYING'],
      to: 'QUEUED',
      eventType: 'attempt.lost',
      eventData: { attempts: lost.map((a) => a.attempt), reason: 'dispatch interrupted; placing again' },
    });
  }

  /**
   * All attempts answered: verify agreement and pay, or send the job back to the queue. `claimed`:
   * providers failed the job before this dispatch (input-fault claims a verified result disproves).
   */
  private async conclude(job: Job, outcomes: AttemptOutcome[], claimed: boolean): Promise<DispatchOutcome> {
    const failed = outcomes.filter((o) => !o.ok);
    if (failed.some((o) => o.inputFault !== undefined)) {
      // The job itself cannot run, say its providers: two distinct operators saying so end it.
      const failure = inputFaultFailure(await this.attempts.inputFaults(job.id, INPUT_FAULT_ATTEMPT));
      if (failure && (await this.fail(job.id, ['DISPATCHED', 'RUNNING'], failure))) return 'failed';
    }
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
      const judged = await this.adjudicator.judgeSingle(job, only, answerOutputs);
      if (judged.kind === 'failed') return 'failed';
      if (judged.kind === 'requeue')
        return this.requeueAfterVerification(job, ['RUNNING', 'DISPATCHED'], judged.reason);
      if (judged.check?.ranExtra && only.acceptedAt !== undefined) {
        await this.catchUpRunning(job.id); // the check run may have moved the job to RUNNING already
        only.acceptedAt = undefined;
      }
      return this.completeSingle(job, only, judged, claimed);
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
    const adjudication = await this.adjudicator.adjudicate(job, outcomes, answerOutputs);
    const { action } = adjudication;
    if (action.kind === 'fail') return 'failed'; // a canary nobody answered right
    if (action.kind === 'requeue') return this.requeueAfterVerification(job, ['VERIFYING'], action.reason);
    // A tie-break's provider may have claimed an input fault in this dispatch.
    return this.completeVerified(
      job,
      adjudication,
      action.winners,
      claimed || adjudication.tiebreak !== undefined,
    );
  }

  /** Redundant results judged: the winners' result completes the job and they are paid. */
  private async completeVerified(
    job: Job,
    adjudication: Adjudication,
    winners: AttemptOutcome[],
    claimed: boolean,
  ): Promise<DispatchOutcome> {
    const disproved = claimed ? await this.claims.disprovedBy(job.id, true) : [];
    const completed = await this.jobs.transition(
      verifiedCompletion(job, adjudication, winners, await this.settleTerms(), disproved),
    );
    if (!completed) return 'skipped';
    await this.ownOutputs(completed);
    await this.claims.charge(job.id, disproved);
    const kind = adjudication.verdict.disagreed ? 'won_tiebreak' : 'verified_pass';
    // Agreement, the reference or the known answer checked each winner's result.
    for (const w of winners) this.runner.creditResult(job, w, kind, true);
    this.metrics.jobDuration.observe({ kind: job.kind }, (Date.now() - job.createdAt.getTime()) / 1000);
    this.logger.debug({ jobId: job.id }, 'job completed');
    return 'completed';
  }

  /** A canary may mirror this job, more likely when a provider is on probation (CanaryService). */
  private maybeFollowWithCanary(job: Job, peers: string[]): void {
    if (job.canary) return;
    const probation = peers.some((p) => this.view.reputation(p) < TRUSTED_REPUTATION);
    void this.canaries
      .maybeMirror(job, peers, probation)
      .then((canary) => {
        if (canary) this.metrics.jobsSubmitted.inc({ kind: `${job.kind}` });
      })
      .catch((err: unknown) => this.logger.warn({ err, jobId: job.id }, 'could not create a canary'));
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

  /**
   * One provider's result: attempt, events (with the input-fault claims it disproved when it was
   * verified), completion and payment in one commit; then the disproved claims are charged.
   */
  private async completeSingle(
    job: Job,
    outcome: AttemptOutcome,
    judged: Extract<SingleJudgement, { kind: 'deliver' }>,
    claimed: boolean,
  ): Promise<DispatchOutcome> {
    const folded = outcome.acceptedAt !== undefined;
    const disproved = claimed ? await this.claims.disprovedBy(job.id, judged.verified) : [];
    const request = singleCompletion(job, outcome, judged, await this.settleTerms(), disproved);
    let completed = await this.jobs.transition(request);
    if (!completed && !folded && (await this.catchUpRunning(job.id)))
      completed = await this.jobs.transition(request);
    if (!completed) {
      this.metrics.attempts.inc({ outcome: 'late_ignored' });
      return 'skipped';
    }
    this.metrics.attempts.inc({ outcome: 'succeeded' });
    await this.ownOutputs(completed);
    await this.claims.charge(job.id, disproved);
    this.runner.creditResult(job, outcome, judged.passKind, judged.verified);
    this.metrics.jobDuration.observe({ kind: job.kind }, (Date.now() - job.createdAt.getTime()) / 1000);
    return 'completed';
  }

  /**
   * The completed job's outputs by ref become its account's tensors (a later job may name them). A
   * failure here leaves the job completed and its outputs downloadable; only the naming is lost.
   */
  private async ownOutputs(job: Job): Promise<void> {
    await this.tensors
      .adoptOutputs(job)
      .catch((err: unknown) =>
        this.logger.warn({ err, jobId: job.id }, 'could not give a job its outputs by ref as tensors'),
      );
  }

  private async settleTerms(): Promise<SettleTerms> {
    return { feeBps: await this.settings.get('platformFeeBps'), hold: holdSeconds(this.config) > 0 };
  }
}
