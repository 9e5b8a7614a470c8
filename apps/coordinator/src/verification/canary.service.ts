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
import { canComputeReference, computeReference } from './reference.js';
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

/**
 * Known-answer canary jobs. A canary mirrors a real job — same kind, params, input names, dtypes and
 * shapes (fresh random values in the same range), same price cap, deadline length and redundancy —
 * under a fresh uuid, so on the wire it is an ordinary offer. Its answer is computed by the
 * coordinator before it is offered and kept in CanaryAnswer. It belongs to the system canary
 * account and is paid from the `system:canary` fund like any job, so payment does not reveal it.
 */
@Injectable()
export class CanaryService {
  private accountId: Promise<string> | null = null;

  constructor(
    private readonly repo: VerificationRepository,
    private readonly accounts: AccountsRepository,
    private readonly enqueuer: DispatchEnqueuer,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  canaryAccountId(): Promise<string> {
    this.accountId ??= this.accounts.canaryAccount(CANARY_ACCOUNT_ADDRESS).then((a) => a.id);
    this.accountId.catch(() => {
      this.accountId = null;
    });
    return this.accountId;
  }

  /** Whether a job of this shape can be mirrored (the coordinator must be able to answer it). */
  canMirror(job: Job): boolean {
    return !job.canary && canComputeReference(job.spec as unknown as JobSpec);
  }

  /** Creates, answers and enqueues the canary mirroring `job`; null when the job cannot be mirrored. */
  async mirror(job: Job, redundancy: number): Promise<Job | null> {
    if (!this.canMirror(job)) return null;
    const real = job.spec as unknown as JobSpec;
    const spec = { ...real, inputs: real.inputs.map(freshLike), redundancy: 1 } as JobSpec;
    const outputs = await computeReference(spec);
    const accountId = await this.canaryAccountId();
    const policy: JobVerification = {
      ...jobVerification(job),
      mode: redundancy > 1 ? 'redundant' : 'none',
      k: redundancy,
      canaryRate: 0,
      source: 'platform',
      canaryFee: '0',
    };
    const id = randomUUID();
    const deadlineMs = job.deadlineAt.getTime() - job.createdAt.getTime();
    const canary = await this.repo.insertCanary({
      id,
      accountId,
      kind: spec.kind,
      spec,
      specHash: hashSpec(spec),
      workUnits: job.workUnits,
      pricePerUnit: job.pricePerUnit,
      cost: job.workUnits * job.pricePerUnit * BigInt(redundancy),
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
}
