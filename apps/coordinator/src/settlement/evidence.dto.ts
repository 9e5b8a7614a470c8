import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import type { Evidence, SlashProposal } from '#prisma';
import { slashBeneficiaries } from './slash.repository.js';

@ApiSchema({ name: 'EvidenceSlashBeneficiaryDto' })
export class SlashBeneficiaryDto {
  @ApiProperty({ description: 'the developer account address compensated' }) account: string;
  @ApiProperty({ description: 'its weight: the cost (base units) of its jobs the provider ran' })
  weight: string;
}

export class EvidenceSlashDto {
  @ApiProperty({
    enum: ['PROPOSED', 'FROZEN', 'SENT', 'EXECUTED', 'CANCELLING', 'CANCELLED', 'EXPIRED', 'FAILED'],
  })
  state: string;
  @ApiProperty({ description: 'the operator address whose stake is frozen and slashed' })
  operatorAddress: string;
  @ApiProperty({ description: 'base units: requested, then frozen on chain, then slashed' }) amount: string;
  @ApiProperty({
    type: [SlashBeneficiaryDto],
    description: 'who the slashed tokens compensate (paid into JobEscrow), largest first; empty = burnt',
  })
  beneficiaries: SlashBeneficiaryDto[];
  @ApiProperty({ description: 'not executed before this' }) executeAfter: string;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'ProviderStaking.proposeSlash (freezes)',
  })
  proposeTxHash: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'ProviderStaking.executeSlash' })
  executeTxHash: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'ProviderStaking.cancelSlash' })
  cancelTxHash: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'base units paid to the developers' })
  compensated: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'base units burnt' })
  burnt: string | null;
}

export const EVIDENCE_ACCESS = ['full', 'redacted'] as const;
export type EvidenceAccess = (typeof EVIDENCE_ACCESS)[number];

export class EvidenceDto {
  @ApiProperty({
    description:
      'keccak256 of the canonical JSON of `bundle` without its `disclosed` part (the same for the full and the redacted form): the evidenceHash of ProviderStaking.SlashProposed and Slashed',
  })
  hash: string;
  @ApiProperty({
    description:
      'the evidence bundle (canonical JSON: the job, the accused signed receipt, the reference, tensors by digest and models by hash; `disclosed` holds the bytes the caller may see); `gpumesh verify-evidence` re-checks it offline',
  })
  bundle: string;
  @ApiProperty({
    enum: EVIDENCE_ACCESS,
    description:
      "full: every byte disclosed (the caller is the job's owner, the accused operator or an admin); redacted: inputs, outputs and private model weights withheld",
  })
  access: EvidenceAccess;
  @ApiProperty({ type: [String], description: 'what the bundle withholds, in words (empty when full)' })
  withheld: string[];
  @ApiProperty() jobId: string;
  @ApiProperty({ description: 'the convicted provider' }) peerId: string;
  @ApiProperty() createdAt: string;
  @ApiPropertyOptional({
    nullable: true,
    type: EvidenceSlashDto,
    description: 'the slash proposal citing it',
  })
  slash: EvidenceSlashDto | null;
}

export function mapEvidence(
  evidence: Evidence,
  slash: SlashProposal | null,
  view: { access: EvidenceAccess; bundle: string; withheld: string[] },
): EvidenceDto {
  return {
    hash: evidence.bundleHash,
    bundle: view.bundle,
    access: view.access,
    withheld: view.withheld,
    jobId: evidence.jobId,
    peerId: evidence.peerId,
    createdAt: evidence.createdAt.toISOString(),
    slash: slash
      ? {
          state: slash.state,
          operatorAddress: slash.operatorAddress,
          amount: slash.amount.toString(),
          beneficiaries: slashBeneficiaries(slash).map((b) => ({
            account: b.account,
            weight: b.weight.toString(),
          })),
          executeAfter: slash.executeAfter.toISOString(),
          proposeTxHash: slash.proposeTxHash,
          executeTxHash: slash.txHash,
          cancelTxHash: slash.cancelTxHash,
          compensated: slash.compensated?.toString() ?? null,
          burnt: slash.burnt?.toString() ?? null,
        }
      : null,
  };
}
