import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { Type } from 'class-transformer';
import type { Job, JobEvent } from '#prisma';
import { JOB_STATES } from '../job-state.js';
import { JOB_ERROR_CODES, jobErrorOf } from '../job-error.js';
import { jobVerification, verificationOutcome } from '../../pricing/policy.js';

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

export class JobErrorDto {
  @ApiProperty({
    enum: JOB_ERROR_CODES,
    description:
      'INPUT_REJECTED: providers of two distinct operators could not run the job (its dtype, shapes, model); UNPLACEABLE: no provider could take it for the grace period; DEADLINE_PASSED; WRONG_RESULT (known-answer jobs); FAILED (older jobs)',
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
  @ApiProperty({ description: 'base units reserved from the balance for this job', example: '21470' })
  cost: string;
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

export function mapJob(job: Job): JobDto {
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    workUnits: job.workUnits.toString(),
    pricePerUnit: job.pricePerUnit.toString(),
    cost: job.cost.toString(),
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

export class JobDetailDto extends JobDto {
  @ApiProperty({ description: 'the submitted job spec', type: 'object', additionalProperties: true })
  spec: unknown;
}

export function mapJobDetail(job: Job): JobDetailDto {
  return { ...mapJob(job), spec: job.spec };
}

export class JobPageDto {
  @ApiProperty({ type: [JobDto] }) items: JobDto[];
  @ApiPropertyOptional({ nullable: true, type: String, description: 'pass as ?cursor= for the next page' })
  nextCursor: string | null;
}

export class ListJobsQueryDto {
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

  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;

  @ApiPropertyOptional({ description: 'opaque cursor from a previous page' })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,200}$/, { message: 'cursor is not a cursor this API returned' })
  cursor?: string;
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

export class JobResultDto {
  @ApiProperty({ format: 'uuid' }) jobId: string;
  @ApiProperty() resultHash: string;
  @ApiProperty({
    description: 'named output tensors (dtype, shape, base64 data)',
    type: 'object',
    additionalProperties: true,
  })
  result: unknown;
}

export function encodeCursor(job: Pick<Job, 'createdAt' | 'id'>): string {
  return Buffer.from(`${job.createdAt.toISOString()}|${job.id}`).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } | null {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (!id || Number.isNaN(createdAt.getTime()) || !/^[0-9a-f-]{36}$/.test(id)) return null;
  return { createdAt, id };
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
