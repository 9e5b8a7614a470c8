import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Prisma } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';
import { SqlParams, prismaRunner, type SqlRunner } from '../database/sql.service.js';
import { LedgerAccounts, parseAccount, payeeOf } from './accounts.js';
import { reservePostings } from './postings.js';
import { assertBalanced, type LedgerEntryKind, type LedgerPosting } from './ledger-accounts.js';
import type { JobEntrySum } from './job-charges.js';
import type { AccountLedgerEntry, AccountLedgerQuery } from './account-history.js';

export type Tx = Prisma.TransactionClient;

/**
 * Lock rank of a balance row: the shared fee row, then developer accounts (each one's `available`
 * before its `reserved`, as byte order has it, which is how submissions lock them), then the rest
 * (providers, system).
 */
function lockRank(account: string): number {
  if (account === LedgerAccounts.fees) return 0;
  if (parseAccount(account)?.owner === 'developer') return 1;
  return 2;
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

/** One balanced ledger transaction to post. */
export interface LedgerTransaction {
  kind: LedgerEntryKind;
  postings: readonly LedgerPosting[];
  jobId?: string;
}

/** The rows of some ledger transactions: entries (column arrays, in order) and each account's change. */
export interface PostingPlan {
  txIds: string[];
  entries: {
    txId: string[];
    account: string[];
    amount: string[];
    kind: string[];
    jobId: (string | null)[];
    /** The payee columns beside each account name (accounts.ts payeeOf). */
    accountKind: (string | null)[];
    payeePeerId: (string | null)[];
    payoutAddress: (string | null)[];
  };
  deltas: Map<string, bigint>;
}

/** Checks each transaction balances and lays out its entries; no database work. */
export function planPostings(transactions: readonly LedgerTransaction[]): PostingPlan {
  const plan: PostingPlan = {
    txIds: [],
    entries: {
      txId: [],
      account: [],
      amount: [],
      kind: [],
      jobId: [],
      accountKind: [],
      payeePeerId: [],
      payoutAddress: [],
    },
    deltas: new Map(),
  };
  for (const t of transactions) {
    assertBalanced(t.postings);
    const txId = randomUUID();
    plan.txIds.push(txId);
    for (const p of t.postings) {
      plan.entries.txId.push(txId);
      plan.entries.account.push(p.account);
      plan.entries.amount.push(p.amount.toString());
      plan.entries.kind.push(t.kind);
      plan.entries.jobId.push(t.jobId ?? null);
      const payee = payeeOf(p.account);
      plan.entries.accountKind.push(payee.accountKind);
      plan.entries.payeePeerId.push(payee.payeePeerId);
      plan.entries.payoutAddress.push(payee.payoutAddress);
      plan.deltas.set(p.account, (plan.deltas.get(p.account) ?? 0n) + p.amount);
    }
  }
  return plan;
}

/** The insert of a plan's entries, in order. Usable as a CTE. */
export function insertEntriesSql(plan: PostingPlan, p: SqlParams): string {
  const e = plan.entries;
  return `INSERT INTO "LedgerEntry" ("txId", account, amount, kind, "jobId", "accountKind", "payeePeerId",
                                     "payoutAddress", "createdAt")
       SELECT tx, account, amount, kind, job, account_kind, peer, address, now()
         FROM unnest(${p.add(e.txId)}::uuid[], ${p.add(e.account)}::text[], ${p.add(e.amount)}::bigint[],
                     ${p.add(e.kind)}::text[], ${p.add(e.jobId)}::uuid[], ${p.add(e.accountKind)}::text[],
                     ${p.add(e.payeePeerId)}::text[], ${p.add(e.payoutAddress)}::text[]) WITH ORDINALITY
              AS e(tx, account, amount, kind, job, account_kind, peer, address, n)
        ORDER BY n
       RETURNING id`;
}

/**
 * The reservations of jobs that a statement may insert, as CTEs to put after the one (`inserted`)
 * that inserts them and returns their `id`: one `reserve` transaction (reservePostings) for each job
 * of `jobs` that it did insert (one skipped for its idempotency key reserves nothing), all under
 * `txId`. Each available balance is debited by UPDATE (the caller locked the rows and checked they
 * cover it), each reserved balance credited by upsert.
 */
export function reserveInsertedJobsSql(
  inserted: string,
  txId: string,
  jobs: readonly { id: string; accountId: string; cost: bigint }[],
  p: SqlParams,
): string[] {
  const plan = planPostings(jobs.map((j) => ({ ...reservePostings(j.accountId, j.cost), jobId: j.id })));
  const e = plan.entries;
  return [
    `reserve_rows AS (
       SELECT r.* FROM unnest(${p.add(e.jobId)}::uuid[], ${p.add(e.account)}::text[], ${p.add(e.amount)}::bigint[],
                              ${p.add(e.accountKind)}::text[], ${p.add(e.payeePeerId)}::text[],
                              ${p.add(e.payoutAddress)}::text[]) WITH ORDINALITY
                   AS r(job, account, amount, account_kind, peer, address, n)
        WHERE r.job IN (SELECT id FROM ${inserted}))`,
    `reserve_sums AS (SELECT account, SUM(amount)::bigint AS delta FROM reserve_rows GROUP BY account)`,
    `reserve_debit AS (
       UPDATE "LedgerBalance" lb SET balance = lb.balance + s.delta, "updatedAt" = now()
         FROM reserve_sums s WHERE lb.account = s.account AND s.delta < 0
       RETURNING lb.account)`,
    `reserve_credit AS (
       INSERT INTO "LedgerBalance" (account, balance, "updatedAt")
       SELECT account, delta, now() FROM reserve_sums WHERE delta >= 0
       ON CONFLICT (account) DO UPDATE SET balance = "LedgerBalance".balance + EXCLUDED.balance, "updatedAt" = now()
       RETURNING account)`,
    `reserve_entries AS (
       INSERT INTO "LedgerEntry" ("txId", account, amount, kind, "jobId", "accountKind", "payeePeerId",
                                  "payoutAddress", "createdAt")
       SELECT ${p.add(txId)}::uuid, account, amount, 'reserve', job, account_kind, peer, address, now()
         FROM reserve_rows ORDER BY n
       RETURNING id)`,
  ];
}

/** Double-entry postings and running balances. The only code that writes LedgerEntry/LedgerBalance. */
@Injectable()
export class LedgerRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Posts one balanced transaction inside the caller's (Prisma) database transaction; returns its id. */
  async post(
    tx: Tx,
    kind: LedgerEntryKind,
    postings: readonly LedgerPosting[],
    refs: { jobId?: string } = {},
  ): Promise<string> {
    const [txId] = await this.postMany(prismaRunner(tx), [{ kind, postings, jobId: refs.jobId }]);
    return txId;
  }

  /**
   * Posts several balanced transactions inside the caller's database transaction: their entries in one
   * insert, and each balance row touched once (locked in account order) with the sum of its changes.
   */
  async postMany(db: SqlRunner, transactions: readonly LedgerTransaction[]): Promise<string[]> {
    const plan = planPostings(transactions);
    if (plan.entries.account.length === 0) return plan.txIds;
    const p = new SqlParams();
    await db.query(insertEntriesSql(plan, p), p.values);
    await this.applyDeltas(db, plan.deltas);
    return plan.txIds;
  }

  /**
   * Adds each account's change to its balance row, in one statement: the existing rows locked first
   * in the one lock order (byLockOrder, the order of the statement's rows) and updated, then missing
   * rows created.
   * Exactly the rows locked are updated (not "every account given": a row another transaction
   * inserts meanwhile would then get this delta from the UPDATE and again from the INSERT … ON
   * CONFLICT). Nor one upsert for all: the check that a developer balance is not negative applies to
   * the row an INSERT proposes, i.e. to a debit alone. In READ COMMITTED the UPDATE applies to the
   * newest version of each row it locked.
   */
  applyDeltas(db: SqlRunner, deltas: ReadonlyMap<string, bigint>): Promise<void> {
    if (deltas.size === 0) return Promise.resolve();
    const accounts = [...deltas.keys()].sort((a, b) => byLockOrder({ account: a }, { account: b }));
    // The statement is sent before this returns: on a pipelined transaction it travels with
    // whatever the caller sends next (see SqlTransaction).
    const done = db.query(
      `WITH d AS (SELECT * FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS d(account, delta, n)),
       locked AS (
         SELECT lb.account FROM "LedgerBalance" lb JOIN d ON d.account = lb.account
          ORDER BY d.n FOR UPDATE OF lb),
       updated AS (
         UPDATE "LedgerBalance" lb SET balance = lb.balance + d.delta, "updatedAt" = now()
           FROM d JOIN locked l ON l.account = d.account
          WHERE lb.account = d.account
          RETURNING lb.account)
       INSERT INTO "LedgerBalance" (account, balance, "updatedAt")
       SELECT d.account, d.delta, now() FROM d
        -- An uncorrelated subquery runs once, whole, before the first row is inserted: every
        -- existing row is locked (in order) before any missing one is created.
        WHERE d.account <> ALL (coalesce((SELECT array_agg(account) FROM locked), '{}'::text[]))
        -- Created (or, if another transaction created one meanwhile, locked) in the same order.
        ORDER BY d.n
       ON CONFLICT (account) DO UPDATE SET balance = "LedgerBalance".balance + EXCLUDED.balance, "updatedAt" = now()`,
      [accounts, accounts.map((a) => (deltas.get(a) ?? 0n).toString())],
    );
    return done.then(() => undefined);
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

  /** The entries of these jobs summed per account kind and provider peer (jobChargesOf reads them). */
  async jobEntrySums(jobIds: readonly string[]): Promise<JobEntrySum[]> {
    if (jobIds.length === 0) return [];
    const rows = await this.prisma.$queryRawUnsafe<
      {
        jobId: string;
        accountKind: string | null;
        peerId: string | null;
        net: bigint;
        reservedIn: bigint;
        firstId: bigint;
      }[]
    >(
      `SELECT "jobId"::text AS "jobId", "accountKind", "payeePeerId" AS "peerId",
              SUM(amount)::bigint AS net,
              COALESCE(SUM(amount) FILTER (WHERE kind = 'reserve' AND amount > 0), 0)::bigint AS "reservedIn",
              MIN(id) AS "firstId"
         FROM "LedgerEntry"
        WHERE "jobId" = ANY($1::uuid[])
        GROUP BY "jobId", "accountKind", "payeePeerId"`,
      [...jobIds],
    );
    return rows;
  }

  /**
   * A page of the entries on some accounts (a developer's `available` and `reserved`), newest first,
   * each with the balance of its account right after it: the current balance less every later entry
   * of that account (in id order), all read in one statement so balance and entries agree.
   */
  async accountEntries(
    accounts: readonly string[],
    query: AccountLedgerQuery,
  ): Promise<AccountLedgerEntry[]> {
    const p = new SqlParams();
    const filters: string[] = [];
    if (query.beforeId !== undefined) filters.push(`e.id < ${p.add(query.beforeId.toString())}::bigint`);
    if (query.kinds && query.kinds.length > 0)
      filters.push(`e.kind = ANY(${p.add([...query.kinds])}::text[])`);
    if (query.jobId) filters.push(`e."jobId" = ${p.add(query.jobId)}::uuid`);
    if (query.from) filters.push(`e."createdAt" >= ${p.add(query.from)}::timestamptz`);
    if (query.to) filters.push(`e."createdAt" < ${p.add(query.to)}::timestamptz`);
    const limit = p.add(query.limit);
    // One branch per account (one or two), each a range of the (account, id) index: with
    // `account = ANY(…)` PostgreSQL may walk the primary key backwards through everyone's entries.
    const names = accounts.map((a) => p.add(a));
    const each = (sql: (account: string) => string): string =>
      names.map((account) => `(${sql(account)})`).join(' UNION ALL ');
    const rows = await this.prisma.$queryRawUnsafe<
      {
        id: bigint;
        txId: string;
        account: string;
        amount: bigint;
        kind: string;
        jobId: string | null;
        createdAt: Date;
        balanceAfter: bigint;
      }[]
    >(
      `WITH page AS (
         SELECT * FROM (${each(
           (account) => `SELECT e.id, e."txId"::text AS "txId", e.account, e.amount, e.kind,
                                e."jobId"::text AS "jobId", e."createdAt"
                           FROM "LedgerEntry" e
                          WHERE ${[`e.account = ${account}`, ...filters].join(' AND ')}
                          ORDER BY e.id DESC LIMIT ${limit}`,
         )}) u
          ORDER BY id DESC LIMIT ${limit}),
       -- What came after each page entry on its account, filters aside: the entries newer than the
       -- page, and those between the page's entries.
       after_page AS (${each(
         (account) => `SELECT ${account}::text AS account, SUM(e.amount)::bigint AS total
                         FROM "LedgerEntry" e
                        WHERE e.account = ${account} AND e.id > (SELECT MAX(id) FROM page)`,
       )}),
       span AS (${each(
         (account) => `SELECT e.id, SUM(e.amount) OVER (ORDER BY e.id DESC
                                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS later
                         FROM "LedgerEntry" e
                        WHERE e.account = ${account}
                          AND e.id BETWEEN (SELECT MIN(id) FROM page) AND (SELECT MAX(id) FROM page)`,
       )})
       SELECT page.*,
              (COALESCE(lb.balance, 0) - COALESCE(after_page.total, 0) - COALESCE(span.later, 0))::bigint
                AS "balanceAfter"
         FROM page
         LEFT JOIN span ON span.id = page.id
         LEFT JOIN after_page ON after_page.account = page.account
         LEFT JOIN "LedgerBalance" lb ON lb.account = page.account
        ORDER BY page.id DESC`,
      ...p.values,
    );
    return rows;
  }

  /** Sum of every entry; a correct ledger always returns 0. */
  async totalOfAllEntries(): Promise<bigint> {
    const rows = await this.prisma.$queryRaw<
      { total: bigint | null }[]
    >`SELECT SUM(amount)::bigint AS total FROM "LedgerEntry"`;
    return rows[0]?.total ?? 0n;
  }
}
