import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { randomUUID, randomInt } from 'node:crypto';
import type { Job } from '#prisma';
import {
  decodeTensor,
  encodeTensor,
  hashOutputs,
  hashSpec,
  type JobSpec,
  isTensorRef,
  type TensorWire,
} from '@gpumesh/protocol';
import { AccountsRepository } from '../accounts/accounts.repository.js';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { JobEventsBus } from '../events/job-events.publisher.js';
import { isTerminal } from '../jobs/job-state.js';
import { LOGGER } from '../logging/logger.js';
import { DispatchEnqueuer } from '../queue/dispatch-enqueuer.js';
import { VerificationRepository, type CanaryRefusal } from './verification.repository.js';
import { canComputeReference } from './reference.js';
import { VerifierService } from './verifier.service.js';
import { jobVerification, type JobVerification } from '../pricing/policy.js';

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

/** Safety net for lost job-event notices while a canary waits for the end of the job it mirrors. */
const CONCLUSION_POLL_EVERY_MS = 2_000;

/** How often, at most, the log says canaries stopped for lack of platform funds. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

/**
 * Known-answer canary jobs. A canary mirrors a real job — same kind, params, model, input names,
 * dtypes and shapes (fresh random values in the same range), same price cap, deadline length and
 * redundancy — under a fresh uuid, so on the wire it is an ordinary offer. Its answer is computed
 * by the coordinator before it is offered (in the reference worker, at low priority, under the
 * work budget) and kept in CanaryAnswer. When the answer of an inference or train mirror cannot be
 * computed (over the budget, the worker busy, no artifact), the canary mirrors the most recent real
 * matmul job instead, or is skipped. It belongs to the platform account (PLATFORM_ACCOUNT_ADDRESS)
 * and is paid from its escrowed balance like any job, so payment does not reveal it and every base
 * unit a canary pays is debited on chain; when that balance is short (or unlocking) canaries stop,
 * with a warning, until the operator deposits more.
 *
 * A canary made for a dispatch waits for the end of the real job, and when the providers that ran it
 * all had their result accepted (they agreed), it is placed on those same providers if they can take
 * it (else as usual). So providers that agreed on a real job meet a known-answer copy of it at the
 * canary rate, and colluders who share one wrong output whenever they are paired cannot count on
 * never being paired on a canary; a provider that the real job's own verification caught is banned
 * by then and not sent the copy as well.
 */
@Injectable()
export class CanaryService implements OnModuleDestroy {
  private accountId: Promise<string> | null = null;
  /** The last real job seen per kind (what canaries of that kind are made like). */
  private readonly recent = new Map<string, Job>();
  /** Ends the waits of canaries for their real jobs (at shutdown, with null). */
  private readonly waits = new Set<(ended: Job | null) => void>();
  private closed = false;
  private lastRefusalLog = 0;

  constructor(
    private readonly repo: VerificationRepository,
    private readonly accounts: AccountsRepository,
    private readonly enqueuer: DispatchEnqueuer,
    private readonly verifier: VerifierService,
    private readonly bus: JobEventsBus,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onModuleDestroy(): void {
    this.closed = true;
    for (const end of [...this.waits]) end(null);
  }

  canaryAccountId(): Promise<string> {
    this.accountId ??= this.accounts.canaryAccount(this.config.platformAccountAddress).then((a) => a.id);
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

  /**
   * With the job's canary rate (raised to PROBATION_CANARY_RATE when a provider it was placed on is
   * on `probation`), a canary mirrors this job (mirror(), placed on the same `peers` when they agree
   * on it); the canary when one was made.
   */
  async maybeMirror(job: Job, peers: readonly string[], probation: boolean): Promise<Job | null> {
    if (job.canary || !this.canMirror(job)) return null;
    const policy = jobVerification(job);
    const rate = Math.max(policy.canaryRate, probation ? this.config.PROBATION_CANARY_RATE : 0);
    if (rate <= 0 || Math.random() >= rate) return null;
    return this.mirror(job, job.redundancy, peers);
  }

  /**
   * Creates, answers and enqueues the canary mirroring `job`; null when no answer could be computed.
   * With `peers` (the providers `job` was just placed on), the canary is made once `job` is over,
   * and when all of them agreed on it they are kept in the canary's stored policy as the providers
   * to place it on (placement takes them when they can all take it, else it ignores them).
   */
  async mirror(job: Job, redundancy: number, peers: readonly string[] = []): Promise<Job | null> {
    if (job.canary) return null;
    const made = await this.answered(job);
    if (!made) return null;
    const preferPeers = peers.length > 0 ? await this.agreedOn(job, peers) : [];
    if (this.closed) return null;
    const { source, spec, outputs } = made;
    const accountId = await this.canaryAccountId();
    const policy: JobVerification = {
      ...jobVerification(source),
      mode: redundancy > 1 ? 'redundant' : 'none',
      k: redundancy,
      canaryRate: 0,
      source: 'platform',
      canaryFee: '0',
      ...(preferPeers.length > 0 ? { preferPeers } : {}),
    };
    const id = randomUUID();
    const deadlineMs = source.deadlineAt.getTime() - source.createdAt.getTime();
    const stored = await this.repo.insertCanary({
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
    if ('refused' in stored) {
      this.warnRefused(stored.refused);
      return null;
    }
    const canary = stored.job;
    try {
      await this.enqueuer.enqueue(id);
    } catch (err) {
      this.logger.warn({ err, jobId: id }, 'could not enqueue a canary; the requeue sweep will retry');
    }
    return canary;
  }

  /**
   * Stores and enqueues a known-answer job made elsewhere in the coordinator (a capacity probe): the
   * platform account owns and pays it like a canary, `outputs` is its answer, it runs only on
   * `pinPeers` (waiting for them until its deadline), and `marker` is kept in its stored policy (never
   * sent to providers). Null when the platform account cannot pay it (logged like canaries).
   */
  async submitKnownAnswer(input: {
    spec: JobSpec;
    workUnits: bigint;
    pricePerUnit: bigint;
    deadlineMs: number;
    outputs: TensorWire[];
    pinPeers: string[];
    marker: Record<string, unknown>;
  }): Promise<Job | null> {
    const accountId = await this.canaryAccountId();
    const policy: JobVerification & Record<string, unknown> = {
      ...input.marker,
      mode: 'none',
      k: 1,
      canaryRate: 0,
      source: 'platform',
      canaryFee: '0',
      preferPeers: input.pinPeers,
      pinPeers: true,
    };
    const id = randomUUID();
    const stored = await this.repo.insertCanary({
      id,
      accountId,
      kind: input.spec.kind,
      spec: input.spec,
      specHash: hashSpec(input.spec),
      workUnits: input.workUnits,
      pricePerUnit: input.pricePerUnit,
      cost: input.workUnits * input.pricePerUnit,
      redundancy: 1,
      verification: policy,
      deadlineAt: new Date(Date.now() + input.deadlineMs),
      answer: { outputs: input.outputs, outputHash: hashOutputs(input.outputs) },
    });
    if ('refused' in stored) {
      this.warnRefused(stored.refused);
      return null;
    }
    try {
      await this.enqueuer.enqueue(id);
    } catch (err) {
      this.logger.warn(
        { err, jobId: id },
        'could not enqueue a known-answer job; the requeue sweep will retry',
      );
    }
    return stored.job;
  }

  /** Logs once a minute at most that canaries stopped for lack of platform funds. */
  private warnRefused(reason: CanaryRefusal): void {
    const now = Date.now();
    if (now - this.lastRefusalLog < REFUSAL_LOG_INTERVAL_MS) return;
    this.lastRefusalLog = now;
    this.logger.warn(
      { platformAccount: this.config.platformAccountAddress, reason },
      reason === 'escrow-unlocking'
        ? 'no canary jobs: the platform account requested an escrow unlock'
        : reason === 'spending-cap-exceeded'
          ? 'no canary jobs: they would pass the spending cap the platform account signed; sign a higher one (gpumesh spending-cap with the PLATFORM_ACCOUNT_ADDRESS key, or PUT /v1/account/spending-cap)'
          : 'no canary jobs: the platform account cannot pay them; deposit into its escrow (PLATFORM_ACCOUNT_ADDRESS)',
    );
  }

  /**
   * `peers` once `job` is over, when it completed with an accepted result from each of them (they
   * agreed); else none (it failed, or a provider's result was rejected, or it never ended).
   */
  private async agreedOn(job: Job, peers: readonly string[]): Promise<string[]> {
    const ended = await this.ended(job);
    if (ended?.state !== 'COMPLETED') return [];
    const attempts = await this.repo.attempts(job.id);
    const accepted = new Set(attempts.filter((a) => a.state === 'SUCCEEDED').map((a) => a.providerId));
    return peers.every((p) => accepted.has(p)) ? [...peers] : [];
  }

  /**
   * The job once it is in a final state: woken by its job-event notices, with a slow poll as a
   * safety net; null when it is gone, still running past its deadline, or at shutdown.
   */
  private ended(job: Job): Promise<Job | null> {
    return new Promise((resolve) => {
      let reading = false;
      const end = (found: Job | null): void => {
        if (!this.waits.delete(end)) return;
        notices.unsubscribe();
        clearInterval(poll);
        clearTimeout(limit);
        resolve(found);
      };
      const read = (): void => {
        if (reading) return;
        reading = true;
        void this.repo
          .findJob(job.id)
          .then((found) => {
            if (!found || isTerminal(found.state)) end(found);
          })
          .catch((err: unknown) => this.logger.debug({ err, jobId: job.id }, 'could not read a mirrored job'))
          .finally(() => {
            reading = false;
          });
      };
      this.waits.add(end);
      const notices = this.bus.forJob(job.id).subscribe((n) => {
        if (n.state !== undefined && isTerminal(n.state)) read();
      });
      const poll = setInterval(read, CONCLUSION_POLL_EVERY_MS);
      const limit = setTimeout(() => end(null), Math.max(0, job.deadlineAt.getTime() - Date.now()) + 1_000);
      if (this.closed) end(null);
      else read();
    });
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
    // A job with inputs by ref (possibly beyond the inline caps) is not copied: the coordinator
    // does not recompute those (reference.ts) and fresh inline copies would not look like them.
    const inline = real.inputs.filter((t): t is TensorWire => !isTensorRef(t));
    if (inline.length < real.inputs.length) return { ok: false, reason: 'the job has inputs by ref' };
    const spec = { ...real, inputs: inline.map(freshLike), redundancy: 1 } as JobSpec;
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
