import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal, RequireScopes } from '../auth/auth.decorators.js';
import type { Principal } from '../auth/principal.js';
import { LedgerRepository } from '../ledger/ledger.repository.js';
import { LedgerAccounts } from '../ledger/ledger-accounts.js';

export class AccountDto {
  @ApiProperty() id: string;
  @ApiProperty() address: string;
  @ApiProperty({ enum: ['DEVELOPER', 'ADMIN'] }) role: string;
  @ApiProperty({ description: 'base units free to spend', example: '1000000' }) balance: string;
  @ApiProperty({ description: 'base units held for jobs that have not finished', example: '2500' })
  reserved: string;
}

@ApiTags('account')
@ApiBearerAuth()
@Controller('v1/account')
export class AccountsController {
  constructor(private readonly ledger: LedgerRepository) {}

  @Get()
  @RequireScopes('account:read')
  @ApiOperation({ summary: 'Your balance and what is reserved for running jobs' })
  async get(@CurrentPrincipal() principal: Principal): Promise<AccountDto> {
    const available = LedgerAccounts.available(principal.accountId);
    const reserved = LedgerAccounts.reserved(principal.accountId);
    const balances = await this.ledger.balances([available, reserved]);
    return {
      id: principal.accountId,
      address: principal.address,
      role: principal.role,
      balance: (balances.get(available) ?? 0n).toString(),
      reserved: (balances.get(reserved) ?? 0n).toString(),
    };
  }
}
