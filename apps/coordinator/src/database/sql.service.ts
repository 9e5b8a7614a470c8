import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { coalesceSocketWrites } from '@gpumesh/p2p';
import type { Prisma } from '#prisma';
import { LOGGER } from '../logging/logger.js';
import { RUNTIME_ENDPOINTS, type RuntimeEndpoints } from '../config/runtime-endpoints.js';

/**
 * Runs one SQL statement with positional parameters ($1, $2, ...) and returns its rows: on the raw
 * pool, inside a raw transaction, or inside a Prisma transaction (`prismaRunner`). Code written
 * against it runs unchanged in all three. Columns come back as Prisma returns them: int8 as bigint,
 * timestamps as Date, json as parsed values.
 */
export interface SqlRunner {
  query<T>(text: string, values?: readonly unknown[]): Promise<T[]>;
}

/**
 * A `SqlRunner` inside `SqlService.transaction`. Statements are written to the connection as they
 * are asked for, behind those still running (PostgreSQL pipelining): statements that do not need
 * each other's answers cost one round trip together when the caller sends them before awaiting.
 */
export interface SqlTransaction extends SqlRunner {
  /**
   * Sends COMMIT behind the statements already sent, so the last writes and the commit share a round
   * trip; rejects when the transaction did not commit (a statement before it failed). Optional: the
   * transaction commits after `work` returns anyway.
   */
  commit(): Promise<void>;
}

/**
 * The parameters of a statement built from parts: `add(value)` returns its placeholder (`$n`), so
 * parts written apart (e.g. several data-modifying CTEs) number their parameters correctly together.
 */
export class SqlParams {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** JSON text for a jsonb (or text) parameter: bigints as decimal strings. */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

const INT8_OID = 20;
const INT8_ARRAY_OID = 1016;
const TEXT_ARRAY_OID = 1009;

/** pg's own parser of a type (its signature takes only the built-in type ids it names). */
const builtinParser = pg.types.getTypeParser as (
  oid: number,
  format?: 'text' | 'binary',
) => (value: string) => unknown;

/** Per-query type parsers (the pool is shared with Prisma's adapter, whose parsers stay untouched). */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (oid === INT8_OID) return (value: string) => BigInt(value);
    if (oid === INT8_ARRAY_OID) {
      // Parsed as a text[] (the elements as strings), then each element as a bigint.
      const parseArray = builtinParser(TEXT_ARRAY_OID, 'text') as (value: string) => (string | null)[];
      return (value: string) => parseArray(value).map((v) => (v === null ? null : BigInt(v)));
    }
    return builtinParser(oid, format);
  },
};

/** The process's PostgreSQL pool: Prisma's adapter draws from it, and so do the hot paths' raw statements. */
export const DATABASE_POOL = Symbol('DATABASE_POOL');

export function createDatabasePool(endpoints: RuntimeEndpoints, logger: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: endpoints.databaseUrl,
    max: endpoints.databasePoolSize,
    // Statements sent while others run go out at once (see SqlTransaction); one at a time each
    // client behaves as without. The embedded database's socket takes one statement at a time.
    pipeline: !endpoints.embeddedDatabase,
  });
  // An idle connection that PostgreSQL drops (restart, admin kill) must not crash the process.
  pool.on('error', (err) => logger.warn({ err: err.message }, 'an idle database connection failed'));
  // pg writes each statement with its own system call: what one tick sends (a pipelined
  // transaction's BEGIN and first statement, its last writes and COMMIT) leaves in one write.
  pool.on('connect', (client) => {
    coalesceSocketWrites(
      (client as pg.PoolClient & { connection?: { stream?: unknown } }).connection?.stream,
      'tick',
    );
  });
  return pool;
}

/**
 * Raw SQL on the shared pool, for the statements every job runs (submission, transitions, attempts,
 * ledger postings): Prisma costs about five times the CPU of `pg` per statement (measured), and those
 * few statements were most of the coordinator's time per job. Everything else stays on Prisma.
 */
@Injectable()
export class SqlService implements SqlRunner, OnApplicationShutdown {
  /**
   * Named prepared statements belong to a database session. The embedded database (PGlite) is one
   * session behind every pooled connection, so a name one connection prepared would already exist
   * for the next: there, statements stay unnamed.
   */
  private readonly prepare: boolean;

  constructor(
    @Inject(DATABASE_POOL) private readonly pool: pg.Pool,
    @Inject(RUNTIME_ENDPOINTS) endpoints: RuntimeEndpoints,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.prepare = !endpoints.embeddedDatabase;
  }

  async query<T>(text: string, values: readonly unknown[] = []): Promise<T[]> {
    const result = await this.pool.query(this.statement(text, values));
    return result.rows as T[];
  }

  private statement(text: string, values: readonly unknown[]): pg.QueryConfig {
    const config: pg.QueryConfig = { text, values: [...values], types };
    if (this.prepare) config.name = statementName(text);
    return config;
  }

  /**
   * Runs `work` in one transaction on one pooled connection; rolls back when it throws. On a
   * pipelined pool BEGIN travels with the first statement, and `tx.commit()` with the last ones: a
   * transaction of a read, then writes, costs two round trips instead of one per statement.
   */
  async transaction<T>(work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // A connection that dies while checked out emits 'error' on its client; unheard, that would
    // crash the process. The statement in flight fails on its own; the client is then destroyed.
    const onError = (err: Error): void => {
      broken = err;
    };
    client.on('error', onError);
    // Every statement sent, settled or not: none is left running when the client goes back.
    const sent: Promise<unknown>[] = [];
    let previous: Promise<unknown> = Promise.resolve();
    let firstError: unknown;
    const send = (config: string | pg.QueryConfig): Promise<pg.QueryResult> => {
      // Unpipelined, a statement waits for the one before it (pg would queue it, with a warning).
      const result = client.pipeline ? client.query(config) : previous.then(() => client.query(config));
      previous = result.catch((err: unknown) => {
        firstError ??= err;
      });
      sent.push(previous);
      return result;
    };
    let committed: Promise<void> | undefined;
    try {
      const begun = send('BEGIN');
      const tx: SqlTransaction = {
        query: async <R>(text: string, values: readonly unknown[] = []): Promise<R[]> => {
          // Behind the COMMIT it would run outside the transaction, on its own.
          if (committed !== undefined) throw new Error('a statement after COMMIT was sent');
          const result = send(this.statement(text, values));
          await begun; // a failed BEGIN is the error to report, not the statements behind it
          return (await result).rows as R[];
        },
        commit: () => {
          committed ??= send('COMMIT').then((result) => {
            // COMMIT in a transaction a failed statement aborted answers ROLLBACK, not an error:
            // the error is that statement's (answered, so recorded, before the COMMIT's answer).
            if (result.command !== 'COMMIT')
              throw firstError ?? new Error(`the transaction ended in ${result.command}`);
          });
          return committed;
        },
      };
      const result = await work(tx);
      await tx.commit();
      return result;
    } catch (err) {
      await Promise.all(sent);
      await committed?.catch(() => undefined); // its failure, if any, is `err` or follows from it
      if (committed === undefined) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          // The connection itself failed: it goes back to the pool destroyed, not reused.
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        }
      }
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool
      .end()
      .catch((err: unknown) => this.logger.warn({ err }, 'closing the database pool failed'));
  }
}

const statementNames = new Map<string, string>();

/**
 * Each distinct statement text is a named prepared statement (per connection): PostgreSQL parses and
 * plans it once instead of on every run. The hot statements are large (several data-modifying CTEs
 * over unnest), and planning them each time took most of a transition's database time.
 */
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `gm_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    statementNames.set(text, name);
  }
  return name;
}

/** A `SqlRunner` inside a Prisma interactive transaction (same statements, Prisma's connection). */
export function prismaRunner(tx: Prisma.TransactionClient): SqlRunner {
  return {
    query: <T>(text: string, values: readonly unknown[] = []) => tx.$queryRawUnsafe<T[]>(text, ...values),
  };
}
