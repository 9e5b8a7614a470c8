import { Body, Controller, Get, Put } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiOperation,
  ApiProperty,
  ApiPropertyOptional,
  ApiTags,
} from '@nestjs/swagger';
import { DomainError } from '../common/domain-error.js';
import { VerificationPolicySchema, type VerificationPolicy } from '../settings/settings.js';
import { VerificationPolicyService } from '../pricing/policy.service.js';
import { CurrentPrincipal, RequireScopes } from '../auth/auth.decorators.js';
import type { Principal } from '../auth/principal.js';
import { LedgerRepository } from '../ledger/ledger.repository.js';
import { LedgerAccounts } from '../ledger/accounts.js';
import { AccountsRepository } from './accounts.repository.js';

export class AccountDto {
  @ApiProperty() id: string;
  @ApiProperty() address: string;
  @ApiProperty({ enum: ['DEVELOPER', 'ADMIN'] }) role: string;
  @ApiProperty({ description: 'base units free to spend', example: '1000000' }) balance: string;
  @ApiProperty({ description: 'base units held for jobs that have not finished', example: '2500' })
  reserved: string;
  @ApiPropertyOptional({
    nullable: true,
    description:
      'set while an escrow unlock you requested on chain is pending: the time it becomes withdrawable. No new jobs are accepted until you cancel it (JobEscrow.cancelUnlock) or withdraw',
    example: null,
  })
  escrowUnlockAt: string | null;
}

export class VerificationPolicyDto {
  @ApiProperty({ enum: ['none', 'redundant'] }) mode: string;
  @ApiProperty({ minimum: 1, maximum: 3, description: 'distinct operators each job runs on' }) k: number;
  @ApiProperty({ minimum: 0, maximum: 0.5, description: 'share of dispatches followed by a canary' })
  canaryRate: number;
}

export class AccountVerificationDto {
  @ApiProperty({
    type: VerificationPolicyDto,
    description: 'what your jobs run under when they name no policy',
  })
  effective: VerificationPolicyDto;
  @ApiPropertyOptional({
    type: VerificationPolicyDto,
    nullable: true,
    description: 'your default; null = the platform one',
  })
  account: VerificationPolicyDto | null;
  @ApiProperty({ type: VerificationPolicyDto }) platform: VerificationPolicyDto;
}

@ApiTags('account')
@ApiBearerAuth()
@Controller('v1/account')
export class AccountsController {
  constructor(
    private readonly ledger: LedgerRepository,
    private readonly policies: VerificationPolicyService,
    private readonly accounts: AccountsRepository,
  ) {}

  @Get()
  @RequireScopes('account:read')
  @ApiOperation({ summary: 'Your balance and what is reserved for running jobs' })
  async get(@CurrentPrincipal() principal: Principal): Promise<AccountDto> {
    const available = LedgerAccounts.available(principal.accountId);
    const reserved = LedgerAccounts.reserved(principal.accountId);
    const [balances, unlock] = await Promise.all([
      this.ledger.balances([available, reserved]),
      this.accounts.escrowUnlock(principal.accountId),
    ]);
    return {
      id: principal.accountId,
      address: principal.address,
      role: principal.role,
      balance: (balances.get(available) ?? 0n).toString(),
      reserved: (balances.get(reserved) ?? 0n).toString(),
      escrowUnlockAt: unlock?.unlockAt.toISOString() ?? null,
    };
  }

  @Get('verification')
  @RequireScopes('account:read')
  @ApiOperation({ summary: 'The verification policy your jobs run under when a request names none' })
  async verification(@CurrentPrincipal() principal: Principal): Promise<AccountVerificationDto> {
    return this.verificationView(principal.accountId);
  }

  @Put('verification')
  @RequireScopes('jobs:write')
  @ApiOperation({
    summary:
      'Set your default verification policy ({ mode: none | redundant, k?, canaryRate? }); null clears it',
  })
  @ApiBody({
    schema: { nullable: true, type: 'object', example: { mode: 'redundant', k: 2, canaryRate: 0.05 } },
  })
  async setVerification(
    @CurrentPrincipal() principal: Principal,
    @Body() body: unknown,
  ): Promise<AccountVerificationDto> {
    let policy: VerificationPolicy | null = null;
    if (
      body !== null &&
      body !== undefined &&
      !(typeof body === 'object' && Object.keys(body).length === 0)
    ) {
      const parsed = VerificationPolicySchema.safeParse(body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue.path.length > 0 ? `verification.${issue.path.join('.')}` : 'verification';
        throw new DomainError('VALIDATION_FAILED', `${where}: ${issue.message}`);
      }
      policy = parsed.data;
    }
    await this.policies.setAccountDefault(principal.accountId, policy);
    return this.verificationView(principal.accountId);
  }

  private async verificationView(accountId: string): Promise<AccountVerificationDto> {
    const [account, platform] = await Promise.all([
      this.policies.accountDefault(accountId),
      this.policies.platformDefault(),
    ]);
    return { effective: account ?? platform, account, platform };
  }
}
