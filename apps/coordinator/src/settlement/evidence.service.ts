import { Injectable } from '@nestjs/common';
import type { Evidence } from '#prisma';
import { canonicalEvidence, EvidenceBundleSchema, redactEvidence, withheldFrom } from '@gpumesh/verification';
import type { Principal } from '../auth/principal.js';
import { DomainError } from '../common/domain-error.js';
import { PrismaService } from '../database/prisma.service.js';
import { mapEvidence, type EvidenceDto } from './evidence.dto.js';
import { SlashRepository } from './slash.repository.js';

const HASH_RE = /^0x[0-9a-fA-F]{64}$/;

/**
 * Evidence: the bundle behind a slash's on-chain evidence hash. Anyone can check its integrity (the
 * redacted form); the job's owner, the accused provider's operator and admins get the full bundle,
 * with the job's inputs, outputs and model weights, to recompute it.
 */
@Injectable()
export class EvidenceService {
  constructor(
    private readonly slashes: SlashRepository,
    private readonly prisma: PrismaService,
  ) {}

  async byHash(hash: string, principal?: Principal): Promise<EvidenceDto> {
    if (!HASH_RE.test(hash)) {
      throw new DomainError('VALIDATION_FAILED', 'hash: expected 0x and 64 hex digits (a keccak256)');
    }
    const found = await this.slashes.evidenceByHash(hash.toLowerCase());
    if (!found) throw new DomainError('NOT_FOUND', `no evidence bundle has hash ${hash}`);
    const { evidence, slash } = found;
    const operatorAddress = slash?.operatorAddress ?? accusedOperator(evidence);
    if (principal && (await this.entitled(principal, evidence, operatorAddress))) {
      return mapEvidence(evidence, slash, { access: 'full', bundle: evidence.bundle, withheld: [] });
    }
    const parsed = EvidenceBundleSchema.safeParse(parseJson(evidence.bundle));
    if (!parsed.success) {
      // A bundle from before redaction existed (version 1) hashes its bytes whole: it cannot be shown
      // in part, and it may carry a developer's private data.
      throw new DomainError(
        'FORBIDDEN',
        `evidence ${hash} is a legacy bundle that cannot be redacted: only the job's owner, the accused operator and admins may read it`,
      );
    }
    const bundle = parsed.data;
    const committed = (bundle.artifacts ?? []).map((a) => a.hash);
    const shared =
      committed.length === 0
        ? []
        : await this.prisma.artifactOwner.findMany({
            where: { hash: { in: committed }, public: true },
            select: { hash: true },
            distinct: ['hash'],
          });
    const redacted = redactEvidence(bundle, { publicArtifacts: new Set(shared.map((s) => s.hash)) });
    return mapEvidence(evidence, slash, {
      access: 'redacted',
      bundle: canonicalEvidence(redacted),
      withheld: withheldFrom(redacted),
    });
  }

  /** The job's owner, the accused provider's operator (its account's address) and admins. */
  private async entitled(
    principal: Principal,
    evidence: Evidence,
    operatorAddress: string | null,
  ): Promise<boolean> {
    if (principal.role === 'ADMIN' || principal.scopes.has('admin')) return true;
    if (operatorAddress !== null && principal.address.toLowerCase() === operatorAddress.toLowerCase())
      return true;
    const job = await this.prisma.job.findUnique({
      where: { id: evidence.jobId },
      select: { accountId: true },
    });
    return job?.accountId === principal.accountId;
  }
}

/** The operator address the accused receipt names, when the bundle is readable. */
function accusedOperator(evidence: Evidence): string | null {
  try {
    const bundle = JSON.parse(evidence.bundle) as {
      accused?: { receipt?: { payload?: { providerAddress?: unknown } } };
    };
    const address = bundle.accused?.receipt?.payload?.providerAddress;
    return typeof address === 'string' ? address : null;
  } catch {
    return null;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
