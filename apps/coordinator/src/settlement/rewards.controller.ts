import { Controller, Get, Header, Inject, Param, ParseIntPipe } from '@nestjs/common';
import {
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiPropertyOptional,
  ApiSchema,
  ApiTags,
} from '@nestjs/swagger';
import { ApiErrors } from '../common/api-docs.js';
import { ADDRESS_PATTERN } from '@gpumesh/protocol';
import { EpochProofs, parseEpochFile } from '@gpumesh/rewards';
import { Public } from '../auth/auth.decorators.js';
import { DomainError } from '../common/domain-error.js';
import { SETTLEMENT_CHAIN, type SettlementChain } from './settlement-chain.js';
import { SettlementRepository } from './settlement.repository.js';

@ApiSchema({ name: 'RewardEpochDto' })
export class EpochDto {
  @ApiProperty() epoch: number;
  @ApiProperty({
    enum: ['OPEN', 'CLOSED', 'POSTED', 'FUNDING', 'FINALIZED'],
    description:
      'FUNDING: past its challenge window, being debited from the escrow; FINALIZED: funded and claimable',
  })
  state: string;
  @ApiProperty() startedAt: string;
  @ApiPropertyOptional({ nullable: true, type: String }) closedAt: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'Merkle root of cumulative earnings' })
  root: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'keccak256 of the epoch file' })
  fileHash: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'the postRoot transaction' })
  txHash: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'base units the epoch adds' })
  total: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'base units the distributor holds for it (claimable once this equals total)',
  })
  funded: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'why its settlement waits (a shortfall someone must fund, a veto an operator must look at)',
  })
  blockedReason: string | null;
}

export class ClaimTicketDto {
  @ApiProperty() epoch: number;
  @ApiProperty() index: number;
  @ApiProperty() account: string;
  @ApiProperty({ description: 'base units earned since the first epoch' }) cumulativeAmount: string;
  @ApiProperty({ type: [String] }) proof: string[];
  @ApiPropertyOptional({ nullable: true, type: String }) distributor: string | null;
  @ApiPropertyOptional({ nullable: true, type: Number }) chainId: number | null;
}

export class ChainInfoDto {
  @ApiProperty() chainId: number;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'the JSON-RPC URL agents should use (PUBLIC_CHAIN_RPC_URL); null when none is published',
  })
  rpcUrl: string | null;
  @ApiProperty({ description: 'true for the local dev chain (its state is lost on exit)' }) dev: boolean;
  @ApiPropertyOptional({ nullable: true, type: String }) token: string | null;
  @ApiProperty() distributor: string;
  @ApiProperty() escrow: string;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'ProviderStaking (stake, unbond, slash)',
  })
  staking: string | null;
}

/** Public settlement data: anyone can list the epochs, download a file to audit, or fetch a proof. */
@ApiTags('rewards')
@Controller('v1/rewards')
export class RewardsController {
  private proofs: { epoch: number; proofs: EpochProofs } | null = null;

  constructor(
    private readonly repo: SettlementRepository,
    @Inject(SETTLEMENT_CHAIN) private readonly chain: SettlementChain | null,
  ) {}

  @Get('epochs')
  @Public()
  @ApiOperation({ summary: 'Every epoch, newest first, with its root, file hash and posting transaction' })
  @ApiOkResponse({ type: [EpochDto] })
  async epochs(): Promise<EpochDto[]> {
    return (await this.repo.list(500)).map((e) => ({
      epoch: e.id,
      state: e.state,
      startedAt: e.startedAt.toISOString(),
      closedAt: e.closedAt?.toISOString() ?? null,
      root: e.root,
      fileHash: e.fileHash,
      txHash: e.txHash,
      total: e.total?.toString() ?? null,
      funded: e.funded?.toString() ?? null,
      blockedReason: e.blockedReason,
    }));
  }

  @Get('epochs/:epoch/file')
  @Public()
  @Header('content-type', 'application/json; charset=utf-8')
  @ApiOperation({ summary: 'The epoch file: the exact bytes whose keccak256 is posted on chain' })
  @ApiOkResponse({
    description: 'the epoch file (JSON; OpenZeppelin standard-v1 Merkle tree of cumulative earnings)',
    schema: {
      type: 'object',
      properties: {
        epoch: { type: 'integer' },
        tree: { type: 'object', description: 'the StandardMerkleTree dump (format standard-v1)' },
      },
      additionalProperties: true,
    },
  })
  @ApiErrors({ 404: 'NOT_FOUND: the epoch has no file (not closed yet?)' })
  async file(@Param('epoch', ParseIntPipe) epoch: number): Promise<string> {
    const json = await this.repo.fileJson(epoch);
    if (json === null) throw new DomainError('NOT_FOUND', `epoch ${epoch} has no file (not closed yet?)`);
    return json;
  }

  @Get('chain')
  @Public()
  @ApiOperation({ summary: 'The settlement chain and contracts: what `gpumesh-agent stake|claim` talk to' })
  @ApiOkResponse({ type: ChainInfoDto })
  @ApiErrors({ 404: 'NOT_FOUND: this coordinator process does not settle on a chain' })
  chainInfo(): ChainInfoDto {
    const chain = this.chain;
    if (!chain) throw new DomainError('NOT_FOUND', 'this coordinator process does not settle on a chain');
    return {
      chainId: chain.chainId,
      rpcUrl: chain.publicRpcUrl,
      dev: chain.dev,
      token: chain.contracts.token ?? null,
      distributor: chain.contracts.distributor,
      escrow: chain.contracts.escrow,
      staking: chain.contracts.staking ?? null,
    };
  }

  @Get('proof/:address')
  @Public()
  @ApiOperation({
    summary: "The latest claimable ticket of a provider's address (RewardsDistributor.claim arguments)",
  })
  @ApiOkResponse({ type: ClaimTicketDto })
  @ApiErrors({ 404: 'NOT_FOUND: no epoch is claimable yet, or the address earned nothing in it' })
  async proof(@Param('address') address: string): Promise<ClaimTicketDto> {
    if (!ADDRESS_PATTERN.test(address))
      throw new DomainError('VALIDATION_FAILED', 'address: expected a 0x address');
    const latest = await this.repo.latestFinalized();
    if (!latest) throw new DomainError('NOT_FOUND', 'no epoch is claimable yet');
    if (this.proofs?.epoch !== latest.epoch.id) {
      this.proofs = { epoch: latest.epoch.id, proofs: new EpochProofs(parseEpochFile(latest.json)) };
    }
    const ticket = this.proofs.proofs.ticket(address);
    if (!ticket) throw new DomainError('NOT_FOUND', `${address} has no earnings in epoch ${latest.epoch.id}`);
    return {
      epoch: ticket.epoch,
      index: ticket.index,
      account: ticket.account,
      cumulativeAmount: ticket.cumulativeAmount.toString(),
      proof: [...ticket.proof],
      distributor: this.chain?.contracts.distributor ?? null,
      chainId: this.chain?.chainId ?? null,
    };
  }
}
