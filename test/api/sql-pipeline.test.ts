// SqlService.transaction on a pipelined pool (real PostgreSQL): BEGIN travels with the first
// statement and COMMIT with the last ones, a failing statement still rolls everything back and
// reports its own error, the connection goes back usable, and LedgerRepository.applyDeltas (one
// statement: lock, update, insert the missing rows) keeps balances exact under concurrent updates.
import type { Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlService, SqlTransaction } from '../../apps/coordinator/src/database/sql.service.js';
import { LedgerRepository } from '../../apps/coordinator/src/ledger/ledger.repository.js';
import type { PrismaService } from '../../apps/coordinator/src/database/prisma.service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { openTestSql } from '../support/sql.js';

let database: TestDatabase;
let pool: pg.Pool;
let sql: SqlService;
let ledger: LedgerRepository;

beforeAll(async () => {
  database = await createTestDatabase();
  ({ pool, sql } = openTestSql(database.url));
  // applyDeltas runs on the SqlRunner it is given; Prisma is not used on that path.
  ledger = new LedgerRepository(null as unknown as PrismaService);
  await sql.query(`CREATE TABLE pipe_test (id int PRIMARY KEY, note text NOT NULL)`);
});

afterAll(async () => {
  await sql?.onApplicationShutdown();
  await database?.drop();
});

/** Counts the statements written to the connection before the previous one answered. */
async function countOverlapped(work: (tx: SqlTransaction) => Promise<void>): Promise<number> {
  let inFlight = 0;
  let overlapped = 0;
  const original = pg.Client.prototype.query;
  const spy = function (this: pg.Client, ...args: unknown[]): unknown {
    if (inFlight > 0) overlapped += 1;
    inFlight += 1;
    const result = (original as (...a: unknown[]) => Promise<unknown>).apply(this, args);
    return result.finally(() => (inFlight -= 1));
  };
  pg.Client.prototype.query = spy as typeof original;
  try {
    await sql.transaction(work);
  } finally {
    pg.Client.prototype.query = original;
  }
  return overlapped;
}

async function balanceOf(account: string): Promise<bigint | null> {
  const rows = await sql.query<{ balance: bigint }>(
    `SELECT balance FROM "LedgerBalance" WHERE account = $1`,
    [account],
  );
  return rows[0]?.balance ?? null;
}

describe('pipelined transactions', () => {
  it('sends BEGIN with the first statement and COMMIT with the last, and commits', async () => {
    const overlapped = await countOverlapped(async (tx) => {
      await tx.query(`SELECT count(*) FROM pipe_test`);
      await Promise.all([
        tx.query(`INSERT INTO pipe_test VALUES (1, 'a')`),
        tx.query(`INSERT INTO pipe_test VALUES (2, 'b')`),
        tx.commit(),
      ]);
    });
    // BEGIN → SELECT, then INSERT → INSERT → COMMIT: three statements went out behind another.
    expect(overlapped).toBe(3);
    const rows = await sql.query<{ id: number }>(`SELECT id FROM pipe_test ORDER BY id`);
    expect(rows.map((r) => r.id)).toEqual([1, 2]);
  });

  it('sends the statements of one event-loop turn in one socket write', async () => {
    const client = await pool.connect();
    try {
      const socket = (client as unknown as { connection: { stream: Socket } }).connection.stream;
      let writes = 0;
      const s = socket as unknown as {
        _write: (...a: unknown[]) => unknown;
        _writev: (...a: unknown[]) => unknown;
      };
      const [write, writev] = [s._write.bind(socket), s._writev.bind(socket)];
      s._write = (...a) => ((writes += 1), write(...a));
      s._writev = (...a) => ((writes += 1), writev(...a));
      await Promise.all([client.query('BEGIN'), client.query('SELECT 1'), client.query('COMMIT')]);
      expect(writes).toBe(1); // pg alone: one write per statement
    } finally {
      client.release();
    }
  });

  it('rolls back everything when a pipelined statement fails, and reports that statement', async () => {
    const failed = sql.transaction(async (tx) => {
      await Promise.all([
        tx.query(`INSERT INTO pipe_test VALUES (3, 'c')`),
        tx.query(`INSERT INTO pipe_test VALUES (1, 'duplicate')`),
        tx.query(`INSERT INTO pipe_test VALUES (4, 'd')`),
        tx.commit(),
      ]);
    });
    await expect(failed).rejects.toThrow(/duplicate key value violates unique constraint/);
    const rows = await sql.query<{ id: number }>(`SELECT id FROM pipe_test ORDER BY id`);
    expect(rows.map((r) => r.id)).toEqual([1, 2]);
    // Every pooled connection is clean: each runs a transaction of its own again.
    await Promise.all(
      [5, 6, 7, 8].map((id) =>
        sql.transaction((tx) => tx.query(`INSERT INTO pipe_test VALUES ($1, 'ok')`, [id])),
      ),
    );
    expect((await sql.query(`SELECT id FROM pipe_test WHERE note = 'ok'`)).length).toBe(4);
  });

  it('rolls back when work throws before COMMIT, with statements still in flight', async () => {
    const failed = sql.transaction(async (tx) => {
      void tx.query(`INSERT INTO pipe_test VALUES (9, 'e')`);
      throw new Error('changed my mind');
    });
    await expect(failed).rejects.toThrow('changed my mind');
    expect(await sql.query(`SELECT id FROM pipe_test WHERE id = 9`)).toEqual([]);
  });

  it('refuses a statement after COMMIT was sent (it would run outside the transaction)', async () => {
    const misuse = sql.transaction(async (tx) => {
      void tx.commit();
      await tx.query(`INSERT INTO pipe_test VALUES (10, 'late')`);
    });
    await expect(misuse).rejects.toThrow('a statement after COMMIT was sent');
    expect(await sql.query(`SELECT id FROM pipe_test WHERE id = 10`)).toEqual([]);
  });

  it('fails a COMMIT of an aborted transaction with the error that aborted it', async () => {
    const failed = sql.transaction(async (tx) => {
      void tx.query(`SELECT 1 / 0`).catch(() => undefined); // the caller ignores this failure
      await tx.commit();
    });
    await expect(failed).rejects.toThrow(/division by zero/);
  });
});

describe('LedgerRepository.applyDeltas in one statement', () => {
  it('creates missing rows, updates existing ones, and refuses to overdraw a developer account', async () => {
    const dev = 'acct:00000000-0000-4000-8000-000000000001:available';
    const provider = 'provider:12D3KooWtest:earned';
    await sql.transaction((tx) => ledger.applyDeltas(tx, new Map([[dev, 100n]])));
    await sql.transaction((tx) =>
      ledger.applyDeltas(
        tx,
        new Map([
          [dev, -30n],
          [provider, 30n],
        ]),
      ),
    );
    expect(await balanceOf(dev)).toBe(70n);
    expect(await balanceOf(provider)).toBe(30n);
    await expect(sql.transaction((tx) => ledger.applyDeltas(tx, new Map([[dev, -71n]])))).rejects.toThrow(
      /check constraint/,
    );
    const missing = 'acct:00000000-0000-4000-8000-000000000002:available';
    await expect(sql.transaction((tx) => ledger.applyDeltas(tx, new Map([[missing, -1n]])))).rejects.toThrow(
      /check constraint/,
    );
    expect(await balanceOf(dev)).toBe(70n);
    expect(await balanceOf(missing)).toBeNull();
  });

  it('adds every concurrent delta exactly once, rows created meanwhile included', async () => {
    const shared = ['system:fees', 'provider:12D3KooWa:earned', 'provider:12D3KooWb:earned'];
    const rounds = 60;
    await Promise.all(
      Array.from({ length: rounds }, (_, i) =>
        sql.transaction(async (tx) => {
          // Each transaction touches the rows in another order; the statement locks them in one.
          const order = i % 2 === 0 ? shared : [...shared].reverse();
          await Promise.all([
            ledger.applyDeltas(tx, new Map(order.map((account, k) => [account, BigInt(k + 1)]))),
            tx.commit(),
          ]);
        }),
      ),
    );
    // Every transaction added 1, 2, 3 in its own order; per account the sum over rounds is fixed.
    const total = await sql.query<{ balance: bigint }>(
      `SELECT sum(balance)::bigint AS balance FROM "LedgerBalance" WHERE account = ANY($1::text[])`,
      [shared],
    );
    expect(total[0].balance).toBe(BigInt(rounds * 6));
    for (const account of shared) {
      const even = BigInt(shared.indexOf(account) + 1) * BigInt(rounds / 2);
      const odd = BigInt(shared.length - shared.indexOf(account)) * BigInt(rounds / 2);
      expect(await balanceOf(account)).toBe(even + odd);
    }
  });
});
