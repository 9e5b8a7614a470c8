// The coordinator's SQL layer on a test database, without Nest: for repository tests that drive
// SqlService (and Prisma) directly against real PostgreSQL.
import type pg from 'pg';
import pino from 'pino';
import type { RuntimeEndpoints } from '../../apps/coordinator/src/config/runtime-endpoints.js';
import { SqlService, createDatabasePool } from '../../apps/coordinator/src/database/sql.service.js';

export interface TestSql {
  readonly pool: pg.Pool;
  readonly sql: SqlService;
  readonly endpoints: RuntimeEndpoints;
}

/** A pipelined pool of 4 connections on `databaseUrl` and the SqlService over it (silent logs). */
export function openTestSql(databaseUrl: string): TestSql {
  const endpoints = { databaseUrl, databasePoolSize: 4, embeddedDatabase: false } as RuntimeEndpoints;
  const logger = pino({ level: 'silent' });
  const pool = createDatabasePool(endpoints, logger);
  return { pool, sql: new SqlService(pool, endpoints, logger), endpoints };
}
