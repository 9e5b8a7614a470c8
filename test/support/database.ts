// A fresh, migrated PostgreSQL database per test file, on the real server of the machine
// (TEST_DATABASE_ADMIN_URL, default postgresql://postgres@127.0.0.1:5432/postgres, trust auth).
//
// Migrating a database with the schema engine takes ~1.5 s; copying a migrated one takes ~0.2 s. So the
// committed migrations are applied once, to a template database named after their content
// (gpumesh_template_<hash of prisma/migrations>), and each test database is a copy of it
// (CREATE DATABASE ... TEMPLATE): the same tables and the same _prisma_migrations rows. A change to
// any migration makes a new hash, hence a new template. What a migration seeds at random is drawn
// again in each copy (RESEED), else every test database would be the same marketplace.
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { loadMigrate } from '../../apps/coordinator/src/infra/embedded/migrations.js';

export const TEST_DATABASE_ADMIN_URL =
  process.env.TEST_DATABASE_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  /** URL of the new database. */
  url: string;
  name: string;
  /** Migrations applied to it. */
  applied: string[];
  /** Drops the database (WITH (FORCE): open connections are terminated). Idempotent. */
  drop(): Promise<void>;
}

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Runs `sql` on the admin database. */
export async function adminQuery(sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_ADMIN_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new Error(
      `Cannot reach the test PostgreSQL at ${TEST_DATABASE_ADMIN_URL} (${(error as Error).message}). ` +
        'Start it (see .ci/run) or set TEST_DATABASE_ADMIN_URL.',
      { cause: error },
    );
  }
  try {
    return await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Run in each copy of the template: the random values the migrations seed, drawn again as they drew
 * them (prisma/migrations/20261206151848_marketplace_identity: the marketplace id, from which a
 * coordinator derives its queue prefix). A migration that seeds another random value adds it here.
 */
const RESEED = `UPDATE "Marketplace"
  SET "id" = substr(md5(random()::text || clock_timestamp()::text), 1, 12), "createdAt" = CURRENT_TIMESTAMP`;

/** PostgreSQL error codes a concurrent creator of the same database name produces. */
const DUPLICATE_DATABASE = new Set(['42P04', '23505']);

interface MigratedTemplate {
  name: string;
  /** The migrations in it, oldest first (what applyMigrations reported on an empty database). */
  migrations: string[];
}

let template: Promise<MigratedTemplate> | undefined;

/** The committed migrations (directory names, oldest first) and a hash of their names and SQL. */
async function committedMigrations(): Promise<{ names: string[]; hash: string }> {
  const dir = (await loadMigrate()).DEFAULT_MIGRATIONS_DIR;
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort((a, b) => a.localeCompare(b));
  const hash = createHash('sha256');
  for (const name of names) {
    hash.update(`${name}\0`);
    hash.update(await readFile(join(dir, name, 'migration.sql')));
    hash.update('\0');
  }
  return { names, hash: hash.digest('hex').slice(0, 16) };
}

/** Renames a database, waiting out the last connections of the migrator closing (55006). */
async function renameDatabase(from: string, to: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await adminQuery(`ALTER DATABASE ${quoteIdent(from)} RENAME TO ${quoteIdent(to)}`);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== '55006' || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * The migrated template of this checkout's migrations, made once per server: the first process to
 * need it migrates a scratch database and renames it into place, so a template that exists is
 * complete (a process that dies half-way leaves only a scratch database, never a broken template).
 */
function migratedTemplate(): Promise<MigratedTemplate> {
  template ??= (async () => {
    const { names, hash } = await committedMigrations();
    const name = `gpumesh_template_${hash}`;
    const found = await adminQuery(`SELECT 1 FROM pg_database WHERE datname = '${name}'`);
    if (found.rowCount) return { name, migrations: names };
    const scratch = `gpumesh_scratch_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
    await adminQuery(`CREATE DATABASE ${quoteIdent(scratch)}`);
    try {
      await (await loadMigrate()).applyMigrations(withDatabase(TEST_DATABASE_ADMIN_URL, scratch));
      await renameDatabase(scratch, name);
    } catch (error) {
      await adminQuery(`DROP DATABASE IF EXISTS ${quoteIdent(scratch)} WITH (FORCE)`).catch(() => undefined);
      // Another process renamed its scratch copy into place first: use that one.
      if (!DUPLICATE_DATABASE.has((error as { code?: string }).code ?? '')) throw error;
    }
    return { name, migrations: names };
  })();
  template.catch(() => {
    template = undefined;
  });
  return template;
}

/**
 * Creates `gpumesh_test_<random>` with prisma/migrations applied (a copy of the migrated template).
 * @param options.migrate false to get an empty database (to test the migrator itself)
 */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `gpumesh_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const source = options.migrate === false ? undefined : await migratedTemplate();
  await adminQuery(
    source
      ? `CREATE DATABASE ${quoteIdent(name)} TEMPLATE ${quoteIdent(source.name)}`
      : `CREATE DATABASE ${quoteIdent(name)}`,
  );
  const url = withDatabase(TEST_DATABASE_ADMIN_URL, name);
  let dropped: Promise<void> | undefined;
  const drop = (): Promise<void> =>
    (dropped ??= adminQuery(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`).then(
      () => undefined,
    ));
  if (source) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    try {
      await client.connect();
      await client.query(RESEED);
    } catch (error) {
      await drop().catch(() => undefined);
      throw error;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return { url, name, applied: source ? [...source.migrations] : [], drop };
}
