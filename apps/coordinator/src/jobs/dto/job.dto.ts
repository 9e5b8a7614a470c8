import { ApiExtraModels, ApiProperty, ApiPropertyOptional, getSchemaPath } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Matches } from 'class-validator';
import type { Job, JobEvent } from '#prisma';
import {
  BACKENDS,
  base64DecodedLength,
  isTensorRef,
  refTensorByteLength,
  type JobInput,
} from '@gpumesh/protocol';
import { PageQueryDto } from '../../common/page-query.dto.js';
import { JOB_STATES } from '../job-state.js';
import { JOB_ERROR_CODES, jobErrorOf } from '../job-error.js';
import { jobVerification, verificationOutcome } from '../../pricing/policy.js';
import type { JobCharges } from '../../ledger/job-charges.js';
import { decodePageCursor, encodePageCursor } from '../../common/page-cursor.js';

export class JobCostDto {
  @ApiProperty({ description: 'workUnits × pricePerUnit: one provider running it', example: '21470' })
  work: string;
  @ApiProperty({ description: '(k − 1) × work: the redundant runs', example: '21470' }) redundancy: string;
  @ApiProperty({
    description:
      'what the known-answer canaries for this job cost; paid from the platform fee, not added to total',
    example: '2147',
  })
  canary: string;
  @ApiProperty({
    description:
      'a check run on another operator, reserved when a single-copy job asks for verified (returned when the coordinator recomputed it instead)',
    example: '0',
  })
  check: string;
  @ApiProperty({ description: 'what is reserved: work + redundancy + check', example: '42940' })
  total: string;
}

export class JobVerificationDto {
  @ApiProperty({ enum: ['none', 'redundant'] }) mode: string;
  @ApiProperty({ minimum: 1, maximum: 3, description: 'distinct operators the job runs on' }) k: number;
  @ApiProperty({ description: 'share of dispatches followed by a known-answer canary' }) canaryRate: number;
  @ApiProperty({ enum: ['request', 'spec', 'account', 'platform'] }) source: string;
  @ApiProperty({ type: JobCostDto, description: 'what verification adds to the cost' }) cost: JobCostDto;
  @ApiProperty({ description: 'the job completes only after a check of its result passed' })
  required: boolean;
  @ApiPropertyOptional({
    nullable: true,
    enum: ['redundant', 'reference', 'spot-check', 'none'],
    description:
      'how the delivered result was verified (null until completed): redundant (another operator agreed), reference (the coordinator recomputed it), spot-check (a trusted provider, sampled by canaries), none',
  })
  method: string | null;
  @ApiProperty({ description: 'a check of this very result passed before it was delivered' })
  verified: boolean;
  @ApiProperty({
    description: 'a later check found the delivered result wrong and replaced it (job.corrected)',
  })
  corrected: boolean;
}

export class JobChargesDto {
  @ApiProperty({
    description: 'base units paid to the provider of the first run (its price × work units, less the fee)',
    example: '31',
  })
  work: string;
  @ApiProperty({
    description: 'base units paid to the providers of every further run: redundant copies and tie-breaks',
    example: '0',
  })
  redundancy: string;
  @ApiProperty({
    description:
      'base units you paid for canaries: always 0, the platform pays its canary jobs (verification.cost.canary is what they cost it)',
    example: '0',
  })
  canary: string;
  @ApiProperty({ description: "the platform fee, taken out of the providers' payments", example: '3' })
  fee: string;
}

export class JobErrorDto {
  @ApiProperty({
    enum: JOB_ERROR_CODES,
    description:
      'INPUT_REJECTED: providers of two distinct operators could not run the job (its dtype, shapes, model); UNPLACEABLE: no provider could take it for the grace period; DEADLINE_PASSED; INPUT_DELETED: an input by ref was deleted while the job was submitted; WRONG_RESULT (known-answer jobs); FAILED (older jobs)',
  })
  code: string;
  @ApiProperty({
    description: 'why, with the providers’ own error or the placement explanation',
    example: 'providers of 2 distinct operators could not run this job: BAD_INPUT: matmul shape mismatch',
  })
  message: string;
}

export class JobDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: ['matmul', 'inference', 'train'] }) kind: string;
  @ApiProperty({ enum: JOB_STATES }) state: string;
  @ApiProperty({ description: 'work units (1 unit = 1 MFLOP) computed from the spec', example: '2147' })
  workUnits: string;
  @ApiProperty({ description: 'the maximum price per work unit, in base units', example: '10' })
  pricePerUnit: string;
  @ApiProperty({
    deprecated: true,
    description: 'deprecated: the same figure as `reserved` (what was reserved, not what was charged)',
    example: '21470',
  })
  cost: string;
  @ApiProperty({
    description:
      'base units reserved from your balance at submission: work units × maxPricePerUnit × k (+ a check run); what is not charged returns to your balance when the job ends',
    example: '21470',
  })
  reserved: string;
  @ApiProperty({
    description:
      'base units charged for this job so far, read from the ledger: 0 until it completes, then what the providers were paid at their own price (fee included), less any refund; work + redundancy + canary + fee',
    example: '34',
  })
  charged: string;
  @ApiProperty({ type: JobChargesDto, description: 'what `charged` is made of' })
  chargedBreakdown: JobChargesDto;
  @ApiProperty({ minimum: 1, maximum: 3 }) redundancy: number;
  @ApiProperty({ type: JobVerificationDto }) verification: JobVerificationDto;
  @ApiProperty() deadlineAt: string;
  @ApiProperty() createdAt: string;
  @ApiProperty() updatedAt: string;
  @ApiPropertyOptional({ nullable: true, type: String }) finishedAt: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: JobErrorDto,
    description: 'why the job ended: always set on FAILED and EXPIRED, null otherwise',
  })
  error: JobErrorDto | null;
  @ApiPropertyOptional({ nullable: true, type: String }) resultHash: string | null;
}

/** A job as the API shows it, with what the ledger says it reserved and charged. */
export function mapJob(job: Job, charges: JobCharges): JobDto {
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    workUnits: job.workUnits.toString(),
    pricePerUnit: job.pricePerUnit.toString(),
    cost: job.cost.toString(),
    reserved: charges.reserved.toString(),
    charged: charges.charged.toString(),
    chargedBreakdown: {
      work: charges.work.toString(),
      redundancy: charges.redundancy.toString(),
      canary: charges.canary.toString(),
      fee: charges.fee.toString(),
    },
    redundancy: job.redundancy,
    verification: mapVerification(job),
    deadlineAt: job.deadlineAt.toISOString(),
    createdAt: job.createdAt.toISOString(),
    updatedAt: job.updatedAt.toISOString(),
    finishedAt: job.finishedAt?.toISOString() ?? null,
    error: jobErrorOf(job.state, job.error),
    resultHash: job.resultHash,
  };
}

function mapVerification(job: Job): JobVerificationDto {
  const v = jobVerification(job);
  const outcome = verificationOutcome(job);
  const work = job.workUnits * job.pricePerUnit;
  const redundancy = work * BigInt(v.k - 1);
  return {
    mode: v.mode,
    k: v.k,
    canaryRate: v.canaryRate,
    source: v.source,
    cost: {
      work: work.toString(),
      redundancy: redundancy.toString(),
      canary: v.canaryFee,
      check: (job.cost - work - redundancy > 0n ? job.cost - work - redundancy : 0n).toString(),
      total: job.cost.toString(),
    },
    required: v.verified === true,
    method: outcome?.method ?? null,
    verified: outcome?.verified ?? false,
    corrected: outcome?.corrected ?? false,
  };
}

/** A job input as `GET /v1/jobs/:id` shows it: what it is, not its data. */
export interface JobInputSummary {
  name: string;
  dtype: string;
  shape: number[];
  bytes: number;
  /** `sha256:<hex>` when the input is by ref (an uploaded tensor or an earlier job's output by ref, GET /v1/tensors/:ref). */
  ref?: string;
}

export class JobDetailDto extends JobDto {
  @ApiProperty({
    description:
      'the submitted job spec, its inputs as metadata only (name, dtype, shape, bytes, and ref for an input by ref): no tensor data',
    type: 'object',
    additionalProperties: true,
    required: ['kind', 'inputs'],
    properties: {
      kind: { type: 'string', enum: ['matmul', 'inference', 'train'] },
      inputs: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'dtype', 'shape', 'bytes'],
          additionalProperties: false,
          properties: {
            name: { type: 'string' },
            dtype: { type: 'string', enum: ['float32', 'int32', 'bool'] },
            shape: { type: 'array', items: { type: 'integer' } },
            bytes: { type: 'integer', description: 'bytes of element data' },
            ref: {
              type: 'string',
              pattern: '^sha256:[0-9a-f]{64}$',
              description:
                'the tensor an input by ref names: uploaded, or an output by ref of an earlier job of the account (absent for inline inputs)',
            },
          },
        },
      },
    },
  })
  spec: Record<string, unknown> & { inputs: JobInputSummary[] };
}

/** A stored job spec with each input's data replaced by its size. */
export function summarizeSpec(spec: unknown): Record<string, unknown> & { inputs: JobInputSummary[] } {
  const { inputs, ...rest } = spec as { inputs?: JobInput[] } & Record<string, unknown>;
  return {
    ...rest,
    inputs: (inputs ?? []).map((t) =>
      isTensorRef(t)
        ? {
            name: t.name,
            dtype: t.dtype,
            shape: [...t.shape],
            bytes: refTensorByteLength(t.dtype, t.shape),
            ref: t.ref,
          }
        : { name: t.name, dtype: t.dtype, shape: [...t.shape], bytes: base64DecodedLength(t.data) },
    ),
  };
}

export function mapJobDetail(job: Job, charges: JobCharges): JobDetailDto {
  return { ...mapJob(job, charges), spec: summarizeSpec(job.spec) };
}

export class JobPageDto {
  @ApiProperty({ type: [JobDto] }) items: JobDto[];
  @ApiPropertyOptional({ nullable: true, type: String, description: 'pass as ?cursor= for the next page' })
  nextCursor: string | null;
}

export class ListJobsQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ description: 'comma-separated states', example: 'QUEUED,RUNNING' })
  @IsOptional()
  @IsString()
  @Matches(new RegExp(`^(${JOB_STATES.join('|')})(,(${JOB_STATES.join('|')}))*$`), {
    message: `state must be a comma-separated list of ${JOB_STATES.join(', ')}`,
  })
  state?: string;

  @ApiPropertyOptional({ enum: ['matmul', 'inference', 'train'] })
  @IsOptional()
  @IsIn(['matmul', 'inference', 'train'])
  kind?: string;
}

export class JobEventDto {
  @ApiProperty() id: string;
  @ApiProperty() type: string;
  @ApiPropertyOptional({ nullable: true, type: String }) fromState: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) toState: string | null;
  @ApiPropertyOptional({ nullable: true, type: 'object', additionalProperties: true }) data: unknown;
  @ApiProperty() createdAt: string;
}

export function mapJobEvent(event: JobEvent): JobEventDto {
  return {
    id: event.id.toString(),
    type: event.type,
    fromState: event.fromState,
    toState: event.toState,
    data: event.data,
    createdAt: event.createdAt.toISOString(),
  };
}

export class TensorDto {
  @ApiProperty({ example: 'c' }) name: string;
  @ApiProperty({ enum: ['float32', 'int32', 'bool'] }) dtype: string;
  @ApiProperty({ type: [Number], example: [2, 2] }) shape: number[];
  @ApiProperty({ description: 'the values, little-endian, base64', example: 'AACAPwAAAEAAAEBAAACAQA==' })
  data: string;
}

/**
 * An output too large to travel inline (over the provider's inline threshold, 1 MiB by default): the
 * provider uploaded its bytes to the coordinator, which keeps them by hash. `GET
 * /v1/jobs/{id}/outputs/{name}` streams it as .npy.
 */
export class OutputRefDto {
  @ApiProperty({ example: 'c' }) name: string;
  @ApiProperty({
    pattern: '^sha256:[0-9a-f]{64}$',
    description: '`sha256:` and the SHA-256 of the element bytes',
  })
  ref: string;
  @ApiProperty({ enum: ['float32', 'int32', 'bool'] }) dtype: string;
  @ApiProperty({ type: [Number], example: [4096, 4096] }) shape: number[];
  @ApiProperty({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the little-endian element bytes' })
  sha256: string;
}

export class ResultVerificationDto {
  @ApiPropertyOptional({ enum: ['redundant', 'reference', 'spot-check', 'none'] }) method?: string;
  @ApiPropertyOptional({ description: 'a check of this result passed before it was delivered' })
  verified?: boolean;
  @ApiPropertyOptional({ description: 'the provider of another operator whose run agreed (redundant check)' })
  checkedBy?: string;
  @ApiPropertyOptional({
    enum: ['probation', 'trusted'],
    description: 'the tier of the provider whose result was delivered, when it was checked',
  })
  tier?: string;
  @ApiPropertyOptional({ description: 'a later check found the delivered result wrong and replaced it' })
  corrected?: boolean;
}

@ApiExtraModels(TensorDto, OutputRefDto)
export class JobOutputsDto {
  @ApiProperty({
    type: 'array',
    items: { oneOf: [{ $ref: getSchemaPath(TensorDto) }, { $ref: getSchemaPath(OutputRefDto) }] },
    description:
      'the output tensors, in the order the job names them: inline (base64 `data`), or by ref when large (fetch them with GET /v1/jobs/{id}/outputs/{name})',
  })
  outputs: (TensorDto | OutputRefDto)[];
  @ApiPropertyOptional({ type: ResultVerificationDto, description: 'how the result was verified' })
  verification?: ResultVerificationDto;
}

export class JobResultDto {
  @ApiProperty({ format: 'uuid' }) jobId: string;
  @ApiProperty({ description: 'the hash of the outputs, as the providers signed it' }) resultHash: string;
  @ApiProperty({ type: JobOutputsDto }) result: unknown;
}

export function encodeCursor(job: Pick<Job, 'createdAt' | 'id'>): string {
  return encodePageCursor(job.createdAt, job.id);
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } | null {
  const at = decodePageCursor(cursor, /^[0-9a-f-]{36}$/);
  return at && { createdAt: at.createdAt, id: at.key };
}

export class BatchItemErrorDto {
  @ApiProperty({ example: 'INSUFFICIENT_BALANCE' }) code: string;
  @ApiProperty() message: string;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true }) details?: Record<string, unknown>;
}

export class BatchItemDto {
  @ApiProperty({ description: 'position of this job in the request' }) index: number;
  @ApiPropertyOptional({ type: JobDto, description: 'the stored job (absent when refused)' }) job?: JobDto;
  @ApiPropertyOptional({ description: 'false: an earlier submission with the same Idempotency-Key' })
  created?: boolean;
  @ApiPropertyOptional({ type: BatchItemErrorDto, description: 'why this job was refused' })
  error?: BatchItemErrorDto;
}

export class BatchSubmitResponseDto {
  @ApiProperty({ type: [BatchItemDto] }) items: BatchItemDto[];
  @ApiProperty({ description: 'jobs stored by this request' }) created: number;
  @ApiProperty({ description: 'jobs refused (see their error)' }) refused: number;
}

// ---------- dry run (POST /v1/jobs/dry-run; bigints as decimal strings) ----------

const EXCLUSION_REASON_NAMES = [
  'banned',
  'draining',
  'expired',
  'backend',
  'gpu-model',
  'vram',
  'price',
  'speed',
  'capacity',
  'excluded',
  'stake',
];

const integer = { type: 'integer' } as const;
const reasonCounts = {
  type: 'object' as const,
  properties: Object.fromEntries(EXCLUSION_REASON_NAMES.map((r) => [r, integer])),
  additionalProperties: integer,
};

export class DryRunCandidateDto {
  @ApiProperty() peerId: string;
  @ApiProperty() operatorId: string;
  @ApiProperty({ description: 'placement score (higher is better)' }) score: number;
}

export class DryRunSuggestionDto {
  @ApiProperty({
    enum: [
      'wait-for-capacity',
      'raise-max-price',
      'lower-min-vram',
      'extend-deadline',
      'reduce-redundancy',
      'allow-backend',
      'allow-gpu-model',
      'add-stake',
    ],
  })
  kind: string;
  @ApiProperty({ description: 'distinct eligible operators after the change' }) operatorsAfter: number;
  @ApiProperty({ description: 'size of the change relative to the job (0 = free)' }) relativeCost: number;
  @ApiProperty() message: string;
  @ApiPropertyOptional() providersBusy?: number;
  @ApiPropertyOptional({ description: 'base units per work unit' }) maxPricePerUnit?: string;
  @ApiPropertyOptional() minVramMiB?: number;
  @ApiPropertyOptional() extendBySeconds?: number;
  @ApiPropertyOptional({ description: 'milliseconds since the epoch' }) deadlineAt?: number;
  @ApiPropertyOptional() redundancy?: number;
  @ApiPropertyOptional({ enum: BACKENDS }) backend?: string;
  @ApiPropertyOptional() gpuModel?: string;
  @ApiPropertyOptional({ description: 'base units each of peerIds must add' }) additionalStake?: string;
  @ApiPropertyOptional({ type: [String] }) peerIds?: string[];
}

export class DryRunExplanationDto {
  @ApiProperty() jobId: string;
  @ApiProperty() placeable: boolean;
  @ApiProperty({ description: 'providers considered' }) providers: number;
  @ApiProperty() eligible: number;
  @ApiProperty() eligibleOperators: number;
  @ApiProperty({ description: 'distinct operators needed' }) needed: number;
  @ApiProperty() deadlinePassed: boolean;
  @ApiProperty({ ...reasonCounts, description: 'providers failing each reason' })
  excluded: Record<string, number>;
  @ApiProperty({ ...reasonCounts, description: 'providers failing this reason and nothing else' })
  excludedOnlyBy: Record<string, number>;
  @ApiProperty({ type: [DryRunSuggestionDto], description: 'feasible single changes, cheapest first' })
  suggestions: DryRunSuggestionDto[];
  @ApiPropertyOptional({ type: DryRunSuggestionDto }) cheapest?: DryRunSuggestionDto;
  @ApiProperty() message: string;
}

export class DryRunVerificationDto {
  @ApiProperty({ enum: ['none', 'redundant'] }) mode: string;
  @ApiProperty({ minimum: 1, maximum: 3 }) k: number;
  @ApiProperty() canaryRate: number;
  @ApiPropertyOptional() verified?: boolean;
  @ApiProperty({ enum: ['request', 'spec', 'account', 'platform'] }) source: string;
  @ApiProperty({ description: 'base units of the platform fee that fund its canaries' }) canaryFee: string;
}

export class DryRunCostDto {
  @ApiProperty() work: string;
  @ApiProperty() redundancy: string;
  @ApiProperty() canary: string;
  @ApiProperty() check: string;
  @ApiProperty({ description: 'what a submission would reserve' }) total: string;
}

export class DryRunFundsDto {
  @ApiProperty({ description: 'base units a submission would reserve', example: '21470' })
  required: string;
  @ApiProperty({ description: 'your available balance, in base units', example: '50000000' })
  available: string;
  @ApiProperty({ description: 'the available balance covers the reservation' }) sufficient: boolean;
}

export class DryRunDto {
  @ApiProperty({ example: '2147' }) workUnits: string;
  @ApiProperty({ description: 'base units a submission would reserve', example: '21470' }) cost: string;
  @ApiProperty({
    description: 'providers would take it now and your balance covers it: a submission would be placed',
  })
  placeable: boolean;
  @ApiProperty({ type: DryRunFundsDto }) funds: DryRunFundsDto;
  @ApiProperty({
    type: [String],
    description:
      'why it is not placeable (empty when it is): the placement explanation, INSUFFICIENT_BALANCE: …',
  })
  reasons: string[];
  @ApiProperty({ type: [DryRunCandidateDto], description: 'where it would run, best first' })
  candidates: DryRunCandidateDto[];
  @ApiProperty({ type: DryRunExplanationDto }) explanation: DryRunExplanationDto;
  @ApiProperty({ type: DryRunVerificationDto }) verification: DryRunVerificationDto;
  @ApiProperty({ type: DryRunCostDto }) costBreakdown: DryRunCostDto;
}
