import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBase64, IsBoolean, IsIn, IsObject, IsOptional, IsString } from 'class-validator';
import { PageQueryDto } from '../../common/page-query.dto.js';
import type { ArtifactCursor, ArtifactView } from '../artifacts.repository.js';
import { decodePageCursor, encodePageCursor } from '../../common/page-cursor.js';

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

  @ApiPropertyOptional({
    description:
      'share the model: any account may then use it in its jobs. A new upload is private unless true; on a model you already uploaded, omitting it keeps your setting',
  })
  @IsOptional()
  @IsBoolean()
  public?: boolean;
}

export class UpdateArtifactDto {
  @ApiProperty({ description: 'share your upload of this model with every account (true) or stop (false)' })
  @IsBoolean()
  public: boolean;
}

export class ListArtifactsQueryDto extends PageQueryDto {}

export class ArtifactDto {
  @ApiProperty({ description: 'sha256 of the canonical model.json bytes followed by the weights' })
  hash: string;
  @ApiProperty({ enum: ['layers', 'graph'] }) format: string;
  @ApiProperty() sizeBytes: number;
  @ApiProperty({ description: 'you uploaded it (else you see it because it is public)' })
  owned: boolean;
  @ApiProperty({ description: 'your upload is shared with every account (always true when not owned)' })
  public: boolean;
  @ApiProperty({ description: 'when you uploaded it (when not owned: when its first public owner did)' })
  createdAt: string;
}

export class ArtifactPageDto {
  @ApiProperty({ type: [ArtifactDto] }) items: ArtifactDto[];
  @ApiProperty({ type: String, nullable: true, description: 'pass as cursor for the next page' })
  nextCursor: string | null;
}

export function mapArtifact(a: ArtifactView): ArtifactDto {
  return {
    hash: a.meta.hash,
    format: a.meta.format,
    sizeBytes: a.meta.sizeBytes,
    owned: a.owned,
    public: a.public,
    createdAt: a.since.toISOString(),
  };
}

export function encodeArtifactCursor(a: ArtifactView): string {
  return encodePageCursor(a.since, a.meta.hash);
}

export function decodeArtifactCursor(cursor: string): ArtifactCursor | null {
  const at = decodePageCursor(cursor, /^[0-9a-f]{64}$/);
  return at && { createdAt: at.createdAt, hash: at.key };
}
