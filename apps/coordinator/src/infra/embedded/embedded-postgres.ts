// Embedded PostgreSQL for a zero-setup start: PGlite (PostgreSQL compiled to WebAssembly) persisted in
// a data directory and served on the PostgreSQL wire protocol, so the normal stack (pg +
// @prisma/adapter-pg + the schema engine) talks to it through an ordinary postgresql:// URL.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { applyMigrations } from './migrations.js';
import { useSessionQueue } from './session-queue.js';

export interface EmbeddedPostgresOptions {
  /** Directory of the PGlite cluster (created if missing), e.g. `.data/pglite`. */
  dataDir: string;
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Apply prisma/migrations before returning; default true. */
  migrate?: boolean;
  /** Concurrent wire connections; default 32 (below 10, parallel queries fail, see TOOLCHAIN.md). */
  maxConnections?: number;
}

export interface EmbeddedPostgres {
  /** `postgresql://postgres@<host>:<port>/postgres`, for pg / @prisma/adapter-pg / the schema engine. */
  url: string;
  host: string;
  port: number;
  /** Migrations applied by this start (empty when the data dir was up to date). */
  applied: string[];
  /** Milliseconds to open PGlite, and to apply migrations. */
  timings: { startMs: number; migrateMs: number };
  /** Stops the server, closes PGlite (flushing the data dir) and releases the lock. Idempotent. */
  stop(): Promise<void>;
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** A pid lock file next to the data dir: PGlite has none, and two processes would corrupt the cluster. */
async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const lockFile = `${dataDir}.lock`;
  try {
    await writeFile(lockFile, String(process.pid), { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const owner = Number.parseInt(await readFile(lockFile, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) {
      throw new Error(
        `The embedded PostgreSQL data dir ${dataDir} is in use by process ${owner}; stop it or use another dir.`,
      );
    }
    if (owner === process.pid) {
      throw new Error(`The embedded PostgreSQL data dir ${dataDir} is already open in this process.`);
    }
    await writeFile(lockFile, String(process.pid));
  }
  return () => rm(lockFile, { force: true });
}

/** Starts PGlite on `dataDir`, serves it on `host:port` and (by default) applies the migrations. */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const host = options.host ?? '127.0.0.1';
  await mkdir(path.dirname(dataDir), { recursive: true });
  const unlock = await lockDataDir(dataDir);

  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  const close = async (): Promise<void> => {
    await server?.stop().catch(() => undefined);
    if (db && !db.closed) await db.close();
    await unlock();
  };

  try {
    const started = performance.now();
    db = await PGlite.create({ dataDir });
    server = new PGLiteSocketServer({
      db,
      host,
      port: options.port ?? 0,
      maxConnections: Math.max(options.maxConnections ?? 32, 10),
    });
    useSessionQueue(server, db);
    await server.start();
    const port = Number(server.getServerConn().split(':').pop());
    const startMs = Math.round(performance.now() - started);
    const url = `postgresql://postgres@${host}:${port}/postgres`;

    const migrateStarted = performance.now();
    const applied = options.migrate === false ? [] : (await applyMigrations(url)).applied;
    const migrateMs = Math.round(performance.now() - migrateStarted);

    let stopping: Promise<void> | undefined;
    return {
      url,
      host,
      port,
      applied,
      timings: { startMs, migrateMs },
      stop: () => (stopping ??= close()),
    };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}
