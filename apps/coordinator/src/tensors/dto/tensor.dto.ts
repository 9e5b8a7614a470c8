import { ApiProperty } from '@nestjs/swagger';
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
  @ApiProperty({ description: 'when you last uploaded it' }) createdAt: string;
}

export function mapUploadedTensor(t: TensorView): UploadedTensorDto {
  return {
    ref: t.ref,
    dtype: t.dtype,
    shape: [...t.shape],
    bytes: t.bytes,
    createdAt: t.createdAt.toISOString(),
  };
}
