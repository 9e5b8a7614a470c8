import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Job, JobAttempt } from '#prisma';
import type {
  DecodedTensor,
  JobSpec,
  ResultReceipt,
  ResultTensor,
  Signed,
  TensorWire,
} from '@gpumesh/protocol';
import { paymentOf, type SettlePayment } from '../ledger/postings.js';
import { LOGGER } from '../logging/logger.js';
import { AttemptsRepository } from '../jobs/attempts.repository.js';
import { JobsService } from '../jobs/jobs.service.js';
import { ReputationService } from '../reputation/reputation.service.js';
import type { ReputationKind } from '../reputation/reputation.js';
import { jobVerification, type VerificationOutcome } from '../pricing/policy.js';
import {
  PROBATION_PENALTY_KINDS,
  PROBATION_VERIFIED_RESULTS,
  TIER_CACHE_TTL_MS,
  VERIFIED_RESULT_KINDS,
  checkedPayments,
  needsCheck,
  trustTier,
  uncheckedMethod,
  type TierDecision,
} from './tiers.js';
import { VerificationRepository } from './verification.repository.js';
import type { CheckedTensor } from '../tensors/tensors.service.js';
import { unreadOutputs } from './compare.js';
import { checkResultSanityOffLoop } from './check-thread.js';
import { VerifierService } from './verifier.service.js';

/** A provider's answer to one attempt, as dispatch holds it before the job completes. */
export interface HeldResult {
  attempt: JobAttempt;
  peerId: string;
  pricePerUnit: bigint;
  /** The platform fee signed into its offer. */
  feeBps?: number;
  ok: boolean;
  /** As the provider sent them (inline or by ref). */
  outputs?: ResultTensor[];
  /** As checked: outputs by ref read back from the store when within RESULT_CHECK_MAX_BYTES. */
  checked?: CheckedTensor[];
  receipt?: Signed<ResultReceipt>;
  outputHash?: string;
  error?: string;
}

/** What becomes of a single-copy result (see TrustTierService.checkSingle). */
export type SingleCheck =
  | {
      kind: 'deliver';
      outcome: VerificationOutcome;
      /** The reputation the delivered provider earns. */
      passKind: ReputationKind;
      /** Payments when a checker ran the job too (else the provider is paid as usual). */
      payments?: SettlePayment[];
      /** A check run on another provider took place (the job moved to RUNNING meanwhile). */
      ranExtra: boolean;
    }
  | { kind: 'requeue'; reason: string };

/** Error codes of attempts a check set aside. */
export const CHECK_UNAVAILABLE = 'CHECK_UNAVAILABLE';
export const CHECK_DISAGREED = 'CHECK_DISAGREED';

/**
 * Trust tiers (tiers.ts): which providers' results are held until a check passes, the check itself
 * (the coordinator's reference when it can compute one, else a run on a provider of another
 * operator), and the cheap sanity checks every result passes first.
 */
@Injectable()
export class TrustTierService {
  private readonly cache = new Map<string, { at: number; decision: TierDecision }>();

  constructor(
    private readonly repo: VerificationRepository,
    private readonly verifier: VerifierService,
    private readonly attempts: AttemptsRepository,
    private readonly jobs: JobsService,
    private readonly reputation: ReputationService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** The provider's tier (cached for TIER_CACHE_TTL_MS; a penalty seen here drops the cache). */
  async tier(peerId: string): Promise<TierDecision> {
    const hit = this.cache.get(peerId);
    if (hit && Date.now() - hit.at < TIER_CACHE_TTL_MS) return hit.decision;
    const record = await this.repo.trustRecord(
      peerId,
      PROBATION_VERIFIED_RESULTS,
      VERIFIED_RESULT_KINDS,
      PROBATION_PENALTY_KINDS,
    );
    const decision = trustTier(record);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(peerId, { at: Date.now(), decision });
    return decision;
  }

  /** Forgets a provider's cached tier (it was just penalised or banned). */
  forget(peerId: string): void {
    this.cache.delete(peerId);
  }

  /**
   * The cheap sanity check of a developer job's result (libs/verification sanity.ts): null when it
   * passes, else the attempt's error (`NON_FINITE_OUTPUT: …`), with a `failed_sanity` reputation
   * penalty that also puts the provider on probation. Canaries are judged by their known answer.
   */
  async sanity(job: Job, peerId: string, outputs: readonly CheckedTensor[]): Promise<string | null> {
    if (job.canary) return null;
    // Outputs by ref too large to read back: their dtype and shape were checked against the upload,
    // their values are judged by redundant copies and checks only (compared by hash).
    if (unreadOutputs(outputs)) return null;
    // large outputs (read back from the tensor store) are scanned on the check thread
    const verdict = await checkResultSanityOffLoop(
      job.spec as unknown as JobSpec,
      outputs as readonly (TensorWire | DecodedTensor)[],
    );
    if (verdict.ok) return null;
    this.forget(peerId);
    this.logger.warn(
      { jobId: job.id, peerId, code: verdict.code, reason: verdict.reason },
      'result refused by the sanity check',
    );
    void this.reputation
      .record(peerId, 'failed_sanity', {
        jobId: job.id,
        detail: { code: verdict.code, reason: verdict.reason },
      })
      .then(() => this.forget(peerId))
      .catch((err: unknown) => this.logger.warn({ err, peerId }, 'could not record a sanity penalty'));
    return `${verdict.code}: ${verdict.reason}`;
  }

  /**
   * Decides a single-copy developer job's result before the developer sees it. A trusted provider's
   * result is delivered (spot-checked by canaries) unless the job asked for `verified`. Otherwise it
   * is held for a check: the coordinator's reference (within REFERENCE_WORK_BUDGET) — a wrong
   * result is convicted and the job runs again —, else `runCheck` runs the job on a provider of
   * another operator: agreement delivers it (the checker paid first, see checkedPayments), a
   * disagreement nobody can decide or no free checker sets the result aside unpaid and unpenalised
   * and the job runs again elsewhere.
   */
  async checkSingle(
    job: Job,
    held: HeldResult,
    runCheck: (used: string[]) => Promise<HeldResult | null>,
  ): Promise<SingleCheck> {
    const policy = jobVerification(job);
    const required = policy.verified === true;
    const { tier, reason } = await this.tier(held.peerId);
    if (!needsCheck(tier, required)) {
      return {
        kind: 'deliver',
        outcome: { method: uncheckedMethod(policy.canaryRate), verified: false, tier },
        passKind: 'completion',
        ranExtra: false,
      };
    }
    const outputs = held.checked ?? held.outputs ?? [];
    await this.jobs
      .note(job.id, 'verification.held', { provider: held.peerId, tier, why: required ? 'verified' : reason })
      .catch(() => undefined);
    const reference = await this.verifier.referenceOf(job.spec as unknown as JobSpec, job.workUnits, 'high');
    // A train result outside the weight tolerance that trains the model as well as the reference
    // proves nothing either way: it is checked like a job without a reference.
    const judgement = reference.ok ? await this.verifier.judge(job, outputs, reference.outputs) : null;
    if (reference.ok && judgement?.kind === 'agree') {
      return {
        kind: 'deliver',
        outcome: { method: 'reference', verified: true, tier },
        passKind: 'verified_pass',
        ranExtra: false,
      };
    }
    if (reference.ok && judgement?.kind === 'disagree') {
      await this.attempts.settle(held.attempt.id, 'SUCCEEDED', {
        receipt: held.receipt,
        outputHash: held.outputHash,
      });
      if (held.receipt) {
        await this.verifier
          .convict(
            job,
            {
              attemptId: held.attempt.id,
              peerId: held.peerId,
              receipt: held.receipt,
              outputs: held.outputs ?? [],
            },
            { source: 'coordinator', outputs: reference.outputs },
            'failed_check',
            { judged: true },
          )
          .catch((err: unknown) =>
            this.logger.error({ err, jobId: job.id, peerId: held.peerId }, 'could not record a conviction'),
          );
      }
      this.forget(held.peerId);
      return {
        kind: 'requeue',
        reason: `the result of ${held.peerId} (on ${tier}) disagreed with the coordinator's reference; running it again`,
      };
    }
    const noReference = reference.ok ? 'UNDECIDED' : reference.code;
    if (!reference.ok) {
      await this.jobs
        .note(job.id, 'verification.reference_unavailable', {
          code: reference.code,
          reason: reference.reason,
        })
        .catch(() => undefined);
    }
    const extra = await runCheck([held.peerId]);
    if (!extra?.ok) {
      const why = `${CHECK_UNAVAILABLE}: no reference (${noReference}) and ${extra ? `the check run failed (${extra.error ?? 'no result'})` : 'no provider of another operator free to check it'}`;
      await this.attempts.settle(held.attempt.id, 'FAILED', { error: why });
      return { kind: 'requeue', reason: why };
    }
    const extraOutputs = extra.checked ?? extra.outputs ?? [];
    if (!(await this.verifier.agrees(job, outputs, extraOutputs))) {
      const why = `${CHECK_DISAGREED}: ${held.peerId} and the check run of ${extra.peerId} disagree and no reference can decide`;
      await this.jobs
        .note(job.id, 'verification.disagreement', {
          providers: [
            { provider: held.peerId, outputHash: held.outputHash },
            { provider: extra.peerId, outputHash: extra.outputHash },
          ],
        })
        .catch(() => undefined);
      await this.attempts.settle(held.attempt.id, 'FAILED', { error: why });
      await this.attempts.settle(extra.attempt.id, 'FAILED', { error: why });
      return { kind: 'requeue', reason: why };
    }
    await this.attempts.settle(extra.attempt.id, 'SUCCEEDED', {
      receipt: extra.receipt,
      outputHash: extra.outputHash,
    });
    void this.reputation
      .record(extra.peerId, 'verified_pass', { jobId: job.id, detail: { checked: held.peerId } })
      .catch((err: unknown) =>
        this.logger.warn({ err, peerId: extra.peerId }, 'could not record reputation'),
      );
    return {
      kind: 'deliver',
      outcome: { method: 'redundant', verified: true, checkedBy: extra.peerId, tier },
      passKind: 'verified_pass',
      payments: checkedPayments(job.cost, paymentOf(held, job), paymentOf(extra, job)),
      ranExtra: true,
    };
  }
}
