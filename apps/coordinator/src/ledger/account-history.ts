import { parseAccount, type DeveloperAccountKind } from './accounts.js';
import type { LedgerEntryKind } from './ledger-accounts.js';

/**
 * A developer's ledger history (`GET /v1/account/ledger`): the entries on its own `available` and
 * `reserved` balances, newest first, paged by an opaque cursor (the last entry's id).
 */

/** Entry kinds a developer's balances see, for the `kind` filter. */
export const ACCOUNT_ENTRY_KINDS = [
  'deposit',
  'withdrawal',
  'mint',
  'reserve',
  'release',
  'settle',
] as const satisfies readonly LedgerEntryKind[];

/** What a page asks for. */
export interface AccountLedgerQuery {
  /** Entries older than this id (the cursor). */
  beforeId?: bigint;
  kinds?: readonly string[];
  jobId?: string;
  /** Entries created at or after `from` and before `to`. */
  from?: Date;
  to?: Date;
  limit: number;
}

/** One ledger entry on one of the developer's balances, with that balance right after it. */
export interface AccountLedgerEntry {
  id: bigint;
  txId: string;
  account: string;
  amount: bigint;
  kind: string;
  jobId: string | null;
  createdAt: Date;
  balanceAfter: bigint;
}

/** Which of the developer's balances an account name is, or null for anything else. */
export function developerBalanceOf(account: string): DeveloperAccountKind | null {
  const parsed = parseAccount(account);
  return parsed?.owner === 'developer' ? parsed.kind : null;
}

export function encodeLedgerCursor(entry: Pick<AccountLedgerEntry, 'id'>): string {
  return Buffer.from(`e${entry.id.toString()}`).toString('base64url');
}

/** The entry id a cursor points below, or null for a string this API did not hand out. */
export function decodeLedgerCursor(cursor: string): bigint | null {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^e[1-9][0-9]{0,18}$/.test(text)) return null;
  const id = BigInt(text.slice(1));
  return id <= 2n ** 63n - 1n ? id : null;
}
