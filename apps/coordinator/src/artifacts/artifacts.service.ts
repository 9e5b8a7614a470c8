import { Inject, Injectable } from '@nestjs/common';
import type { ModelArtifact } from '@gpumesh/p2p';
import { MODEL_FORMATS, type ModelFormat } from '@gpumesh/protocol';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { DomainError } from '../common/domain-error.js';
import type { Principal } from '../auth/principal.js';
import { ArtifactsRepository, type ArtifactView } from './artifacts.repository.js';
import { artifactHash, validateModelArtifact } from './model-artifact.js';
import { decodeArtifactCursor, encodeArtifactCursor, type UploadArtifactDto } from './dto/artifact.dto.js';
import { OfferedArtifacts } from './offered-artifacts.js';

const HASH_PATTERN = /^[0-9a-f]{64}$/;
/** Artifacts per listing page when the caller does not say. */
const DEFAULT_PAGE_SIZE = 50;

function checkHash(hash: string, field = 'hash'): void {
  if (!HASH_PATTERN.test(hash))
    throw new DomainError('VALIDATION_FAILED', `${field}: must be 64 lower-case hex characters`);
}

function notFound(hash: string, field?: string): DomainError {
  return new DomainError(
    'ARTIFACT_NOT_FOUND',
    `${field ? `${field}: ` : ''}no artifact ${hash} of yours or public; upload it with POST /v1/artifacts first`,
  );
}

function isModelFormat(format: string): format is ModelFormat {
  return (MODEL_FORMATS as readonly string[]).includes(format);
}

/**
 * Model artifacts and who may use them. An artifact belongs to the accounts that uploaded its bytes
 * and is private unless an owner makes it public: REST reads and job submissions see only the
 * caller's own or public artifacts (anything else is ARTIFACT_NOT_FOUND, as if it did not exist).
 * Over p2p a provider gets a model only while it holds an open offer of a job that uses it.
 */
@Injectable()
export class ArtifactsService {
  private readonly offered = new OfferedArtifacts();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly artifacts: ArtifactsRepository,
  ) {}

  async upload(
    principal: Principal,
    dto: UploadArtifactDto,
  ): Promise<{ artifact: ArtifactView; created: boolean }> {
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
    const { created } = await this.artifacts.insertOwned({
      hash,
      format: dto.format,
      modelJson: dto.modelJson,
      weights,
      accountId: principal.accountId,
      isPublic: dto.public,
    });
    const artifact = await this.artifacts.findVisible(hash, principal.accountId);
    if (!artifact) throw new Error(`artifact ${hash} vanished after insert`);
    return { artifact, created };
  }

  /** An artifact the caller owns or that is public (admins see any artifact). */
  async get(principal: Principal, hash: string): Promise<ArtifactView> {
    checkHash(hash);
    const artifact = await this.artifacts.findVisible(hash, principal.accountId);
    if (artifact) return artifact;
    if (principal.role === 'ADMIN') {
      const meta = await this.artifacts.findMeta(hash);
      if (meta) return { meta, owned: false, public: false, since: meta.createdAt };
    }
    throw notFound(hash);
  }

  /** The caller's own artifacts, newest upload first, with cursor pagination. */
  async list(
    principal: Principal,
    query: { limit?: number; cursor?: string },
  ): Promise<{ items: ArtifactView[]; nextCursor: string | null }> {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const before = query.cursor ? decodeArtifactCursor(query.cursor) : undefined;
    if (before === null)
      throw new DomainError('VALIDATION_FAILED', 'cursor: is not a cursor this API returned');
    const items = await this.artifacts.listOwned(principal.accountId, { limit: limit + 1, before });
    const page = items.slice(0, limit);
    const last = page[page.length - 1];
    return { items: page, nextCursor: items.length > limit && last ? encodeArtifactCursor(last) : null };
  }

  /** Makes the caller's upload of `hash` public or private again; only its owners may. */
  async setPublic(principal: Principal, hash: string, isPublic: boolean): Promise<ArtifactView> {
    checkHash(hash);
    if (!(await this.artifacts.setPublic(hash, principal.accountId, isPublic))) {
      if (await this.artifacts.findVisible(hash, principal.accountId)) {
        throw new DomainError(
          'FORBIDDEN',
          `artifact ${hash} is public but not yours: only the accounts that uploaded it can change whether they share it`,
        );
      }
      throw notFound(hash);
    }
    const artifact = await this.artifacts.findVisible(hash, principal.accountId);
    if (!artifact) throw notFound(hash);
    return artifact;
  }

  /**
   * The model of a job submitted by `accountId`: its own or a public one, else ARTIFACT_NOT_FOUND
   * (the same answer for someone else's private model as for a missing one).
   */
  async usableBy(accountId: string, hash: string, field = 'model.hash'): Promise<ArtifactView> {
    checkHash(hash, field);
    const artifact = await this.artifacts.findVisible(hash, accountId);
    if (!artifact) throw notFound(hash, field);
    return artifact;
  }

  /**
   * Records that this worker offered `peerId` a job whose model is `hash`; until the returned
   * function is called (when the offer settles) the peer may fetch that model over p2p.
   */
  openOffer(peerId: string, hash: string | undefined): () => void {
    return hash === undefined ? () => undefined : this.offered.grant(peerId, hash);
  }

  /**
   * Whether `peerId` may fetch `hash` over p2p now: it holds an open offer of a job that uses it and
   * has fetches left (`ARTIFACT_FETCHES_PER_OFFER` each); a yes uses one.
   */
  mayFetch(peerId: string, hash: string): boolean {
    return this.offered.take(peerId, hash);
  }

  /** The whole artifact for the artifact protocol (call `mayFetch` first), or undefined. */
  async content(hash: string): Promise<ModelArtifact | undefined> {
    const artifact = await this.artifacts.findWhole(hash);
    if (!artifact) return undefined;
    if (!isModelFormat(artifact.format))
      throw new Error(`artifact ${hash} has an unknown format ${artifact.format}`);
    return { format: artifact.format, modelJson: artifact.modelJson, weights: artifact.weights };
  }
}
