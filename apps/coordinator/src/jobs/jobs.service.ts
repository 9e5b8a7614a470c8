import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { randomUUID } from 'node:crypto';
import type { Job, JobEvent } from '#prisma';
import {
  ProtocolValidationError,
  hashParsedSpec,
  isTensorRef,
  parseJobSpec,
  workUnitsForSpec,
  type DType,
  type JobSpec,
  type ResultTensor,
} from '@gpumesh/protocol';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { DomainError } from '../common/domain-error.js';
import type { Principal } from '../auth/principal.js';
import { ArtifactsService } from '../artifacts/artifacts.service.js';
import { TensorsService } from '../tensors/tensors.service.js';
import { LedgerRepository } from '../ledger/ledger.repository.js';
import { LedgerAccounts } from '../ledger/accounts.js';
import { MAX_LEDGER_AMOUNT } from '../ledger/ledger-accounts.js';
import { NO_CHARGES, chargesByJob, chargesOfNewJob, type JobCharges } from '../ledger/job-charges.js';
import { JobEventsBus } from '../events/job-events.publisher.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { DispatchEnqueuer } from '../queue/dispatch-enqueuer.js';
import { LOGGER } from '../logging/logger.js';
import {
  JobsRepository,
  passThroughs,
  type TransitionRequest,
  type TransitionResult,
} from './jobs.repository.js';
import { JobSubmissionRepository } from './job-submission.repository.js';
import { DryRunService, type DryRunResult } from './dry-run.service.js';
import { staticIssues } from './static-checks.js';
import { JOB_STATES, isTerminal, type JobState } from './job-state.js';
import { jobErrorEvent, storedJobError } from './job-error.js';
import { decodeCursor, encodeCursor } from './dto/job.dto.js';
import { VerificationPolicyService } from '../pricing/policy.service.js';
import { costOf, type CostBreakdown } from '../pricing/cost.js';
import { spendingCapExceededError } from '../accounts/spending-caps.service.js';
import type { JobVerification } from '../pricing/policy.js';

export interface SubmitResult {
  job: Job;
  /** false when an earlier submission with the same Idempotency-Key was returned. */
  created: boolean;
}

/** Most jobs one `POST /v1/jobs/batch` submits. */
export const MAX_BATCH_SUBMIT = 500;

/** One job of a batch submission: stored (`job`, `created`) or refused (`error`). */
export type BatchSubmitItem = { index: number } & (SubmitResult | { error: DomainError });

interface PreparedJob {
  spec: JobSpec;
  specHash: string;
  verification: JobVerification;
  workUnits: bigint;
  pricePerUnit: bigint;
  cost: bigint;
}

function checkIdempotencyKey(key: string | undefined, maxLength: number): void {
  if (key !== undefined && !(key.length <= maxLength && /^[\x21-\x7e]+$/.test(key))) {
    throw new DomainError(
      'VALIDATION_FAILED',
      `Idempotency-Key header: 1-${maxLength} printable ASCII characters without spaces`,
    );
  }
}

/** One output of a completed job, ready to send: its layout and its element bytes. */
export interface JobOutput {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly bytes: number;
  /** Whole (an inline output) or streamed from the tensor store (an output by ref). */
  readonly data: Uint8Array | AsyncIterable<Uint8Array>;
  /** `sha256:<hex>` of an output by ref. */
  readonly ref?: string;
}

@Injectable()
export class JobsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly jobs: JobsRepository,
    private readonly submissions: JobSubmissionRepository,
    private readonly dryRuns: DryRunService,
    private readonly artifacts: ArtifactsService,
    private readonly tensors: TensorsService,
    private readonly ledger: LedgerRepository,
    private readonly bus: JobEventsBus,
    private readonly metrics: MetricsService,
    private readonly enqueuer: DispatchEnqueuer,
    private readonly policies: VerificationPolicyService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Validates the spec, prices it from the spec alone, reserves the cost and enqueues it. */
  async submit(
    principal: Principal,
    body: unknown,
    idempotencyKey: string | undefined,
  ): Promise<SubmitResult> {
    checkIdempotencyKey(idempotencyKey, 255);
    return this.store(principal, await this.prepare(principal, body), idempotencyKey);
  }

  /**
   * Submits many jobs in one request (`{ "jobs": [spec, ...] }`). Every spec is validated first and
   * nothing is stored unless all are valid (the error names the index); then each is stored as
   * `submit` stores one — they share a database transaction and one queue write — and each reports
   * its own outcome, so a job the balance no longer covers fails alone. With an Idempotency-Key, job i
   * uses `<key>.<i>`.
   */
  async submitMany(
    principal: Principal,
    body: unknown,
    idempotencyKey: string | undefined,
  ): Promise<BatchSubmitItem[]> {
    checkIdempotencyKey(idempotencyKey, 255 - 1 - String(MAX_BATCH_SUBMIT).length);
    const jobs = (body as { jobs?: unknown } | null)?.jobs;
    if (typeof body !== 'object' || body === null || !Array.isArray(jobs)) {
      throw new DomainError('VALIDATION_FAILED', 'body: expected { "jobs": [job spec, ...] }');
    }
    if (jobs.length === 0 || jobs.length > MAX_BATCH_SUBMIT) {
      throw new DomainError(
        'VALIDATION_FAILED',
        `jobs: expected 1 to ${MAX_BATCH_SUBMIT} job specs, got ${jobs.length}`,
      );
    }
    const prepared = await Promise.all(
      jobs.map((job, i) =>
        this.prepare(principal, job).catch((err: unknown) => {
          if (err instanceof DomainError) {
            throw new DomainError(err.code, `jobs[${i}]: ${err.message}`, { ...err.details, index: i });
          }
          throw err;
        }),
      ),
    );
    return Promise.all(
      prepared.map((p, i) =>
        this.store(principal, p, idempotencyKey === undefined ? undefined : `${idempotencyKey}.${i}`).then(
          (result): BatchSubmitItem => ({ ...result, index: i }),
          (err: unknown): BatchSubmitItem => {
            if (!(err instanceof DomainError)) throw err;
            return { index: i, error: err };
          },
        ),
      ),
    );
  }

  private async prepare(principal: Principal, body: unknown): Promise<PreparedJob> {
    const { spec, verification } = await this.parseRequest(principal, body);
    const specHash = hashParsedSpec(spec);
    const workUnits = await this.workUnits(principal.accountId, spec);
    const pricePerUnit = BigInt(spec.maxPricePerUnit);
    const breakdown = this.price(workUnits, pricePerUnit, verification);
    verification.canaryFee = breakdown.canary.toString();
    return { spec, specHash, verification, workUnits, pricePerUnit, cost: breakdown.total };
  }

  private async store(
    principal: Principal,
    prepared: PreparedJob,
    idempotencyKey: string | undefined,
  ): Promise<SubmitResult> {
    const { spec, specHash, verification, workUnits, pricePerUnit, cost } = prepared;
    if (idempotencyKey) {
      const existing = await this.jobs.findByIdempotencyKey(principal.accountId, idempotencyKey);
      if (existing) return { job: this.sameRequest(existing, specHash), created: false };
    }
    const deadlineSeconds = spec.deadlineSeconds ?? this.config.DEFAULT_DEADLINE_SECONDS;
    const id = randomUUID();
    const outcome = await this.submissions.submit({
      id,
      accountId: principal.accountId,
      kind: spec.kind,
      spec,
      specHash,
      workUnits,
      pricePerUnit,
      cost,
      redundancy: verification.k,
      priority: 0,
      deadlineAt: new Date(Date.now() + deadlineSeconds * 1000),
      idempotencyKey: idempotencyKey ?? null,
      verification,
    });
    if (outcome.kind === 'idempotency-key-taken' && idempotencyKey) {
      const existing = await this.jobs.findByIdempotencyKey(principal.accountId, idempotencyKey);
      if (existing) return { job: this.sameRequest(existing, specHash), created: false };
      throw new Error('idempotency key conflict without an existing job');
    }
    if (outcome.kind === 'escrow-unlocking') throw escrowUnlockingError(outcome.unlockAt);
    if (outcome.kind === 'spending-cap-exceeded') {
      throw spendingCapExceededError(outcome.cap, outcome.committed, cost);
    }
    if (outcome.kind !== 'inserted') {
      const available = LedgerAccounts.available(principal.accountId);
      const balance = (await this.ledger.balances([available])).get(available) ?? 0n;
      throw new DomainError(
        'INSUFFICIENT_BALANCE',
        `this job costs ${cost} base units but the available balance is ${balance}`,
        { required: cost.toString(), available: balance.toString() },
      );
    }
    // An input by ref deleted while this job was stored (the deletion checked for jobs before it
    // existed): the job fails at once, its reservation released, instead of failing at its agents.
    const gone = await this.tensors.inputsGone(principal.accountId, spec);
    if (gone.length > 0) {
      const error = {
        code: 'INPUT_DELETED' as const,
        message: `input ${gone.map((t) => `${t.name} (${t.ref})`).join(', ')} was deleted (DELETE /v1/tensors/{ref}) while this job was submitted`,
      };
      const failed = await this.transition({
        jobId: id,
        to: 'FAILED',
        from: ['QUEUED'],
        eventType: 'job.failed',
        eventData: { reason: error.message, ...jobErrorEvent(error) },
        effect: { kind: 'release' },
        patch: { error: storedJobError(error) },
      });
      return { job: failed ?? outcome.job, created: true };
    }
    // Its first dispatch, if it runs in this process, starts from the row just written.
    if (this.config.ROLE !== 'api') this.jobs.rememberInserted(outcome.job);
    try {
      await this.enqueuer.enqueue(id);
    } catch (err) {
      // The job is stored as QUEUED; the maintenance sweep re-enqueues it once Redis answers.
      this.logger.warn({ err, jobId: id }, 'could not enqueue a new job; the requeue sweep will retry');
    }
    this.metrics.jobsSubmitted.inc({ kind: spec.kind });
    return { job: outcome.job, created: true };
  }

  /** Prices a spec and explains where it would run (or why it would not), without submitting it. */
  async dryRun(
    principal: Principal,
    body: unknown,
  ): Promise<DryRunResult & { verification: JobVerification; costBreakdown: CostBreakdown }> {
    const { spec, verification } = await this.parseRequest(principal, body);
    const workUnits = await this.workUnits(principal.accountId, spec);
    const breakdown = this.price(workUnits, BigInt(spec.maxPricePerUnit), verification);
    verification.canaryFee = breakdown.canary.toString();
    const result = await this.dryRuns.explain({
      accountId: principal.accountId,
      spec: { ...spec, redundancy: verification.k },
      workUnits,
      cost: breakdown.total,
      deadlineSeconds: spec.deadlineSeconds ?? this.config.DEFAULT_DEADLINE_SECONDS,
    });
    return { ...result, verification, costBreakdown: breakdown };
  }

  /**
   * Splits a submission into the spec and its verification policy. The stored and offered spec
   * carries no policy (redundancy 1): a provider cannot tell a redundant job from a plain one.
   */
  private async parseRequest(
    principal: Principal,
    body: unknown,
  ): Promise<{ spec: JobSpec; verification: JobVerification }> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new DomainError('VALIDATION_FAILED', 'body: expected a JSON object (the job spec)');
    }
    const { verification: requested, ...specBody } = body as Record<string, unknown>;
    // Inputs by ref ({ name, ref }) become the inline tensors they name: the spec, its hash and the
    // offers agents sign stay what they were.
    if ('inputs' in specBody) {
      specBody.inputs = await this.tensors.resolveInputs(principal.accountId, specBody.inputs);
    }
    const parsed = this.parseSpec(specBody);
    const issues = staticIssues(parsed, { maxResultTensorBytes: this.config.MAX_RESULT_TENSOR_BYTES });
    if (issues.length > 0) {
      throw new DomainError('VALIDATION_FAILED', issues.map((i) => `${i.path}: ${i.message}`).join('; '), {
        errors: issues,
      });
    }

    const rawRedundancy = typeof specBody.redundancy === 'number' ? specBody.redundancy : undefined;
    const { policy, source } = await this.policies.resolve(principal.accountId, requested, rawRedundancy);
    return { spec: { ...parsed, redundancy: 1 }, verification: { ...policy, source, canaryFee: '0' } };
  }

  private price(workUnits: bigint, pricePerUnit: bigint, policy: JobVerification): CostBreakdown {
    const breakdown = costOf(workUnits, pricePerUnit, policy);
    if (breakdown.total > MAX_LEDGER_AMOUNT) {
      throw new DomainError(
        'VALIDATION_FAILED',
        `maxPricePerUnit: ${workUnits} work units × ${pricePerUnit} × redundancy ${policy.k} is over the largest amount the ledger holds (${MAX_LEDGER_AMOUNT})`,
      );
    }
    return breakdown;
  }

  /** Adds the dispatch job; the id is the job id, so adding twice is harmless. */
  enqueue(jobId: string): Promise<void> {
    return this.enqueuer.enqueue(jobId);
  }

  async get(principal: Principal, id: string): Promise<Job> {
    const job = await this.jobs.findById(id);
    if (!job || (job.accountId !== principal.accountId && principal.role !== 'ADMIN')) {
      throw new DomainError('JOB_NOT_FOUND', `job ${id} not found`);
    }
    return job;
  }

  /**
   * What the ledger says a job reserved and charged. A job this request just stored has its
   * reservation and nothing else (written in the same statement), so it needs no read.
   */
  async charges(job: Job, justSubmitted = false): Promise<JobCharges> {
    if (justSubmitted) return chargesOfNewJob(job.cost);
    return (await this.chargesOfMany([job])).get(job.id) ?? NO_CHARGES;
  }

  /** `charges` of many jobs, in one ledger read. */
  async chargesOfMany(jobs: readonly Pick<Job, 'id'>[]): Promise<Map<string, JobCharges>> {
    const ids = jobs.map((j) => j.id);
    return chargesByJob(ids, await this.ledger.jobEntrySums(ids));
  }

  async list(
    principal: Principal,
    query: { state?: string; kind?: string; limit?: number; cursor?: string },
  ): Promise<{ items: Job[]; nextCursor: string | null }> {
    const limit = query.limit ?? 50;
    const before = query.cursor ? decodeCursor(query.cursor) : undefined;
    if (before === null)
      throw new DomainError('VALIDATION_FAILED', 'cursor: is not a cursor this API returned');
    const states = query.state
      ? query.state.split(',').filter((s): s is JobState => (JOB_STATES as readonly string[]).includes(s))
      : undefined;
    const items = await this.jobs.list({
      accountId: principal.role === 'ADMIN' ? undefined : principal.accountId,
      states,
      kind: query.kind,
      before,
      limit: limit + 1,
    });
    const page = items.slice(0, limit);
    const last = page[page.length - 1];
    return { items: page, nextCursor: items.length > limit && last ? encodeCursor(last) : null };
  }

  async cancel(principal: Principal, id: string): Promise<Job> {
    const job = await this.get(principal, id);
    if (isTerminal(job.state)) {
      throw new DomainError(
        'ILLEGAL_TRANSITION',
        `job ${id} is already ${job.state.toLowerCase()}; it cannot be cancelled`,
      );
    }
    const updated = await this.transition({
      jobId: id,
      to: 'CANCELLED',
      eventType: 'job.cancelled',
      eventData: { by: principal.address },
      effect: { kind: 'release' },
    });
    if (!updated) {
      const now = await this.get(principal, id);
      throw new DomainError(
        'ILLEGAL_TRANSITION',
        `job ${id} is ${now.state.toLowerCase()}; it cannot be cancelled`,
      );
    }
    return updated;
  }

  async result(principal: Principal, id: string): Promise<{ job: Job; result: unknown; resultHash: string }> {
    const job = await this.get(principal, id);
    if (job.state !== 'COMPLETED' || job.result === null || !job.resultHash) {
      throw new DomainError(
        'RESULT_NOT_READY',
        `job ${id} is ${job.state.toLowerCase()}; its result exists once it is completed`,
        {
          state: job.state,
        },
      );
    }
    return { job, result: job.result, resultHash: job.resultHash };
  }

  /**
   * One output tensor of a completed job (RESULT_NOT_READY before; NOT_FOUND for an unknown name;
   * OUTPUT_EXPIRED for an output by ref the retention sweep, or its account, deleted).
   */
  async output(principal: Principal, id: string, name: string): Promise<JobOutput> {
    const { job, result } = await this.result(principal, id);
    const outputs = (result as { outputs?: ResultTensor[] } | null)?.outputs ?? [];
    const output = outputs.find((o) => o.name === name);
    if (!output) {
      throw new DomainError(
        'NOT_FOUND',
        `job ${id} has no output named "${name.slice(0, 128)}" (it has ${outputs.map((o) => `"${o.name}"`).join(', ') || 'none'})`,
      );
    }
    if (!isTensorRef(output)) {
      const data = Buffer.from(output.data, 'base64');
      return { name: output.name, dtype: output.dtype, shape: output.shape, bytes: data.byteLength, data };
    }
    // An output by ref: streamed from the tensor store, never held whole.
    const source = await this.tensors.openOutput(output.sha256);
    if (!source) {
      const keep = this.tensors.retentionMs('output');
      throw new DomainError(
        'OUTPUT_EXPIRED',
        `output "${output.name}" (${output.ref}) of job ${id} was deleted: outputs by ref are kept ${
          keep === null ? 'until deleted' : `${keep / 86_400_000} days (OUTPUT_RETENTION_DAYS)`
        } after their job finished or a job last named them as an input, or until deleted with DELETE /v1/tensors/{ref}; the job and its result metadata remain`,
        { ref: output.ref, finishedAt: job.finishedAt?.toISOString() ?? null },
      );
    }
    return {
      name: output.name,
      dtype: output.dtype,
      shape: output.shape,
      bytes: source.bytes,
      data: source.chunks,
      ref: output.ref,
    };
  }

  events(jobId: string, afterId?: bigint): Promise<JobEvent[]> {
    return this.jobs.events(jobId, afterId);
  }

  /** Every state change goes through here: one DB transaction, then a notice for live streams. */
  async transition(req: TransitionRequest): Promise<Job | null> {
    return (await this.transitionWith(req))?.job ?? null;
  }

  /** A transition with what goes with it (notes, an attempt outcome, new offers) in one transaction. */
  async transitionWith(req: TransitionRequest): Promise<TransitionResult | null> {
    const result = await this.jobs.transitionWith(req);
    if (result) {
      for (const step of passThroughs(req)) this.metrics.jobTransitions.inc({ to: step.state });
      this.metrics.jobTransitions.inc({ to: req.to });
      // Not awaited: a notice only wakes live streams (which also poll), and a slow or restarting
      // Redis must not hold up the job's next step.
      void this.bus.publish({ jobId: result.job.id, type: req.eventType, state: result.job.state });
    }
    return result;
  }

  /** Records an event that does not change the job's state, and tells live streams. */
  async note(jobId: string, type: string, data?: Record<string, unknown>): Promise<void> {
    await this.jobs.appendEvent(jobId, type, data);
    void this.bus.publish({ jobId, type });
  }

  private parseSpec(body: unknown): JobSpec {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new DomainError('VALIDATION_FAILED', 'body: expected a JSON object (the job spec)');
    }
    try {
      return parseJobSpec(body);
    } catch (err) {
      if (err instanceof ProtocolValidationError) {
        throw new DomainError('VALIDATION_FAILED', err.message, { errors: err.issues });
      }
      throw err;
    }
  }

  /** The spec's work; its model must be the account's own or public (else ARTIFACT_NOT_FOUND). */
  private async workUnits(accountId: string, spec: JobSpec): Promise<bigint> {
    if (!spec.model) return workUnitsForSpec(spec);
    const artifact = await this.artifacts.usableBy(accountId, spec.model.hash);
    try {
      return workUnitsForSpec(spec, artifact.meta.modelJson);
    } catch (err: unknown) {
      throw new DomainError(
        'VALIDATION_FAILED',
        `model: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  private sameRequest(existing: Job, specHash: string): Job {
    if (existing.specHash !== specHash) {
      throw new DomainError(
        'IDEMPOTENCY_CONFLICT',
        'Idempotency-Key was already used for a different job spec',
        {
          jobId: existing.id,
        },
      );
    }
    return existing;
  }
}

/** The refusal of new spending by an account whose escrow unlock is pending. */
export function escrowUnlockingError(unlockAt: Date): DomainError {
  return new DomainError(
    'ESCROW_UNLOCK_PENDING',
    `this account requested an escrow unlock (withdrawable from ${unlockAt.toISOString()}): no new jobs until it calls cancelUnlock on the JobEscrow contract`,
    { unlockAt: unlockAt.toISOString() },
  );
}
