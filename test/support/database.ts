// A fresh, migrated PostgreSQL database per test file, on the real server of the machine
// (TEST_DATABASE_ADMIN_URL, default postgresql://postgres@127.0.0.1:5432/postgres, trust auth).
import { randomBytes } from 'node:crypto';
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
 * Creates `gpumesh_test_<random>` and applies prisma/migrations to it.
 * @param options.migrate false to get an empty database (to test the migrator itself)
 */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `gpumesh_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${quoteIdent(name)}`);
  const url = withDatabase(TEST_DATABASE_ADMIN_URL, name);
  let dropped: Promise<void> | undefined;
  const drop = (): Promise<void> =>
    (dropped ??= adminQuery(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`).then(
      () => undefined,
    ));
  try {
    const applied =
      options.migrate === false ? [] : (await (await loadMigrate()).applyMigrations(url)).applied;
    return { url, name, applied, drop };
  } catch (error) {
    await drop().catch(() => undefined);
    throw error;
  }
}
