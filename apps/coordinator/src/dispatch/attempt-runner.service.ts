import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Subscription } from 'rxjs';
import type { Job, JobAttempt } from '#prisma';
import {
  hashOutputs,
  hashSpec,
  randomNonce,
  type JobSpec,
  type ResultReceipt,
  type ResultTensor,
  type Signed,
} from '@gpumesh/protocol';
import { JobProtocolError, type JobOfferOutcome } from '@gpumesh/p2p';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import {
  REJECTED_ATTEMPT,
  COORDINATOR_FAULT_ATTEMPT,
  INPUT_FAULT_ATTEMPT,
  type PassThrough,
} from '../jobs/jobs.repository.js';
import { JobsService } from '../jobs/jobs.service.js';
import { AttemptsRepository } from '../jobs/attempts.repository.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { LOGGER } from '../logging/logger.js';
import { P2pService } from '../p2p/p2p.service.js';
import { ProviderViewService } from '../p2p/provider-view.service.js';
import { TrustTierService } from '../verification/tiers.service.js';
import { ReputationService } from '../reputation/reputation.service.js';
import { CapacityProbeService } from '../capacity/capacity-probe.service.js';
import { probeMarker } from '../capacity/capacity.js';
import { isSlow, type ReputationKind } from '../reputation/reputation.js';
import { JobEventsBus } from '../events/job-events.publisher.js';
import { SettingsService } from '../settings/settings.service.js';
import { offerIdentity } from './offer-id.js';
import { attemptFault, type AttemptFault } from './attempt-faults.js';
import { inputFaultOf } from './input-faults.js';
import { TensorsService, type CheckedTensor } from '../tensors/tensors.service.js';

/** One attempt's end, as the runner hands it back to dispatch. */
export interface AttemptOutcome {
  attempt: JobAttempt;
  peerId: string;
  pricePerUnit: bigint;
  /** The platform fee signed into the offer (basis points); what the payment's split uses. */
  feeBps?: number;
  ok: boolean;
  /** As the provider sent them: inline, or by ref (uploaded to this worker's tensor store). */
  outputs?: ResultTensor[];
  /**
   * The outputs as they are checked and compared: outputs by ref read back from the store (within
   * RESULT_CHECK_MAX_BYTES; beyond, still by ref and compared by hash only).
   */
  checked?: CheckedTensor[];
  error?: string;
  /**
   * The provider said the job itself cannot run (its `error` frame's code is an input fault, see
   * INPUT_FAULT_ERROR_CODES): the error recorded after INPUT_FAULT_ATTEMPT.
   */
  inputFault?: string;
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

/** Progress events are throttled per attempt so a chatty provider cannot flood the event table. */
const PROGRESS_EVENT_EVERY_MS = 1_000;

/**
 * An acceptance is recorded (job RUNNING) this long after it arrives, unless the result comes first:
 * a short job then completes in one commit instead of two, and the dashboard still shows longer
 * jobs running.
 */
export const RUNNING_RECORD_DELAY_MS = 200;

/** The move to RUNNING on a provider's acceptance: recorded alone, or folded into the completion. */
export function runningStep(attempt: JobAttempt, peerId: string): PassThrough {
  return {
    state: 'RUNNING',
    eventType: 'job.running',
    eventData: { attempt: attempt.attempt, provider: peerId },
  };
}

/**
 * Runs one attempt of a job on one provider: the signed offer over libp2p, the acceptance and
 * progress as job events, the result's sanity and speed checks, and what a failure costs the
 * provider (attempt-faults.ts). It judges no result against another (see decideVerdict).
 */
@Injectable()
export class AttemptRunner {
  /** Offers in flight by job, to abort on a cancel (see cancellable). */
  private readonly inFlight = new Map<string, Set<AbortController>>();
  private cancelWatch: Subscription | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly jobs: JobsService,
    private readonly attempts: AttemptsRepository,
    private readonly view: ProviderViewService,
    private readonly p2p: P2pService,
    private readonly metrics: MetricsService,
    private readonly reputation: ReputationService,
    private readonly capacity: CapacityProbeService,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly tiers: TrustTierService,
    private readonly settings: SettingsService,
    private readonly bus: JobEventsBus,
    private readonly tensors: TensorsService,
  ) {}

  /**
   * Offers the job to the attempt's provider and runs the attempt over p2p: records its acceptance
   * (job RUNNING), throttled progress, and its result or failure (ATTEMPT_FAULTS). A single-copy
   * job's result is left for the completion's commit; a redundant copy's is recorded here.
   */
  async run(job: Job, attempt: JobAttempt): Promise<AttemptOutcome> {
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
    // The fee of the day is signed into the offer: what the provider accepts is what it is paid.
    const feeBps = await this.settings.get('platformFeeBps');
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
    const cancel = this.cancellable(job.id);
    let outcome: JobOfferOutcome;
    try {
      outcome = await this.p2p.offer(
        peerId,
        {
          version: 1,
          ...offerIdentity(attempt),
          ...offeredSpec(job),
          pricePerUnit: pricePerUnit.toString(),
          feeBps,
          workUnits: job.workUnits.toString(),
          deadlineAt: job.deadlineAt.getTime(),
          nonce: randomNonce(),
          issuedAt: Date.now(),
        },
        {
          providerAddress: provider.address,
          acceptTimeoutMs: this.config.OFFER_ACCEPT_TIMEOUT_MS,
          signal: cancel.signal,
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
      cancel.release();
      await accepted;
      const code = err instanceof JobProtocolError ? err.code : 'ERROR';
      const fault = attemptFault(code, { probe: probeMarker(job.verification) !== null });
      const inputFault = inputFaultOf(err);
      if (inputFault !== null) {
        const failed = await this.failAttempt(
          job,
          attempt,
          { ...base, pricePerUnit, feeBps },
          fault.state,
          `${INPUT_FAULT_ATTEMPT}${inputFault}`,
          fault,
        );
        return { ...failed, inputFault };
      }
      return this.failAttempt(
        job,
        attempt,
        { ...base, pricePerUnit, feeBps },
        fault.state,
        `${fault.coordinatorFault === true ? COORDINATOR_FAULT_ATTEMPT : ''}${code}: ${err instanceof Error ? err.message : String(err)}`,
        fault,
      );
    }
    cancel.release();
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
        { ...base, pricePerUnit, feeBps },
        'FAILED',
        `${REJECTED_ATTEMPT}${outcome.reason}`,
      );
    }
    const outputHash = hashOutputs(outcome.outputs);
    // Outputs by ref: uploaded by this provider for this offer, whole in the store.
    const missing = await this.tensors.outputsMissing(peerId, outcome.outputs);
    if (missing) return this.failAttempt(job, attempt, { ...base, pricePerUnit, feeBps }, 'FAILED', missing);
    const checked = await this.tensors.forCheck(outcome.outputs);
    const junk = await this.tiers.sanity(job, peerId, checked); // Inf from finite inputs, bad shapes
    if (junk) return this.failAttempt(job, attempt, { ...base, pricePerUnit, feeBps }, 'FAILED', junk);
    this.view.complete(job.id, peerId);
    this.view.attemptSucceeded(peerId);
    if (this.view.isBanned(peerId)) {
      return this.failAttempt(
        job,
        attempt,
        { ...base, pricePerUnit, feeBps },
        'FAILED',
        'provider banned meanwhile',
      );
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
    const result = {
      ...base,
      pricePerUnit,
      feeBps,
      ok: true as const,
      outputs: outcome.outputs,
      checked,
      receipt: outcome.receipt,
      outputHash,
      runMs,
    };
    if (job.redundancy === 1) {
      // Recorded together with the job's completion in conclude(): one commit for the whole result.
      return { ...result, succeeded, acceptedAt: foldAcceptance ? acceptedAt : undefined };
    }
    const recorded = await this.attempts.settle(attempt.id, 'SUCCEEDED', {
      receipt: outcome.receipt,
      outputHash,
    });
    if (!recorded) {
      // The attempt was already closed (lost, expired): a late duplicate result changes nothing.
      this.metrics.attempts.inc({ outcome: 'late_ignored' });
      return { ...base, pricePerUnit, feeBps, ok: false, error: 'late result ignored' };
    }
    this.metrics.attempts.inc({ outcome: 'succeeded' });
    await this.jobs.note(job.id, succeeded.type, succeeded.data);
    return result;
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

  /**
   * An abort signal for an offer of `jobId`: a developer's cancel, heard from any process over the
   * job-event bus, stops the attempt on the provider (a `cancel` frame, then the stream is reset),
   * so nothing is computed for a job nobody will pay for. One bus subscription serves every offer in
   * flight; `release` forgets the offer once it has ended.
   */
  private cancellable(jobId: string): { signal: AbortSignal; release: () => void } {
    this.cancelWatch ??= this.bus.all().subscribe((notice) => {
      if (notice.state !== 'CANCELLED') return;
      for (const offer of this.inFlight.get(notice.jobId) ?? [])
        offer.abort(new Error('the job was cancelled'));
    });
    const offer = new AbortController();
    const offers = this.inFlight.get(jobId) ?? new Set<AbortController>();
    offers.add(offer);
    this.inFlight.set(jobId, offers);
    return {
      signal: offer.signal,
      release: () => {
        offers.delete(offer);
        if (offers.size === 0 && this.inFlight.get(jobId) === offers) this.inFlight.delete(jobId);
      },
    };
  }

  /**
   * A completed result's reputation (`kind`), and when it was verified (agreement, a reference or a
   * known answer checked it) its timing proves its provider's speed (capacity/proven-speed.ts).
   */
  creditResult(job: Job, outcome: AttemptOutcome, kind: ReputationKind, verified: boolean): void {
    this.recordReputation(outcome.peerId, kind, job.id);
    if (verified && outcome.runMs !== undefined) {
      this.capacity.creditVerifiedJob(job, outcome.peerId, outcome.runMs, outcome.outputs ?? []);
    }
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
