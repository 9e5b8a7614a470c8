import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Prisma } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';
import {
  LedgerAccounts,
  assertBalanced,
  type LedgerEntryKind,
  type LedgerPosting,
} from './ledger-accounts.js';

export type Tx = Prisma.TransactionClient;

/** The canary fund (verification/verification-accounts.ts), a shared hot row like the fees. */
const CANARY_FUND = 'system:canary';

/**
 * Lock rank of a balance row: the shared fee and canary rows, then developer accounts (each one's
 * `available` before its `reserved`, as byte order has it, which is how submissions lock them), then
 * the rest (providers, system).
 */
function lockRank(account: string): number {
  if (account === LedgerAccounts.fees) return 0;
  if (account === CANARY_FUND) return 1;
  if (account.startsWith('acct:')) return 2;
  return 3;
}

/**
 * The one order in which every ledger writer locks balance rows, so single postings, batches and
 * submissions never wait on each other in a cycle: by rank, then by account name in byte order.
 * Waiting for the shared fee row first holds nothing else.
 */
export function byLockOrder(a: { account: string }, b: { account: string }): number {
  const rank = lockRank(a.account) - lockRank(b.account);
  if (rank !== 0) return rank;
  return a.account < b.account ? -1 : a.account > b.account ? 1 : 0;
}

/** Double-entry postings and running balances. The only code that writes LedgerEntry/LedgerBalance. */
@Injectable()
export class LedgerRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Posts one balanced transaction inside the caller's database transaction; returns its id. */
  async post(
    tx: Tx,
    kind: LedgerEntryKind,
    postings: readonly LedgerPosting[],
    refs: { jobId?: string } = {},
  ): Promise<string> {
    const [txId] = await this.postMany(tx, [{ kind, postings, jobId: refs.jobId }]);
    return txId;
  }

  /**
   * Posts several balanced transactions inside the caller's database transaction: their entries in one
   * insert, and each balance row touched once (locked in account order) with the sum of its changes.
   */
  async postMany(
    tx: Tx,
    transactions: readonly { kind: LedgerEntryKind; postings: readonly LedgerPosting[]; jobId?: string }[],
  ): Promise<string[]> {
    const entries: Prisma.LedgerEntryCreateManyInput[] = [];
    const txIds: string[] = [];
    const deltas = new Map<string, bigint>();
    for (const t of transactions) {
      assertBalanced(t.postings);
      const txId = randomUUID();
      txIds.push(txId);
      for (const p of t.postings) {
        entries.push({ txId, account: p.account, amount: p.amount, kind: t.kind, jobId: t.jobId ?? null });
        deltas.set(p.account, (deltas.get(p.account) ?? 0n) + p.amount);
      }
    }
    if (entries.length === 0) return txIds;
    await tx.ledgerEntry.createMany({ data: entries });
    const accounts = [...deltas.keys()].sort((a, b) => byLockOrder({ account: a }, { account: b }));
    // Locked in lock order (byLockOrder's rank, in SQL).
    const locked = await tx.$queryRaw<{ account: string }[]>`
      SELECT account FROM "LedgerBalance" WHERE account = ANY(${accounts}::text[])
       ORDER BY CASE WHEN account = ${LedgerAccounts.fees} THEN 0 WHEN account = ${CANARY_FUND} THEN 1
                     WHEN account LIKE 'acct:%' THEN 2 ELSE 3 END, account COLLATE "C"
       FOR UPDATE`;
    // Update exactly the rows locked above. (Not "every account of the batch": a row another
    // transaction inserts meanwhile would then get this delta from the UPDATE and again from the
    // INSERT … ON CONFLICT below.)
    const existing = locked.map((r) => r.account);
    if (existing.length > 0) {
      const existingAmounts = existing.map((a) => (deltas.get(a) ?? 0n).toString());
      await tx.$executeRaw`
        UPDATE "LedgerBalance" lb SET balance = lb.balance + d.delta, "updatedAt" = now()
          FROM unnest(${existing}::text[], ${existingAmounts}::bigint[]) AS d(account, delta)
         WHERE lb.account = d.account`;
    }
    const seen = new Set(existing);
    const missing = accounts.filter((a) => !seen.has(a));
    if (missing.length > 0) {
      const missingAmounts = missing.map((a) => (deltas.get(a) ?? 0n).toString());
      await tx.$executeRaw`
        INSERT INTO "LedgerBalance" (account, balance, "updatedAt")
        SELECT account, delta, now() FROM unnest(${missing}::text[], ${missingAmounts}::bigint[]) AS d(account, delta)
        ORDER BY account
        ON CONFLICT (account) DO UPDATE SET balance = "LedgerBalance".balance + EXCLUDED.balance, "updatedAt" = now()`;
    }
    return txIds;
  }

  /** Posts a transaction in its own database transaction. */
  async postStandalone(kind: LedgerEntryKind, postings: readonly LedgerPosting[]): Promise<string> {
    return this.prisma.$transaction((tx) => this.post(tx, kind, postings));
  }

  async balances(accounts: readonly string[]): Promise<Map<string, bigint>> {
    const rows = await this.prisma.ledgerBalance.findMany({ where: { account: { in: [...accounts] } } });
    const result = new Map<string, bigint>(accounts.map((a) => [a, 0n]));
    for (const row of rows) result.set(row.account, row.balance);
    return result;
  }

  /** Sum of every entry; a correct ledger always returns 0. */
  async totalOfAllEntries(): Promise<bigint> {
    const rows = await this.prisma.$queryRaw<
      { total: bigint | null }[]
    >`SELECT SUM(amount)::bigint AS total FROM "LedgerEntry"`;
    return rows[0]?.total ?? 0n;
  }
}
