import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/domain-error.js';
import { mapEvidence, type EvidenceDto } from './evidence.dto.js';
import { SlashRepository } from './slash.repository.js';

const HASH_RE = /^0x[0-9a-fA-F]{64}$/;

/** Public evidence: the bundle behind a slash's on-chain evidence hash, for anyone to re-check. */
@Injectable()
export class EvidenceService {
  constructor(private readonly slashes: SlashRepository) {}

  async byHash(hash: string): Promise<EvidenceDto> {
    if (!HASH_RE.test(hash)) {
      throw new DomainError('VALIDATION_FAILED', 'hash: expected 0x and 64 hex digits (a keccak256)');
    }
    const found = await this.slashes.evidenceByHash(hash.toLowerCase());
    if (!found) throw new DomainError('NOT_FOUND', `no evidence bundle has hash ${hash}`);
    return mapEvidence(found.evidence, found.slash);
  }
}
