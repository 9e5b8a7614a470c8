import { ApiProperty } from '@nestjs/swagger';
import { IsBase64, IsIn, IsObject, IsString } from 'class-validator';
import type { ArtifactMeta } from '../artifacts.repository.js';

export class UploadArtifactDto {
  @ApiProperty({ enum: ['layers', 'graph'], description: 'tfjs LayersModel or GraphModel' })
  @IsIn(['layers', 'graph'])
  format: 'layers' | 'graph';

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'the model.json of a tfjs model (modelTopology + weightsManifest)',
  })
  @IsObject()
  modelJson: Record<string, unknown>;

  @ApiProperty({ description: 'every weight file of the manifest, concatenated in manifest order, base64' })
  @IsString()
  @IsBase64()
  weights: string;
}

export class ArtifactDto {
  @ApiProperty({ description: 'sha256 of the canonical model.json bytes followed by the weights' })
  hash: string;
  @ApiProperty({ enum: ['layers', 'graph'] }) format: string;
  @ApiProperty() sizeBytes: number;
  @ApiProperty() createdAt: string;
}

export function mapArtifact(a: ArtifactMeta): ArtifactDto {
  return { hash: a.hash, format: a.format, sizeBytes: a.sizeBytes, createdAt: a.createdAt.toISOString() };
}
