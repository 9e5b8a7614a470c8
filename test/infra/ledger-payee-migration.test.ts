// The migration that adds the payee columns to LedgerEntry fills them for the entries written before
// it, from their account names, exactly as the ledger's writer (accounts.ts payeeOf) fills them for
// new ones.
import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { payeeOf } from '../../apps/coordinator/src/ledger/accounts.js';
import { findProjectRoot, loadMigrate } from '../../apps/coordinator/src/infra/embedded/migrations.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const migrationsDir = path.join(findProjectRoot(), 'prisma', 'migrations');
const committed = readdirSync(migrationsDir, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();
const payeeMigration = committed.findIndex((name) => name.endsWith('_ledger_entry_payee'));

/** Names the ledger wrote before the migration, and a few it never writes (left unclassified). */
const ACCOUNTS = [
  'acct:7b0e5a4e-9c55-4c4e-a3a0-2f1f3f1b6d11:available',
  'acct:7b0e5a4e-9c55-4c4e-a3a0-2f1f3f1b6d11:reserved',
  'provider:12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo:earned',
  'provider:12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo:held',
  'provider:12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo:held-fee',
  'provider:0x00000000000000000000000000000000000000aa:settled:12',
  'system:mint',
  'system:fees',
  'system:escrow',
  'system:escrow-shortfall',
  'system:canary',
  'provider:0xABC:settled:1',
  'provider:p:earned:extra',
  'acct::available',
  'a',
];

describe('the LedgerEntry payee migration', () => {
  let db: TestDatabase;
  let client: pg.Client;
  let before: string;

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    before = mkdtempSync(path.join(tmpdir(), 'gpumesh-migrations-'));
    for (const name of committed.slice(0, payeeMigration)) {
      cpSync(path.join(migrationsDir, name), path.join(before, name), { recursive: true });
    }
    cpSync(path.join(migrationsDir, 'migration_lock.toml'), path.join(before, 'migration_lock.toml'));
  });
  afterAll(async () => {
    await client?.end();
    await db?.drop();
    if (before) rmSync(before, { recursive: true, force: true });
  });

  it('is committed', () => {
    expect(payeeMigration).toBeGreaterThan(0);
  });

  it('fills the payee columns of earlier entries from their account names, and keeps the names', async () => {
    const { applyMigrations } = await loadMigrate();
    await applyMigrations(db.url, { migrationsDir: before });
    const txId = randomUUID();
    // One transaction that sums to zero: the last entry balances the others.
    const amounts = ACCOUNTS.map((_, i) => BigInt(i + 1));
    amounts[amounts.length - 1] = -amounts.slice(0, -1).reduce((s, x) => s + x, 0n);
    await client.query(
      `INSERT INTO "LedgerEntry" ("txId", account, amount, kind)
       SELECT $1::uuid, a, m, 'settle' FROM unnest($2::text[], $3::bigint[]) AS t(a, m)`,
      [txId, ACCOUNTS, amounts.map(String)],
    );
    await applyMigrations(db.url);
    const { rows } = await client.query<{
      account: string;
      accountKind: string | null;
      payeePeerId: string | null;
      payoutAddress: string | null;
    }>(`SELECT account, "accountKind", "payeePeerId", "payoutAddress" FROM "LedgerEntry" ORDER BY id`);
    expect(rows.map((r) => r.account)).toEqual(ACCOUNTS);
    for (const row of rows) {
      const { account, ...columns } = row;
      expect(columns, account).toEqual(payeeOf(account));
    }
    // Still append-only after the backfill.
    await expect(client.query(`UPDATE "LedgerEntry" SET amount = 0`)).rejects.toThrow(/append-only/);
  });
});
