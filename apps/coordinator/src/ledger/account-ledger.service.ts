import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/domain-error.js';
import { LedgerAccounts } from './accounts.js';
import { decodeLedgerCursor, encodeLedgerCursor, type AccountLedgerEntry } from './account-history.js';
import { LedgerRepository } from './ledger.repository.js';

/** What `GET /v1/account/ledger` asks for, validated by its DTO. */
export interface AccountLedgerRequest {
  kind?: string;
  balance?: 'available' | 'reserved';
  jobId?: string;
  from?: string;
  to?: string;
  limit?: number;
  cursor?: string;
}

/** A developer's own ledger history, paged newest first. */
@Injectable()
export class AccountLedgerService {
  constructor(private readonly ledger: LedgerRepository) {}

  /** Entries on `accountId`'s own balances only (never another account's rows). */
  async page(
    accountId: string,
    query: AccountLedgerRequest,
  ): Promise<{ items: AccountLedgerEntry[]; nextCursor: string | null }> {
    const limit = query.limit ?? 50;
    const beforeId = query.cursor === undefined ? undefined : decodeLedgerCursor(query.cursor);
    if (beforeId === null)
      throw new DomainError('VALIDATION_FAILED', 'cursor: is not a cursor this API returned');
    const from = instant(query.from, 'from');
    const to = instant(query.to, 'to');
    if (from && to && from >= to) throw new DomainError('VALIDATION_FAILED', 'to: must be later than from');
    const accounts =
      query.balance === undefined
        ? [LedgerAccounts.available(accountId), LedgerAccounts.reserved(accountId)]
        : [LedgerAccounts[query.balance](accountId)];
    const rows = await this.ledger.accountEntries(accounts, {
      beforeId,
      kinds: query.kind?.split(','),
      jobId: query.jobId,
      from,
      to,
      limit: limit + 1,
    });
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > limit && last ? encodeLedgerCursor(last) : null };
  }
}

function instant(value: string | undefined, field: string): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new DomainError('VALIDATION_FAILED', `${field}: expected an ISO 8601 time`);
  }
  return date;
}
