import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { DomainError } from '../common/domain-error.js';
import type { Principal } from '../auth/principal.js';
import { ArtifactsRepository, type ArtifactMeta } from './artifacts.repository.js';
import { artifactHash, validateModelArtifact } from './model-artifact.js';
import type { UploadArtifactDto } from './dto/artifact.dto.js';

@Injectable()
export class ArtifactsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly artifacts: ArtifactsRepository,
  ) {}

  async upload(
    principal: Principal,
    dto: UploadArtifactDto,
  ): Promise<{ artifact: ArtifactMeta; created: boolean }> {
    const weights = Buffer.from(dto.weights, 'base64');
    if (weights.byteLength > this.config.MAX_ARTIFACT_BYTES) {
      throw new DomainError(
        'PAYLOAD_TOO_LARGE',
        `weights: ${weights.byteLength} bytes is over the ${this.config.MAX_ARTIFACT_BYTES}-byte limit`,
      );
    }
    const problems = validateModelArtifact(dto.format, dto.modelJson, weights.byteLength);
    if (problems.length > 0)
      throw new DomainError('VALIDATION_FAILED', problems.join('; '), { errors: problems });
    const hash = artifactHash(dto.modelJson, weights);
    const { created } = await this.artifacts.insertIfAbsent({
      hash,
      format: dto.format,
      modelJson: dto.modelJson,
      weights,
      accountId: principal.accountId,
    });
    const artifact = await this.artifacts.findMeta(hash);
    if (!artifact) throw new Error(`artifact ${hash} vanished after insert`);
    return { artifact, created };
  }

  async get(hash: string): Promise<ArtifactMeta> {
    if (!/^[0-9a-f]{64}$/.test(hash))
      throw new DomainError('VALIDATION_FAILED', 'hash: must be 64 lower-case hex characters');
    const artifact = await this.artifacts.findMeta(hash);
    if (!artifact) throw new DomainError('ARTIFACT_NOT_FOUND', `artifact ${hash} not found`);
    return artifact;
  }
}
