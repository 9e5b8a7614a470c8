import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { randomUUID, randomInt } from 'node:crypto';
import type { Job } from '#prisma';
import { decodeTensor, encodeTensor, hashOutputs, hashSpec, type JobSpec, type TensorWire } from '#protocol';
import { AccountsRepository } from '../accounts/accounts.repository.js';
import { LOGGER } from '../logging/logger.js';
import { DispatchEnqueuer } from '../queue/dispatch-enqueuer.js';
import { CANARY_ACCOUNT_ADDRESS } from './verification-accounts.js';
import { VerificationRepository } from './verification.repository.js';
import { canComputeReference } from './reference.js';
import { VerifierService } from './verifier.service.js';
import { jobVerification, type JobVerification } from './policy.js';

/** A tensor of the same name, dtype and shape with fresh random values in the original's range. */
export function freshLike(t: TensorWire): TensorWire {
  const decoded = decodeTensor(t);
  const values = decoded.values;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    const x = Number(v);
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo === hi) {
    lo = Number.isFinite(lo) ? lo - 1 : -1;
    hi = Number.isFinite(hi) ? hi + 1 : 1;
  }
  if (t.dtype === 'float32') {
    const out = new Float32Array(values.length);
    for (let i = 0; i < out.length; i++) out[i] = lo + Math.random() * (hi - lo);
    return encodeTensor(t.name, 'float32', t.shape, out);
  }
  if (t.dtype === 'int32') {
    const out = new Int32Array(values.length);
    const span = Math.max(1, Math.min(2 ** 31 - 1, Math.floor(hi) - Math.ceil(lo) + 1));
    for (let i = 0; i < out.length; i++) out[i] = Math.ceil(lo) + randomInt(span);
    return encodeTensor(t.name, 'int32', t.shape, out);
  }
  const out = new Uint8Array(values.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.random() < 0.5 ? 0 : 1;
  return encodeTensor(t.name, 'bool', t.shape, out);
}

/** How long a real job of a kind is remembered as the model of that kind's canaries. */
const RECENT_JOB_TTL_MS = 60 * 60 * 1000;

/**
 * Known-answer canary jobs. A canary mirrors a real job — same kind, params, model, input names,
 * dtypes and shapes (fresh random values in the same range), same price cap, deadline length and
 * redundancy — under a fresh uuid, so on the wire it is an ordinary offer. Its answer is computed
 * by the coordinator before it is offered (in the reference worker, at low priority, under the
 * work budget) and kept in CanaryAnswer. When the answer of an inference or train mirror cannot be
 * computed (over the budget, the worker busy, no artifact), the canary mirrors the most recent real
 * matmul job instead, or is skipped. It belongs to the system canary account and is paid from the
 * `system:canary` fund like any job, so payment does not reveal it.
 */
@Injectable()
export class CanaryService {
  private accountId: Promise<string> | null = null;
  /** The last real job seen per kind (what canaries of that kind are made like). */
  private readonly recent = new Map<string, Job>();

  constructor(
    private readonly repo: VerificationRepository,
    private readonly accounts: AccountsRepository,
    private readonly enqueuer: DispatchEnqueuer,
    private readonly verifier: VerifierService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  canaryAccountId(): Promise<string> {
    this.accountId ??= this.accounts.canaryAccount(CANARY_ACCOUNT_ADDRESS).then((a) => a.id);
    this.accountId.catch(() => {
      this.accountId = null;
    });
    return this.accountId;
  }

  /**
   * Whether a job can be mirrored: any real job (its answer is computed, or refused, in mirror()).
   * Every real job asked about is remembered as the latest of its kind.
   */
  canMirror(job: Job): boolean {
    if (job.canary) return false;
    this.recent.set(job.kind, job);
    return canComputeReference(job.spec as unknown as JobSpec);
  }

  /** Creates, answers and enqueues the canary mirroring `job`; null when no answer could be computed. */
  async mirror(job: Job, redundancy: number): Promise<Job | null> {
    if (job.canary) return null;
    const made = await this.answered(job);
    if (!made) return null;
    const { source, spec, outputs } = made;
    const accountId = await this.canaryAccountId();
    const policy: JobVerification = {
      ...jobVerification(source),
      mode: redundancy > 1 ? 'redundant' : 'none',
      k: redundancy,
      canaryRate: 0,
      source: 'platform',
      canaryFee: '0',
    };
    const id = randomUUID();
    const deadlineMs = source.deadlineAt.getTime() - source.createdAt.getTime();
    const canary = await this.repo.insertCanary({
      id,
      accountId,
      kind: spec.kind,
      spec,
      specHash: hashSpec(spec),
      workUnits: source.workUnits,
      pricePerUnit: source.pricePerUnit,
      cost: source.workUnits * source.pricePerUnit * BigInt(redundancy),
      redundancy,
      verification: policy,
      deadlineAt: new Date(Date.now() + deadlineMs),
      answer: { outputs, outputHash: hashOutputs(outputs) },
    });
    try {
      await this.enqueuer.enqueue(id);
    } catch (err) {
      this.logger.warn({ err, jobId: id }, 'could not enqueue a canary; the requeue sweep will retry');
    }
    return canary;
  }

  /** A fresh-valued copy of `job` (or, failing that, of a recent real matmul job) and its answer. */
  private async answered(job: Job): Promise<{ source: Job; spec: JobSpec; outputs: TensorWire[] } | null> {
    const first = await this.answer(job);
    if (first.ok || job.kind === 'matmul') return first.ok ? first.made : null;
    const fallback = await this.recentMatmul();
    if (!fallback) {
      this.logger.debug(
        { jobId: job.id, reason: first.reason },
        'no canary: no answer and no matmul to fall back to',
      );
      return null;
    }
    const second = await this.answer(fallback);
    return second.ok ? second.made : null;
  }

  private async answer(
    source: Job,
  ): Promise<
    { ok: true; made: { source: Job; spec: JobSpec; outputs: TensorWire[] } } | { ok: false; reason: string }
  > {
    const real = source.spec as unknown as JobSpec;
    const spec = { ...real, inputs: real.inputs.map(freshLike), redundancy: 1 } as JobSpec;
    const outcome = await this.verifier.referenceOf(spec, source.workUnits, 'low');
    if (!outcome.ok) {
      this.logger.debug(
        { jobId: source.id, kind: source.kind, code: outcome.code, reason: outcome.reason },
        'canary answer not computed',
      );
      return { ok: false, reason: outcome.reason };
    }
    return { ok: true, made: { source, spec, outputs: outcome.outputs } };
  }

  /** The most recent real matmul job: seen by this process within the hour, else the latest stored. */
  private async recentMatmul(): Promise<Job | null> {
    const seen = this.recent.get('matmul');
    if (seen && Date.now() - seen.createdAt.getTime() < RECENT_JOB_TTL_MS) return seen;
    return this.repo.latestRealJob('matmul');
  }
}
