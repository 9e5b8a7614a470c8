import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsISO8601, IsOptional, IsString, IsUUID, Matches } from 'class-validator';
import { PageQueryDto } from '../../common/page-query.dto.js';
import { ACCOUNT_ENTRY_KINDS, developerBalanceOf, type AccountLedgerEntry } from '../account-history.js';

const KIND_LIST = new RegExp(`^(${ACCOUNT_ENTRY_KINDS.join('|')})(,(${ACCOUNT_ENTRY_KINDS.join('|')}))*$`);

export class AccountLedgerQueryDto extends PageQueryDto {
  @ApiPropertyOptional({
    description: `comma-separated entry kinds: ${ACCOUNT_ENTRY_KINDS.join(', ')}`,
    example: 'deposit,settle',
  })
  @IsOptional()
  @IsString()
  @Matches(KIND_LIST, {
    message: `kind must be a comma-separated list of ${ACCOUNT_ENTRY_KINDS.join(', ')}`,
  })
  kind?: string;

  @ApiPropertyOptional({
    enum: ['available', 'reserved'],
    description: 'only the entries of one of your two balances (default both)',
  })
  @IsOptional()
  @IsIn(['available', 'reserved'])
  balance?: 'available' | 'reserved';

  @ApiPropertyOptional({ format: 'uuid', description: "only one job's entries" })
  @IsOptional()
  @IsUUID()
  jobId?: string;

  @ApiPropertyOptional({
    description: 'entries at or after this time (ISO 8601)',
    example: '2026-12-01T00:00:00Z',
  })
  @IsOptional()
  @IsISO8601({ strict: true })
  from?: string;

  @ApiPropertyOptional({
    description: 'entries before this time (ISO 8601)',
    example: '2026-12-07T00:00:00Z',
  })
  @IsOptional()
  @IsISO8601({ strict: true })
  to?: string;
}

export class AccountLedgerEntryDto {
  @ApiProperty({
    description: 'the entry id (entries are numbered in the order they were written)',
    example: '1042',
  })
  id: string;
  @ApiProperty({ format: 'uuid', description: 'the ledger transaction the entry belongs to' })
  txId: string;
  @ApiProperty({ description: 'when it was written (ISO 8601)' }) createdAt: string;
  @ApiProperty({
    enum: ACCOUNT_ENTRY_KINDS,
    description:
      'deposit (escrow deposit credited), withdrawal, mint (dev credits), reserve (a job submitted), release (a reservation or a refund returned), settle (a completed job charged, the rest returned)',
  })
  kind: string;
  @ApiProperty({
    enum: ['available', 'reserved'],
    description:
      'which of your balances moved: available (free to spend) or reserved (held for running jobs)',
  })
  balance: string;
  @ApiProperty({
    description: 'base units, signed: positive credits that balance, negative debits it',
    example: '-340',
  })
  amount: string;
  @ApiPropertyOptional({ nullable: true, type: String, format: 'uuid', description: 'the job it is for' })
  jobId: string | null;
  @ApiProperty({
    description:
      'that balance right after this entry (entries applied in id order; the newest equals GET /v1/account)',
    example: '999660',
  })
  balanceAfter: string;
}

export class AccountLedgerPageDto {
  @ApiProperty({ type: [AccountLedgerEntryDto], description: 'newest first' })
  items: AccountLedgerEntryDto[];
  @ApiPropertyOptional({ nullable: true, type: String, description: 'pass as ?cursor= for the next page' })
  nextCursor: string | null;
}

export function mapAccountLedgerEntry(entry: AccountLedgerEntry): AccountLedgerEntryDto {
  return {
    id: entry.id.toString(),
    txId: entry.txId,
    createdAt: entry.createdAt.toISOString(),
    kind: entry.kind,
    balance: developerBalanceOf(entry.account) ?? entry.account,
    amount: entry.amount.toString(),
    jobId: entry.jobId,
    balanceAfter: entry.balanceAfter.toString(),
  };
}
