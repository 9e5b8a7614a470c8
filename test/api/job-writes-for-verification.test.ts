// The writes the jobs lifecycle makes for verification (real PostgreSQL): a canary job and its
// job.submitted event, inserted in the caller's transaction and rolled back with it; and a result
// correction, which replaces the result of a completed job only, records job.corrected as
// transitions record their events, and runs the caller's outbox write in the same transaction.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrismaService } from '../../apps/coordinator/src/database/prisma.service.js';
import type { SqlService } from '../../apps/coordinator/src/database/sql.service.js';
import {
  JobSubmissionRepository,
  type NewCanaryJob,
} from '../../apps/coordinator/src/jobs/job-submission.repository.js';
import { JobsRepository } from '../../apps/coordinator/src/jobs/jobs.repository.js';
import type { LedgerRepository } from '../../apps/coordinator/src/ledger/ledger.repository.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { openTestSql } from '../support/sql.js';

let database: TestDatabase;
let pool: pg.Pool;
let sql: SqlService;
let prisma: PrismaService;
let jobs: JobsRepository;
let submissions: JobSubmissionRepository;
let accountId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  ({ pool, sql } = openTestSql(database.url));
  prisma = new PrismaService(pool);
  // Neither path posts to the ledger (the caller reserves a canary's cost; a correction moves no money).
  jobs = new JobsRepository(prisma, sql, null as unknown as LedgerRepository);
  submissions = new JobSubmissionRepository(sql, null);
  const [account] = await sql.query<{ id: string }>(
    `INSERT INTO "Account" (id, address, "createdAt") VALUES ($1::uuid, $2, now()) RETURNING id::text AS id`,
    [randomUUID(), '0x00000000000000000000000000000000000000c0'],
  );
  accountId = account.id;
});

afterAll(async () => {
  await prisma?.$disconnect();
  await sql?.onApplicationShutdown();
  await database?.drop();
});

function canary(): NewCanaryJob {
  return {
    id: randomUUID(),
    accountId,
    kind: 'matmul',
    spec: { version: 1, kind: 'matmul' },
    specHash: 'spec-hash',
    workUnits: 3n,
    pricePerUnit: 5n,
    cost: 15n,
    redundancy: 1,
    verification: { mode: 'none', k: 1 },
    deadlineAt: new Date(Date.now() + 60_000),
  };
}

interface EventRow {
  type: string;
  fromState: string | null;
  toState: string | null;
  data: unknown;
}

function events(jobId: string): Promise<EventRow[]> {
  return sql.query<EventRow>(
    `SELECT type, "fromState"::text AS "fromState", "toState"::text AS "toState", data
       FROM "JobEvent" WHERE "jobId" = $1::uuid ORDER BY id`,
    [jobId],
  );
}

interface JobRow {
  state: string;
  canary: boolean;
  result: unknown;
  resultHash: string | null;
  updatedAt: Date;
}

async function jobRow(id: string): Promise<JobRow | undefined> {
  const [row] = await sql.query<JobRow>(
    `SELECT state::text AS state, canary, result, "resultHash", "updatedAt" FROM "Job" WHERE id = $1::uuid`,
    [id],
  );
  return row;
}

/** A stored job in `state` with a delivered result, last updated an hour ago. */
async function storedJob(state: 'COMPLETED' | 'FAILED'): Promise<string> {
  const c = canary();
  await sql.transaction((tx) => submissions.insertCanaryIn(tx, c));
  await sql.query(
    `UPDATE "Job" SET state = $2::"JobState", result = $3::jsonb, "resultHash" = 'wrong',
                      "updatedAt" = now() - interval '1 hour'
      WHERE id = $1::uuid`,
    [c.id, state, JSON.stringify({ outputs: ['wrong'] })],
  );
  return c.id;
}

describe('canary jobs', () => {
  it("inserts the job (QUEUED, canary) and its job.submitted event in the caller's transaction", async () => {
    const c = canary();
    const job = await sql.transaction((tx) => submissions.insertCanaryIn(tx, c));
    expect(job).toMatchObject({ id: c.id, accountId, state: 'QUEUED', canary: true, cost: 15n });
    expect(await events(c.id)).toEqual([
      { type: 'job.submitted', fromState: null, toState: 'QUEUED', data: { cost: '15', workUnits: '3' } },
    ]);
  });

  it('rolls back with the transaction that inserted it', async () => {
    const c = canary();
    await expect(
      sql.transaction(async (tx) => {
        await submissions.insertCanaryIn(tx, c);
        await tx.query(`SELECT 1 / 0`);
      }),
    ).rejects.toThrow(/division by zero/);
    expect(await jobRow(c.id)).toBeUndefined();
    expect(await events(c.id)).toEqual([]);
  });
});

describe('result corrections', () => {
  const correction = (jobId: string) => ({
    jobId,
    result: { outputs: ['right'], verification: { corrected: true } },
    resultHash: 'right',
    eventData: { jobId, resultHash: 'right', refunded: 7n },
  });

  it('replace the result of a completed job, with the event and the outbox write in one transaction', async () => {
    const id = await storedJob('COMPLETED');
    const before = await jobRow(id);
    let seenInside: number | undefined;
    const corrected = await jobs.correctResult(correction(id), async (tx) => {
      // The caller's write sees the correction's event: the same, still open, transaction.
      seenInside = await tx.jobEvent.count({ where: { jobId: id, type: 'job.corrected' } });
    });
    expect(corrected).toBe(true);
    expect(seenInside).toBe(1);
    const after = await jobRow(id);
    expect(after).toMatchObject({
      state: 'COMPLETED',
      result: { outputs: ['right'], verification: { corrected: true } },
      resultHash: 'right',
    });
    expect(after?.updatedAt.getTime()).toBeGreaterThan(before?.updatedAt.getTime() ?? Infinity);
    expect((await events(id)).slice(1)).toEqual([
      {
        type: 'job.corrected',
        fromState: null,
        toState: null,
        data: { jobId: id, resultHash: 'right', refunded: '7' },
      },
    ]);
  });

  it("write nothing when the caller's outbox write fails", async () => {
    const id = await storedJob('COMPLETED');
    await expect(
      jobs.correctResult(correction(id), () => Promise.reject(new Error('outbox down'))),
    ).rejects.toThrow('outbox down');
    expect(await jobRow(id)).toMatchObject({ state: 'COMPLETED', resultHash: 'wrong' });
    expect((await events(id)).map((e) => e.type)).toEqual(['job.submitted']);
  });

  it('leave a job that is not completed alone (the state machine allows no correction there)', async () => {
    const id = await storedJob('FAILED');
    let calls = 0;
    const corrected = await jobs.correctResult(correction(id), () => Promise.resolve(calls++));
    expect(corrected).toBe(false);
    expect(calls).toBe(0);
    expect(await jobRow(id)).toMatchObject({ state: 'FAILED', resultHash: 'wrong' });
    expect((await events(id)).map((e) => e.type)).toEqual(['job.submitted']);
  });
});
