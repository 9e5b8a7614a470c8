import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Job, JobAttempt } from '#prisma';
import {
  hashOutputs,
  type JobSpec,
  type ResultReceipt,
  type ResultTensor,
  type Signed,
  type TensorWire,
} from '@gpumesh/protocol';
import { judgeTrainLoss, type TrainLosses } from '@gpumesh/verification';
import { TensorsService, type CheckedTensor } from '../tensors/tensors.service.js';
import { ArtifactsRepository } from '../artifacts/artifacts.repository.js';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { LOGGER } from '../logging/logger.js';
import { JobsService } from '../jobs/jobs.service.js';
import { ReputationService } from '../reputation/reputation.service.js';
import type { ReputationKind } from '../reputation/reputation.js';
import { buildEvidence, canonicalEvidence, evidenceHash, type ReferenceSource } from './evidence.js';
import { CoordinatorReference, type ReferenceOutcome } from './reference.js';
import { unreadOutputs } from './compare.js';
import { compareResultsOffLoop } from './check-thread.js';
import { COMPENSATION_WINDOW_MS, VerificationRepository } from './verification.repository.js';
import { JOB_CORRECTED_EVENT } from '../jobs/job-state.js';
import { JobEventsBus } from '../events/job-events.publisher.js';
import { WebhooksService } from '../events/webhooks/webhooks.service.js';
import { AttemptsRepository } from '../jobs/attempts.repository.js';

export interface Accused {
  attemptId: string;
  peerId: string;
  receipt: Signed<ResultReceipt>;
  /** As the provider sent them (inline or by ref). */
  outputs: ResultTensor[];
}

/** What a known answer says of a result (VerifierService.judge). */
export type Judgement =
  | { kind: 'agree' }
  | { kind: 'disagree'; reason: string; losses?: TrainLosses }
  | { kind: 'undecided'; reason: string; losses?: TrainLosses };

export interface Reference {
  source: ReferenceSource;
  /** Inline, or a provider's outputs as checked (read back from the store, or still by ref). */
  outputs: CheckedTensor[];
  receipts?: Signed<ResultReceipt>[];
}

/**
 * Convictions and re-verification. A provider caught returning a wrong result (against a canary
 * answer, the coordinator's reference, or a majority of other operators) gets an evidence bundle
 * (its signed receipt, its outputs, the reference), a ban, a slash proposal citing the bundle's
 * hash, and every credit it still has on hold re-verified: wrong results are reversed to their
 * developers, the job's result is replaced by the reference, and anyone who returned the very same
 * wrong output (a colluder) is convicted in turn.
 */
/** Delay of the second re-verification pass after a ban (jobs in flight at the ban have settled). */
const REVERIFY_AGAIN_AFTER_MS = 3_000;
/** How far back a banned provider's delivered results are re-verified (credits vested or not). */
export const REVERIFY_WINDOW_MS = COMPENSATION_WINDOW_MS;
/** Most delivered jobs one re-verification pass recomputes (newest first). */
export const REVERIFY_MAX_JOBS = 500;

@Injectable()
export class VerifierService implements OnModuleDestroy {
  private readonly reverifying = new Map<string, Promise<void>>();
  /** The last re-verification pass queued (passes run one at a time, see reverifyLater). */
  private passes: Promise<void> = Promise.resolve();
  /** The coordinator's recompute: a worker thread under REFERENCE_WORK_BUDGET and a time limit. */
  readonly references: CoordinatorReference;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly repo: VerificationRepository,
    private readonly reputation: ReputationService,
    private readonly jobs: JobsService,
    artifacts: ArtifactsRepository,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly bus: JobEventsBus,
    private readonly webhooks: WebhooksService,
    private readonly attempts: AttemptsRepository,
    private readonly tensors: TensorsService,
  ) {
    this.references = new CoordinatorReference(
      artifacts,
      { maxWorkUnits: BigInt(config.REFERENCE_WORK_BUDGET) },
      (sha256) => tensors.files.read(sha256),
    );
  }

  async onModuleDestroy(): Promise<void> {
    await this.references.close();
  }

  /**
   * The coordinator's own result of `spec` (any kind; inference and train with the stored model),
   * computed off the event loop. Refused at once, with the reason, when `workUnits` (the job's
   * stored price) or the spec's own cost is over REFERENCE_WORK_BUDGET or the worker is saturated.
   */
  async referenceOf(
    spec: JobSpec,
    workUnits: bigint,
    priority: 'high' | 'low' = 'high',
  ): Promise<ReferenceOutcome> {
    const budget = BigInt(this.config.REFERENCE_WORK_BUDGET);
    if (workUnits > budget) {
      return {
        ok: false,
        code: 'OVER_BUDGET',
        reason: `the job costs ${workUnits} work units, over the reference work budget of ${budget} (REFERENCE_WORK_BUDGET): not recomputed`,
      };
    }
    return this.references.compute(spec, priority);
  }

  /**
   * The coordinator's own result of a job, or null (the reason is logged and noted on the job as
   * `verification.reference_unavailable`: over the budget, worker busy, timed out, no artifact...).
   */
  async reference(job: Job): Promise<TensorWire[] | null> {
    const outcome = await this.referenceOf(job.spec as unknown as JobSpec, job.workUnits);
    if (outcome.ok) {
      this.logger.debug(
        {
          jobId: job.id,
          kind: job.kind,
          runMs: Math.round(outcome.runMs),
          queuedMs: Math.round(outcome.queuedMs),
        },
        'coordinator reference computed',
      );
      return outcome.outputs;
    }
    this.logger.warn(
      { jobId: job.id, code: outcome.code, reason: outcome.reason },
      'no coordinator reference',
    );
    await this.jobs
      .note(job.id, 'verification.reference_unavailable', { code: outcome.code, reason: outcome.reason })
      .catch(() => undefined);
    return null;
  }

  /** Whether two results agree within the job's tolerance (large ones compared on the check thread). */
  async agrees(job: Job, a: readonly CheckedTensor[], b: readonly CheckedTensor[]): Promise<boolean> {
    return (await compareResultsOffLoop(a, b, { spec: job.spec as unknown as JobSpec })).agree;
  }

  /**
   * What a known answer (the coordinator's reference, a canary's) says of `candidate`. Within the
   * job's tolerance it agrees. Outside it, a train job's weights are judged by the training loss
   * each set reaches on the job's data (libs/verification/src/train-loss.ts): clearly worse is
   * proof of a wrong result; as good is not proof either way, since honest trainings on two
   * backends can drift apart and a tampered model (a backdoor) can keep the loss, so the result is
   * `undecided`: nobody is convicted for it and it is not delivered on this check alone.
   */
  async judge(
    job: Job,
    candidate: readonly CheckedTensor[],
    known: readonly CheckedTensor[],
  ): Promise<Judgement> {
    const spec = job.spec as unknown as JobSpec;
    // outputs by ref are read back from the tensor store (within RESULT_CHECK_MAX_BYTES)
    const [c, k] = await Promise.all([this.tensors.forCheck(candidate), this.tensors.forCheck(known)]);
    const agreement = await compareResultsOffLoop(c, k, { spec });
    if (agreement.agree) return { kind: 'agree' };
    const weights = agreement.reason ?? 'results differ';
    // Too large to read back and not bit-identical: no proof either way.
    if (unreadOutputs(c) || unreadOutputs(k)) return { kind: 'undecided', reason: weights };
    if (spec.kind !== 'train') return { kind: 'disagree', reason: weights };
    const [candidateWire, knownWire] = await Promise.all([this.tensors.wireFor(c), this.tensors.wireFor(k)]);
    if (!candidateWire || !knownWire) {
      return {
        kind: 'undecided',
        reason: `${weights}; the weights are too large for the training-loss check`,
      };
    }
    const run = await this.references.trainLosses(spec, [candidateWire, knownWire, null]);
    if (!run.ok || run.losses.length !== 3) {
      const why = run.ok ? 'no losses' : `${run.code}: ${run.reason}`;
      await this.jobs
        .note(job.id, 'verification.train_loss', { outcome: 'undecided', weights, reason: why })
        .catch(() => undefined);
      return { kind: 'undecided', reason: `${weights}; the training losses could not be computed (${why})` };
    }
    const [candidateLoss, referenceLoss, initial] = run.losses;
    const losses: TrainLosses = { candidate: candidateLoss, reference: referenceLoss, initial };
    const verdict = judgeTrainLoss(losses);
    const judgement: Judgement =
      verdict.kind === 'worse'
        ? { kind: 'disagree', reason: `${weights}; ${verdict.reason}`, losses }
        : {
            kind: 'undecided',
            reason:
              verdict.kind === 'agree'
                ? `${weights}, yet the training loss ${candidateLoss.toExponential(3)} is within the bound ${verdict.bound.toExponential(3)} of the reference's`
                : `${weights}; ${verdict.reason}`,
            losses,
          };
    await this.jobs
      .note(job.id, 'verification.train_loss', {
        outcome: judgement.kind,
        weights,
        losses,
        ...(verdict.kind === 'undecided' ? {} : { bound: verdict.bound }),
      })
      .catch(() => undefined);
    return judgement;
  }

  /**
   * Evidence, ban, slash proposal; then the provider's held credits are re-verified. A train job's
   * result is first judged (`judge`) unless the caller did (`judged`): weights outside the tolerance
   * that train the model as well as the reference prove nothing, so the result is only set aside
   * (its attempt FAILED, unpaid) and nobody is convicted. Resolves whether the provider was.
   */
  async convict(
    job: Job,
    accused: Accused,
    reference: Reference,
    kind: ReputationKind,
    options: { judged?: boolean } = {},
  ): Promise<boolean> {
    const spec = job.spec as unknown as JobSpec;
    if (spec.kind === 'train' && !options.judged) {
      const judgement = await this.judge(job, accused.outputs, reference.outputs);
      if (judgement.kind === 'agree') return false;
      if (judgement.kind === 'undecided') {
        this.logger.warn(
          { jobId: job.id, peerId: accused.peerId, judgement },
          'train result outside the weight tolerance but not proven wrong: set aside, not convicted',
        );
        await this.attempts.reject(accused.attemptId, `verification: set aside: ${judgement.reason}`);
        return false;
      }
    }
    // The bundle carries the accused's outputs inline: outputs by ref are read back and encoded.
    const [accusedOutputs, referenceOutputs] = await Promise.all([
      this.tensors.wireFor(accused.outputs),
      this.tensors.wireFor(reference.outputs),
    ]);
    if (!accusedOutputs || !referenceOutputs) {
      this.logger.warn(
        { jobId: job.id, peerId: accused.peerId },
        'wrong result too large for an evidence bundle: set aside, not convicted',
      );
      await this.attempts.reject(
        accused.attemptId,
        'verification: set aside: its outputs are too large for an evidence bundle',
      );
      return false;
    }
    const agreement = await compareResultsOffLoop(accusedOutputs, referenceOutputs, { spec });
    // Model jobs carry their artifact, so the bundle can be recomputed offline; receipts name the
    // opaque per-attempt ids the job was offered under, which the bundle lists.
    const artifact = await this.references.artifactOf(spec).catch(() => null);
    const offerIds = [accused.receipt, ...(reference.receipts ?? [])]
      .map((r) => r.payload.jobId)
      .filter((id) => id !== job.id);
    const bundle = buildEvidence({
      job: { id: job.id, spec, specHash: job.specHash, offerIds },
      accused: { receipt: accused.receipt, outputs: accusedOutputs },
      reference: { ...reference, outputs: referenceOutputs },
      artifacts: artifact ? [artifact] : undefined,
    });
    const hash = evidenceHash(bundle);
    const reason = `${kind}: job ${job.id}: ${agreement.reason ?? 'result differs from the reference'} (reference: ${reference.source})`;
    await this.attempts.reject(accused.attemptId, `verification failed: ${reason}`);
    const { created } = await this.repo.recordConviction({
      jobId: job.id,
      attemptId: accused.attemptId,
      peerId: accused.peerId,
      operatorAddress: accused.receipt.payload.providerAddress,
      bundle: canonicalEvidence(bundle),
      bundleHash: hash,
      amount: this.config.SLASH_AMOUNT,
      reason,
      executeAfter: new Date(Date.now() + this.config.SLASH_REVIEW_SECONDS * 1000),
    });
    if (!created) return true;
    await this.reputation.record(accused.peerId, kind, {
      jobId: job.id,
      reason,
      detail: { evidenceHash: hash, reference: reference.source },
    });
    await this.jobs
      .note(job.id, 'verification.convicted', { provider: accused.peerId, kind, evidenceHash: hash })
      .catch(() => undefined);
    this.reverifyLater(accused.peerId);
    return true;
  }

  /** Starts (once at a time per provider) the re-verification of a banned provider's held credits. */
  reverifyLater(peerId: string): void {
    if (this.reverifying.has(peerId)) return;
    // Passes run one at a time, across providers: providers banned together (a colluding pair
    // caught by one canary) share jobs, and concurrent passes would each reverse those credits.
    const pass = (): Promise<void> => {
      const next = this.passes.then(() => this.reverify(peerId));
      this.passes = next.catch(() => undefined);
      return next;
    };
    // A second pass catches credits of jobs that were settling while the first one ran.
    const run = pass()
      .then(() => new Promise((r) => setTimeout(r, REVERIFY_AGAIN_AFTER_MS)))
      .then(pass)
      .catch((err: unknown) => this.logger.error({ err, peerId }, 're-verification failed'))
      .finally(() => this.reverifying.delete(peerId));
    this.reverifying.set(peerId, run);
  }

  /** Resolves when every running re-verification finished (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.reverifying.size > 0) await Promise.all([...this.reverifying.values()]);
  }

  /**
   * Every credit the banned provider still has on hold: recompute the job; a correct result keeps
   * its credits; a wrong one is reversed for every provider paid for it, the result replaced by
   * the reference, and providers whose signed output is that very wrong output convicted.
   * Unverifiable jobs (over the budget, or a kind the coordinator cannot compute) are reversed for
   * the banned provider only: a cheater's unverified work is not paid.
   */
  async reverify(peerId: string): Promise<void> {
    const credits = await this.repo.heldCredits(peerId);
    const seen = new Set(credits.map((c) => c.jobId));
    for (const credit of credits) {
      const job = await this.repo.findJob(credit.jobId);
      if (!job) continue;
      const delivered = (job.result as { outputs?: ResultTensor[] } | null)?.outputs;
      const reference = await this.reference(job);
      if (!reference || !delivered) {
        const refunded = await this.repo.reverse(credit, job);
        await this.jobs.note(job.id, 'verification.credit_reversed', {
          provider: peerId,
          refunded: refunded.toString(),
          reason: 'unverifiable work of a banned provider',
        });
        continue;
      }
      // Correct (or not proven wrong): its credits vest as usual.
      if ((await this.judge(job, delivered, reference)).kind !== 'disagree') continue;
      await this.correct(job, peerId, delivered, reference);
    }
    // Results whose credits already vested (a hold of 0 s vests at once): the developer still gets
    // the corrected result, the job.corrected event and the webhook; what vested stays paid.
    const since = new Date(Date.now() - REVERIFY_WINDOW_MS);
    for (const jobId of await this.repo.deliveredBy(peerId, since, REVERIFY_MAX_JOBS)) {
      if (seen.has(jobId) || (await this.repo.wasCorrected(jobId))) continue;
      const job = await this.repo.findJob(jobId);
      const delivered = (job?.result as { outputs?: ResultTensor[] } | null)?.outputs;
      if (!job || !delivered) continue;
      const reference = await this.reference(job);
      if (!reference || (await this.judge(job, delivered, reference)).kind !== 'disagree') continue;
      await this.correct(job, peerId, delivered, reference);
    }
  }

  /**
   * A delivered result found wrong: what is still held for it goes back to the developer, the
   * reference replaces it (event job.corrected, webhook delivery queued with it), and providers whose
   * signed output is that very wrong output are convicted in turn.
   */
  private async correct(
    job: Job,
    peerId: string,
    delivered: ResultTensor[],
    reference: TensorWire[],
  ): Promise<void> {
    const deliveredHash = hashOutputs(delivered);
    const attempts = await this.repo.attempts(job.id);
    const paid = attempts.filter((a) => a.state === 'SUCCEEDED' && a.providerId);
    let refunded = 0n;
    for (const a of paid) {
      refunded += await this.repo.reverse({ peerId: a.providerId as string, jobId: job.id, amount: 0n }, job);
    }
    const corrected = await this.repo.correctResult(job, reference, hashOutputs(reference), {
      reason: `re-verified after ${peerId} was banned: the delivered result was wrong`,
      refunded: refunded.toString(),
      wrongResultHash: deliveredHash,
      provider: peerId,
    });
    if (corrected) {
      this.logger.warn({ jobId: job.id, peerId }, 'delivered result corrected');
      void this.bus.publish({ jobId: job.id, type: JOB_CORRECTED_EVENT });
      this.webhooks.kick();
    }
    for (const a of paid) {
      if (a.providerId === peerId || a.outputHash !== deliveredHash || !a.receipt) continue;
      await this.convict(
        job,
        accusedOf(a, delivered),
        { source: 'coordinator', outputs: reference },
        'failed_reverification',
      );
    }
  }
}

function accusedOf(a: JobAttempt, outputs: ResultTensor[]): Accused {
  return {
    attemptId: a.id,
    peerId: a.providerId as string,
    receipt: a.receipt as unknown as Signed<ResultReceipt>,
    outputs,
  };
}
