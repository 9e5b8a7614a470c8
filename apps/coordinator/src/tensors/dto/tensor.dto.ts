import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { PageQueryDto } from '../../common/page-query.dto.js';
import type { TensorView } from '../tensors.service.js';

export class UploadedTensorDto {
  @ApiProperty({
    description: 'sha256 of the element bytes (little-endian, C order): use it as a job input { name, ref }',
    example: 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
  })
  ref: string;
  @ApiProperty({ enum: ['float32', 'int32', 'bool'] }) dtype: string;
  @ApiProperty({ type: [Number], example: [1024, 1024] }) shape: number[];
  @ApiProperty({ description: 'bytes of element data' }) bytes: number;
  @ApiProperty({ description: 'when you first uploaded it (or its job gave it to you)' }) createdAt: string;
  @ApiProperty({
    type: String,
    nullable: true,
    description:
      'when the retention sweep may delete it: TENSOR_RETENTION_DAYS (an upload) or OUTPUT_RETENTION_DAYS (an output) after it was last uploaded, produced or named as a job input; never while a job that has not finished names it. null: kept until you delete it',
  })
  expiresAt: string | null;
  @ApiProperty({
    type: String,
    format: 'uuid',
    nullable: true,
    description: 'the job whose output by ref this is; null for an upload',
  })
  jobId: string | null;
}

export class TensorPageDto {
  @ApiProperty({ type: [UploadedTensorDto] }) items: UploadedTensorDto[];
  @ApiPropertyOptional({ nullable: true, type: String, description: 'pass as ?cursor= for the next page' })
  nextCursor: string | null;
}

export class DeletedTensorDto {
  @ApiProperty({ example: 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' })
  ref: string;
  @ApiProperty({ description: 'always true', example: true }) deleted: boolean;
}

/** `limit` and `cursor` of `GET /v1/tensors`. */
export class ListTensorsQueryDto extends PageQueryDto {}

export function mapUploadedTensor(t: TensorView): UploadedTensorDto {
  return {
    ref: t.ref,
    dtype: t.dtype,
    shape: [...t.shape],
    bytes: t.bytes,
    createdAt: t.createdAt.toISOString(),
    expiresAt: t.expiresAt?.toISOString() ?? null,
    jobId: t.jobId,
  };
}
