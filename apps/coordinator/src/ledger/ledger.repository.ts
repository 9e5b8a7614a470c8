import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Prisma } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';
import { assertBalanced, type LedgerEntryKind, type LedgerPosting } from './ledger-accounts.js';

export type Tx = Prisma.TransactionClient;

/** Double-entry postings and running balances. The only code that writes LedgerEntry/LedgerBalance. */
@Injectable()
export class LedgerRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Posts one balanced transaction inside the caller's database transaction. */
  async post(
    tx: Tx,
    kind: LedgerEntryKind,
    postings: readonly LedgerPosting[],
    refs: { jobId?: string } = {},
  ): Promise<string> {
    assertBalanced(postings);
    const txId = randomUUID();
    await tx.ledgerEntry.createMany({
      data: postings.map((p) => ({
        txId,
        account: p.account,
        amount: p.amount,
        kind,
        jobId: refs.jobId ?? null,
      })),
    });
    // Balance rows are always locked in account order (as submissions and batches do): no deadlocks.
    for (const p of [...postings].sort((x, y) =>
      x.account < y.account ? -1 : x.account > y.account ? 1 : 0,
    )) {
      // UPDATE first: a CHECK constraint sees the proposed row of INSERT … ON CONFLICT before the
      // conflict resolves, so a debit must never be written as an insert.
      const updated = await tx.$executeRaw`
        UPDATE "LedgerBalance" SET balance = balance + ${p.amount}, "updatedAt" = now() WHERE account = ${p.account}`;
      if (updated === 0) {
        await tx.$executeRaw`
          INSERT INTO "LedgerBalance" (account, balance, "updatedAt") VALUES (${p.account}, ${p.amount}, now())
          ON CONFLICT (account) DO UPDATE SET balance = "LedgerBalance".balance + EXCLUDED.balance, "updatedAt" = now()`;
      }
    }
    return txId;
  }

  /**
   * Posts several balanced transactions inside the caller's database transaction: their entries in one
   * insert, and each balance row touched once (locked in account order) with the sum of its changes.
   */
  async postMany(
    tx: Tx,
    transactions: readonly { kind: LedgerEntryKind; postings: readonly LedgerPosting[]; jobId?: string }[],
  ): Promise<void> {
    const entries: Prisma.LedgerEntryCreateManyInput[] = [];
    const deltas = new Map<string, bigint>();
    for (const t of transactions) {
      assertBalanced(t.postings);
      const txId = randomUUID();
      for (const p of t.postings) {
        entries.push({ txId, account: p.account, amount: p.amount, kind: t.kind, jobId: t.jobId ?? null });
        deltas.set(p.account, (deltas.get(p.account) ?? 0n) + p.amount);
      }
    }
    if (entries.length === 0) return;
    await tx.ledgerEntry.createMany({ data: entries });
    const accounts = [...deltas.keys()].sort();
    const locked = await tx.$queryRaw<{ account: string }[]>`
      SELECT account FROM "LedgerBalance" WHERE account = ANY(${accounts}::text[]) ORDER BY account FOR UPDATE`;
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
