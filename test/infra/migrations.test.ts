import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findProjectRoot, loadMigrate } from '../../apps/coordinator/src/infra/embedded/migrations.js';
import { adminQuery, createTestDatabase, type TestDatabase } from '../support/database.js';

const root = findProjectRoot();
const migrationsDir = path.join(root, 'prisma', 'migrations');
const committed = readdirSync(migrationsDir, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

interface MigrationNewModule {
  diffMigrationsToSchema(options: { databaseUrl: string }): Promise<string>;
}

describe('migrations on the real PostgreSQL', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('applies every committed migration, then nothing on a second run', async () => {
    const { applyMigrations } = await loadMigrate();
    const started = performance.now();
    const first = await applyMigrations(db.url);
    const firstMs = performance.now() - started;
    expect(first.applied).toEqual(committed);
    expect((await applyMigrations(db.url)).applied).toEqual([]);
    console.info(`[timing] applyMigrations on PostgreSQL 15: ${Math.round(firstMs)} ms`);
  });

  it('records _prisma_migrations rows as prisma migrate deploy does (SHA-256 checksums)', async () => {
    const { rows } = await client.query<{
      migration_name: string;
      checksum: string;
      finished_at: Date | null;
      rolled_back_at: Date | null;
      applied_steps_count: number;
      logs: string | null;
    }>('SELECT * FROM _prisma_migrations ORDER BY migration_name');
    expect(rows.map((r) => r.migration_name)).toEqual(committed);
    for (const row of rows) {
      const sql = readFileSync(path.join(migrationsDir, row.migration_name, 'migration.sql'));
      expect(row.checksum).toBe(createHash('sha256').update(sql).digest('hex'));
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.rolled_back_at).toBeNull();
      expect(row.applied_steps_count).toBe(1);
      expect(row.logs).toBeNull();
    }
  });

  it('makes JobEvent and LedgerEntry append-only, but TRUNCATE works', async () => {
    await client.query(
      `INSERT INTO "Account" (id, address) VALUES ('00000000-0000-4000-8000-000000000001', '0xabc')`,
    );
    await client.query(`INSERT INTO "Job" (id, "accountId", kind, spec, "specHash", "workUnits", "pricePerUnit", cost,
      "deadlineAt", "updatedAt") VALUES ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001',
      'matmul', '{}', 'h', 1, 1, 1, now() + interval '1 hour', now())`);
    await client.query(
      `INSERT INTO "JobEvent" ("jobId", type) VALUES ('00000000-0000-4000-8000-000000000002', 'created')`,
    );
    await client.query(`INSERT INTO "LedgerEntry" ("txId", account, amount, kind)
      VALUES ('00000000-0000-4000-8000-000000000003', 'system:mint', -5, 'mint')`);

    await expect(client.query(`UPDATE "JobEvent" SET type = 'x'`)).rejects.toThrow(
      /"JobEvent" is append-only: UPDATE/,
    );
    await expect(client.query(`DELETE FROM "JobEvent"`)).rejects.toThrow(/"JobEvent" is append-only: DELETE/);
    await expect(client.query(`UPDATE "LedgerEntry" SET amount = 0`)).rejects.toThrow(
      /"LedgerEntry" is append-only: UPDATE/,
    );
    await expect(client.query(`DELETE FROM "LedgerEntry"`)).rejects.toThrow(/"LedgerEntry" is append-only/);
    // the cascade from deleting a job with events is rejected as well
    await expect(client.query(`DELETE FROM "Job"`)).rejects.toThrow(/append-only/);

    await client.query('TRUNCATE "JobEvent", "LedgerEntry"');
    expect((await client.query('SELECT count(*)::int AS n FROM "JobEvent"')).rows[0].n).toBe(0);
    await client.query('TRUNCATE "Job", "Account" CASCADE');
  });

  it('keeps acct:* balances non-negative; system accounts may go negative', async () => {
    await client.query(
      `INSERT INTO "LedgerBalance" (account, balance, "updatedAt") VALUES ('system:mint', -100, now())`,
    );
    await client.query(
      `INSERT INTO "LedgerBalance" (account, balance, "updatedAt") VALUES ('acct:a:available', 5, now())`,
    );
    await expect(
      client.query(`UPDATE "LedgerBalance" SET balance = -1 WHERE account = 'acct:a:available'`),
    ).rejects.toThrow(/LedgerBalance_acct_nonnegative/);
    await client.query('TRUNCATE "LedgerBalance"');
  });

  it('creates a missing database', async () => {
    const name = `gpumesh_test_create_${process.pid}_${Date.now().toString(36)}`;
    const url = new URL(db.url);
    url.pathname = `/${name}`;
    try {
      const { applied } = await (await loadMigrate()).applyMigrations(url.toString());
      expect(applied).toEqual(committed);
    } finally {
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    }
  });

  it('fails clearly when PostgreSQL is unreachable', async () => {
    const { applyMigrations } = await loadMigrate();
    await expect(applyMigrations('postgresql://postgres@127.0.0.1:1/nope')).rejects.toThrow(
      /Cannot connect to PostgreSQL at postgresql:\/\/postgres@127\.0\.0\.1:1\/postgres: .*ECONNREFUSED/,
    );
  });

  it('has migrations in sync with schema.prisma (db:migration:new would write nothing)', async () => {
    const mod = (await import(
      pathToFileURL(path.join(root, 'scripts', 'migration-new.mjs')).href
    )) as MigrationNewModule;
    expect(await mod.diffMigrationsToSchema({ databaseUrl: db.url })).toBe('');
  });
});
