import { Body, Controller, Get, Put, Query } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiPropertyOptional,
  ApiTags,
} from '@nestjs/swagger';
import { DomainError } from '../common/domain-error.js';
import { ApiErrors } from '../common/api-docs.js';
import { VerificationPolicySchema, type VerificationPolicy } from '../settings/settings.js';
import { VerificationPolicyService } from '../pricing/policy.service.js';
import { CurrentPrincipal, RequireScopes } from '../auth/auth.decorators.js';
import type { Principal } from '../auth/principal.js';
import { LedgerRepository } from '../ledger/ledger.repository.js';
import { LedgerAccounts } from '../ledger/accounts.js';
import { AccountLedgerService } from '../ledger/account-ledger.service.js';
import {
  AccountLedgerPageDto,
  AccountLedgerQueryDto,
  mapAccountLedgerEntry,
} from '../ledger/dto/account-ledger.dto.js';
import { AccountsRepository } from './accounts.repository.js';
import { SpendingCapsService, type SpendingCapView } from './spending-caps.service.js';

export class SpendingCapDomainDto {
  @ApiProperty({ example: 'gpumesh JobEscrow' }) name: string;
  @ApiProperty({ example: '1' }) version: string;
  @ApiProperty({ example: 31337 }) chainId: number;
  @ApiProperty({
    description: 'the JobEscrow contract',
    example: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  })
  verifyingContract: string;
}

export class TypedDataFieldDto {
  @ApiProperty({ example: 'cap' }) name: string;
  @ApiProperty({ example: 'uint256' }) type: string;
}

export class SpendingCapMessageDto {
  @ApiProperty({ example: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266' }) account: string;
  @ApiProperty({ description: 'base units (decimal string)', example: '0' }) cap: string;
}

export class SpendingCapTypedDataDto {
  @ApiProperty({
    type: SpendingCapDomainDto,
    description: 'EIP-712 domain: name, version, chainId, verifyingContract (the JobEscrow)',
    example: {
      name: 'gpumesh JobEscrow',
      version: '1',
      chainId: 31337,
      verifyingContract: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
    },
  })
  domain: Record<string, unknown>;
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'array', items: { $ref: '#/components/schemas/TypedDataFieldDto' } },
    example: {
      SpendingCap: [
        { name: 'account', type: 'address' },
        { name: 'cap', type: 'uint256' },
      ],
    },
  })
  types: Record<string, unknown>;
  @ApiProperty({ example: 'SpendingCap' }) primaryType: string;
  @ApiProperty({
    type: SpendingCapMessageDto,
    description: 'your account and current cap: put the new (higher) cap in `cap` and sign',
    example: { account: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266', cap: '0' },
  })
  message: Record<string, unknown>;
}

export class SpendingCapDto {
  @ApiProperty({
    description:
      'base units: the most that may ever be debited from your escrow deposit, in total (the highest cap you signed; 0 = none)',
    example: '1000000000',
  })
  cap: string;
  @ApiProperty({ description: 'base units spent, held or reserved for jobs so far', example: '2500' })
  spent: string;
  @ApiProperty({ description: 'base units you may still commit under your cap', example: '999997500' })
  authorisedRemaining: string;
  @ApiProperty({
    type: SpendingCapTypedDataDto,
    description:
      'what to sign (eth_signTypedData_v4) to raise the cap; PUT the result to /v1/account/spending-cap',
  })
  typedData: SpendingCapTypedDataDto;
}

export class PutSpendingCapDto {
  @ApiProperty({ description: 'the new cap in base units (decimal string)', example: '1000000000' })
  cap: string;
  @ApiProperty({ description: 'your EIP-712 signature of SpendingCap(account, cap)', example: '0x…' })
  signature: string;
}

function mapSpendingCap(view: SpendingCapView): SpendingCapDto {
  return {
    cap: view.cap.toString(),
    spent: view.spent.toString(),
    authorisedRemaining: view.authorisedRemaining.toString(),
    typedData: view.typedData as unknown as SpendingCapTypedDataDto,
  };
}

export class AccountDto {
  @ApiProperty() id: string;
  @ApiProperty() address: string;
  @ApiProperty({ enum: ['DEVELOPER', 'ADMIN'] }) role: string;
  @ApiProperty({ description: 'base units free to spend', example: '1000000' }) balance: string;
  @ApiProperty({ description: 'base units held for jobs that have not finished', example: '2500' })
  reserved: string;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    format: 'date-time',
    description:
      'set while an escrow unlock you requested on chain is pending: the time it becomes withdrawable. No new jobs are accepted until you cancel it (JobEscrow.cancelUnlock) or withdraw',
    example: null,
  })
  escrowUnlockAt: string | null;
  @ApiPropertyOptional({
    type: SpendingCapDto,
    nullable: true,
    description:
      'your signed spending cap (what the settler may ever debit from your escrow) and what to sign to raise it; null when the coordinator settles on no chain',
  })
  spendingCap: SpendingCapDto | null;
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
@ApiExtraModels(TypedDataFieldDto)
@ApiBearerAuth()
@Controller('v1/account')
export class AccountsController {
  constructor(
    private readonly ledger: LedgerRepository,
    private readonly policies: VerificationPolicyService,
    private readonly accounts: AccountsRepository,
    private readonly spendingCaps: SpendingCapsService,
    private readonly history: AccountLedgerService,
  ) {}

  @Get()
  @RequireScopes('account:read')
  @ApiOperation({ summary: 'Your balance and what is reserved for running jobs' })
  @ApiOkResponse({ type: AccountDto })
  @ApiErrors({ 403: 'FORBIDDEN: the key lacks account:read' })
  async get(@CurrentPrincipal() principal: Principal): Promise<AccountDto> {
    const available = LedgerAccounts.available(principal.accountId);
    const reserved = LedgerAccounts.reserved(principal.accountId);
    const [balances, unlock] = await Promise.all([
      this.ledger.balances([available, reserved]),
      this.accounts.escrowUnlock(principal.accountId),
    ]);
    const cap = await this.spendingCaps.view(
      principal.accountId,
      principal.address,
      balances.get(available) ?? 0n,
    );
    return {
      id: principal.accountId,
      address: principal.address,
      role: principal.role,
      balance: (balances.get(available) ?? 0n).toString(),
      reserved: (balances.get(reserved) ?? 0n).toString(),
      escrowUnlockAt: unlock?.unlockAt.toISOString() ?? null,
      spendingCap: cap ? mapSpendingCap(cap) : null,
    };
  }

  @Get('ledger')
  @RequireScopes('account:read')
  @ApiOperation({
    summary:
      'Your billing history: every ledger entry on your balances (deposits, reservations, charges, releases), newest first, with cursor pagination and filters',
  })
  @ApiOkResponse({ type: AccountLedgerPageDto })
  @ApiErrors({
    400: 'VALIDATION_FAILED: a filter or cursor is invalid (the message names it)',
    403: 'FORBIDDEN: the key lacks account:read',
  })
  async ledgerPage(
    @CurrentPrincipal() principal: Principal,
    @Query() query: AccountLedgerQueryDto,
  ): Promise<AccountLedgerPageDto> {
    const page = await this.history.page(principal.accountId, query);
    return { items: page.items.map(mapAccountLedgerEntry), nextCursor: page.nextCursor };
  }

  @Put('spending-cap')
  @RequireScopes('jobs:write')
  @ApiOperation({
    summary:
      'Raise your spending cap: { cap, signature } with your EIP-712 signature of SpendingCap(account, cap) in the escrow domain GET /v1/account shows',
  })
  @ApiBody({ type: PutSpendingCapDto })
  @ApiOkResponse({ type: SpendingCapDto })
  @ApiErrors({
    400: 'VALIDATION_FAILED, SPENDING_CAP_SIGNATURE_INVALID, SPENDING_CAP_STALE (not above the current cap), or BAD_REQUEST (this coordinator settles on no chain)',
    403: 'FORBIDDEN: the key lacks jobs:write',
  })
  async setSpendingCap(
    @CurrentPrincipal() principal: Principal,
    @Body() body: unknown,
  ): Promise<SpendingCapDto> {
    await this.spendingCaps.raise(principal.accountId, principal.address, body);
    const available = LedgerAccounts.available(principal.accountId);
    const balance = (await this.ledger.balances([available])).get(available) ?? 0n;
    const view = await this.spendingCaps.view(principal.accountId, principal.address, balance);
    if (!view) throw new DomainError('BAD_REQUEST', 'this coordinator settles on no chain');
    return mapSpendingCap(view);
  }

  @Get('verification')
  @RequireScopes('account:read')
  @ApiOperation({ summary: 'The verification policy your jobs run under when a request names none' })
  @ApiOkResponse({ type: AccountVerificationDto })
  @ApiErrors({ 403: 'FORBIDDEN: the key lacks account:read' })
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
    schema: {
      oneOf: [{ $ref: '#/components/schemas/VerificationPolicyRequest' }, { type: 'null' }],
      example: { mode: 'redundant', k: 2, canaryRate: 0.05 },
    },
  })
  @ApiOkResponse({ type: AccountVerificationDto })
  @ApiErrors({ 403: 'FORBIDDEN: the key lacks jobs:write' })
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
