// Applies the committed migrations in prisma/migrations/ with the Prisma schema engine compiled to
// WebAssembly (@prisma/schema-engine-wasm), talking to PostgreSQL through @prisma/adapter-pg.
//
//   npm run db:migrate                       # DATABASE_URL, else the URL of prisma.config.ts
//   node scripts/migrate.mjs <url>           # an explicit URL
//   import { applyMigrations } from './scripts/migrate.mjs'
//
// The engine is the one behind `prisma migrate deploy`: it keeps `_prisma_migrations` with the same
// rows (name, SHA-256 checksum of migration.sql, timestamps, logs), so the two are interchangeable.
// The .wasm is instantiated here from its bytes, so no `--experimental-wasm-modules` flag is needed
// (Node 20) and the module can be imported into a running process.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

const require = createRequire(import.meta.url);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const DEFAULT_MIGRATIONS_DIR = path.join(repoRoot, 'prisma', 'migrations');
export const DEFAULT_SCHEMA_PATH = path.join(repoRoot, 'prisma', 'schema.prisma');
export const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/gpumesh';
export const NO_FILTERS = Object.freeze({ externalTables: [], externalEnums: [] });

/** @type {Promise<typeof import('@prisma/schema-engine-wasm')> | undefined} */
let wasmModule;

/**
 * Where the engine writes the message of a Rust panic before it traps (the Prisma CLI installs the same
 * global); `engineError` reads it back.
 */
const panicRegistry = {
  message: '',
  get() {
    return this.message;
  },
  set_message(message) {
    this.message = `RuntimeError: ${message}`;
  },
};

/** Loads and instantiates the schema engine once per process (~0.3 s). */
export function loadSchemaEngine() {
  globalThis.PRISMA_WASM_PANIC_REGISTRY ??= panicRegistry;
  wasmModule ??= (async () => {
    const entry = require.resolve('@prisma/schema-engine-wasm');
    const dir = path.dirname(entry);
    /** @type {typeof import('@prisma/schema-engine-wasm') & { __wbg_set_wasm(w: unknown): void }} */
    const bg = await import(pathToFileURL(path.join(dir, 'schema_engine_bg.js')).href);
    const bytes = await readFile(path.join(dir, 'schema_engine_bg.wasm'));
    // The engine arms 10 s timers (timeouts it races against finished work) that would keep a CLI
    // process alive after the work is done: give it unref'd timers instead.
    const imports = { ...bg };
    for (const name of Object.keys(bg).filter((n) => n.startsWith('__wbg_setTimeout_'))) {
      imports[name] = (callback, ms) => {
        const timer = setTimeout(callback, ms >>> 0);
        timer.unref();
        return timer;
      };
    }
    const { instance } = await globalThis.WebAssembly.instantiate(bytes, {
      './schema_engine_bg.js': imports,
    });
    bg.__wbg_set_wasm(instance.exports);
    /** @type {() => void} */ (instance.exports.__wbindgen_start)();
    return bg;
  })();
  return wasmModule;
}

/** @type {Promise<typeof import('@prisma/driver-adapter-utils')> | undefined} */
let adapterUtils;

/** @prisma/driver-adapter-utils, resolved as the dependency of @prisma/adapter-pg (not a direct one). */
function loadAdapterUtils() {
  adapterUtils ??= (async () => {
    const fromAdapter = createRequire(require.resolve('@prisma/adapter-pg'));
    const cjs = fromAdapter.resolve('@prisma/driver-adapter-utils');
    const esm = path.join(path.dirname(cjs), 'index.mjs');
    return import(pathToFileURL(existsSync(esm) ? esm : cjs).href);
  })();
  return adapterUtils;
}

/** Returns `url` with its database name replaced. */
export function withDatabase(url, database) {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** The database name of a postgres URL. */
export function databaseName(url) {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  if (!name) throw new Error(`The database URL ${redact(url)} names no database.`);
  return name;
}

/** The URL without its password, for messages. */
export function redact(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<invalid URL>';
  }
}

const quoteIdent = (name) => `"${name.replaceAll('"', '""')}"`;

function unreachable(url, error) {
  const reason = error instanceof Error ? error.message || error.constructor.name : String(error);
  const err = new Error(
    `Cannot connect to PostgreSQL at ${redact(url)}: ${reason}. ` +
      'Start PostgreSQL or point DATABASE_URL at a running server.',
  );
  err.cause = error;
  return err;
}

/** Runs `fn` with a pg client connected to `url`, turning connection failures into a clear error. */
async function withClient(url, fn) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw unreachable(url, error);
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Creates the database of `url` if it does not exist, connecting to the `postgres` database of the
 * same server. Returns true when it was created.
 */
export async function ensureDatabase(url) {
  const name = databaseName(url);
  const adminDb = name === 'postgres' ? 'template1' : 'postgres';
  return withClient(withDatabase(url, adminDb), async (client) => {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
    } catch (error) {
      // 42P04 duplicate_database: created concurrently; 23505: the same race seen through pg_database.
      if (error && (error.code === '42P04' || error.code === '23505')) return false;
      throw error;
    }
    return true;
  });
}

// pg's OID of the internal one-byte type "char" (pg_class.relkind, pg_constraint.contype, ...) and of text.
const PG_CHAR_OID = 18;
const PG_TEXT_OID = 25;

/** Result rows (the array adapter-pg passes through) → indexes of their "char" columns. */
const charColumns = new WeakMap();

/**
 * adapter-pg 7.10 rejects columns of the internal type "char" (pg_class.relkind, pg_constraint.contype,
 * ...) which the engine's describer reads: report them to adapter-pg as text, and remember where they
 * were so `withCharColumns` can type them as Character, which the engine expects.
 */
function charAsText(result) {
  for (const r of Array.isArray(result) ? result : [result]) {
    const indexes = [];
    (r?.fields ?? []).forEach((field, i) => {
      if (field.dataTypeID === PG_CHAR_OID) {
        field.dataTypeID = PG_TEXT_OID;
        indexes.push(i);
      }
    });
    if (indexes.length > 0 && Array.isArray(r.rows)) charColumns.set(r.rows, indexes);
  }
  return result;
}

/** Patches `queryable.queryRaw` so "char" columns come back as ColumnType Character. */
function withCharColumns(queryable, characterType) {
  const queryRaw = queryable.queryRaw.bind(queryable);
  queryable.queryRaw = async (query) => {
    const resultSet = await queryRaw(query);
    for (const i of charColumns.get(resultSet.rows) ?? []) resultSet.columnTypes[i] = characterType;
    return resultSet;
  };
  return queryable;
}

class MigrationClient extends pg.Client {
  query(config, values, callback) {
    const cb = typeof values === 'function' ? values : callback;
    if (typeof cb === 'function') {
      const wrapped = (error, result) => cb(error, error ? result : charAsText(result));
      return typeof values === 'function'
        ? super.query(config, wrapped)
        : super.query(config, values, wrapped);
    }
    const out = super.query(config, values);
    return out && typeof out.then === 'function' ? out.then(charAsText) : out;
  }
}

/**
 * A migration-aware driver adapter factory for the engine, built on @prisma/adapter-pg with fixes:
 * - `executeScript` sends the whole script as one simple-protocol query (adapter-pg splits it on `;`,
 *   which breaks function bodies; the native engine also sends the script in one go);
 * - result columns of type "char" are typed Character (adapter-pg 7.10 throws on them);
 * - `connectToShadowDb` really connects to the new shadow database (adapter-pg's keeps the database of
 *   the connection string) and drops it afterwards.
 */
export async function createAdapterFactory(databaseUrl) {
  const { PrismaPg } = await import('@prisma/adapter-pg');
  const utils = await loadAdapterUtils();
  /** @type {Set<{ dispose(): Promise<void> }>} */
  const open = new Set();

  const connectTo = async (url, onDispose) => {
    const pool = new pg.Pool({
      connectionString: url,
      connectionTimeoutMillis: 10_000,
      max: 4,
      Client: MigrationClient,
    });
    pool.on('error', () => {});
    const adapter = withCharColumns(await new PrismaPg(pool).connect(), utils.ColumnTypeEnum.Character);
    const startTransaction = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolationLevel) =>
      withCharColumns(await startTransaction(isolationLevel), utils.ColumnTypeEnum.Character);
    adapter.executeScript = async (script) => {
      try {
        await pool.query(script);
      } catch (error) {
        if (typeof adapter.onError === 'function') adapter.onError(error);
        throw error;
      }
    };
    let disposed = false;
    adapter.dispose = async () => {
      if (disposed) return;
      disposed = true;
      open.delete(adapter);
      await pool.end();
      await onDispose?.();
    };
    open.add(adapter);
    return adapter;
  };

  const factory = {
    provider: 'postgres',
    adapterName: '@prisma/adapter-pg',
    connect: () => connectTo(databaseUrl),
    connectToShadowDb: async () => {
      const shadow = `prisma_migrate_shadow_db_${globalThis.crypto.randomUUID()}`;
      await withClient(databaseUrl, (c) => c.query(`CREATE DATABASE ${quoteIdent(shadow)}`));
      return connectTo(withDatabase(databaseUrl, shadow), () =>
        withClient(databaseUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(shadow)} WITH (FORCE)`)),
      );
    },
  };
  return {
    bound: utils.bindMigrationAwareSqlAdapterFactory(factory),
    /** Closes every connection pool the engine opened (the engine does not dispose them itself). */
    async close() {
      for (const adapter of [...open]) await adapter.dispose().catch(() => {});
    },
  };
}

/** Reads a migrations directory the way the Prisma CLI does (sorted by directory name). */
export async function readMigrationsList(migrationsDir = DEFAULT_MIGRATIONS_DIR) {
  const baseDir = path.resolve(migrationsDir);
  const lockPath = 'migration_lock.toml';
  const lockContent = await readFile(path.join(baseDir, lockPath), 'utf8').catch(() => null);
  const entries = await readdir(baseDir, { withFileTypes: true }).catch(() => []);
  const migrationDirectories = [];
  for (const entry of entries.filter((e) => e.isDirectory())) {
    const file = 'migration.sql';
    const content = await readFile(path.join(baseDir, entry.name, file), 'utf8').then(
      (value) => ({ tag: 'ok', value }),
      (error) => ({ tag: 'error', value: error.message }),
    );
    migrationDirectories.push({ path: entry.name, migrationFile: { path: file, content } });
  }
  migrationDirectories.sort((a, b) => a.path.localeCompare(b.path));
  return {
    baseDir,
    lockfile: { path: lockPath, content: lockContent },
    shadowDbInitScript: '',
    migrationDirectories,
  };
}

/** Turns an engine error (a JS Error or a JSON string) into a readable Error. */
function engineError(error, url) {
  const panic = globalThis.PRISMA_WASM_PANIC_REGISTRY?.get?.();
  if (panic) {
    globalThis.PRISMA_WASM_PANIC_REGISTRY.message = '';
    const err = new Error(`The schema engine panicked (${redact(url)}): ${panic}`);
    err.cause = error;
    return err;
  }
  if (error instanceof Error) return error;
  let message = String(error);
  try {
    const parsed = JSON.parse(message);
    message = parsed.message ?? parsed.error ?? message;
    if (parsed.error_code) message = `${parsed.error_code}: ${message}`;
  } catch {
    // not JSON
  }
  return new Error(`Schema engine error on ${redact(url)}: ${message}`);
}

/**
 * Runs `fn(engine)` with a schema engine connected to `databaseUrl`, and frees everything afterwards.
 * @template T
 * @param {string} databaseUrl
 * @param {(engine: import('@prisma/schema-engine-wasm').SchemaEngine) => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withSchemaEngine(databaseUrl, fn) {
  const wasm = await loadSchemaEngine();
  const adapter = await createAdapterFactory(databaseUrl);
  const logs = [];
  let engine;
  try {
    engine = await wasm.SchemaEngine.new({ datamodels: undefined }, (line) => logs.push(line), adapter.bound);
    return await fn(engine);
  } catch (error) {
    throw engineError(error, databaseUrl);
  } finally {
    engine?.free();
    await adapter.close();
  }
}

/**
 * Applies the unapplied migrations of `migrationsDir` to `databaseUrl` (creating the database if it
 * does not exist) and returns the names of those applied now (empty when up to date).
 * @param {string} databaseUrl
 * @param {{ migrationsDir?: string }} [options]
 * @returns {Promise<{ applied: string[] }>}
 */
export async function applyMigrations(databaseUrl, options = {}) {
  if (!databaseUrl) throw new Error('applyMigrations: no database URL given.');
  await ensureDatabase(databaseUrl);
  const migrationsList = await readMigrationsList(options.migrationsDir ?? DEFAULT_MIGRATIONS_DIR);
  return withSchemaEngine(databaseUrl, async (engine) => {
    const out = await engine.applyMigrations({ migrationsList, filters: NO_FILTERS });
    return { applied: out.appliedMigrationNames };
  });
}

/** DATABASE_URL (also from .env), else the default of prisma.config.ts. */
export async function defaultDatabaseUrl() {
  if (!process.env.DATABASE_URL) {
    try {
      const dotenv = await import('dotenv');
      dotenv.config({ path: path.join(repoRoot, '.env'), quiet: true });
    } catch {
      // dotenv is optional here
    }
  }
  return process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const url = process.argv[2] || (await defaultDatabaseUrl());
  const started = performance.now();
  try {
    const { applied } = await applyMigrations(url);
    const ms = Math.round(performance.now() - started);
    if (applied.length === 0) console.log(`Database ${redact(url)} is up to date (${ms} ms).`);
    else
      console.log(
        `Applied ${applied.length} migration(s) to ${redact(url)} in ${ms} ms:\n  ${applied.join('\n  ')}`,
      );
  } catch (error) {
    console.error(`db:migrate failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
