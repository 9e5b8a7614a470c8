import { Injectable } from '@nestjs/common';
import type { Job, JobState, Prisma, Tensor } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';
import type { PlaceFile } from './tensor-files.js';

/** A job output by ref that its job's account may now name (a `Tensor` row marked with the job). */
export interface OwnedOutput {
  readonly sha256: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly bytes: number;
}

/** A `Tensor` row the retention sweep or its owner deleted. */
export interface DeletedTensor {
  readonly accountId: string;
  readonly sha256: string;
  readonly bytes: bigint;
  readonly jobId: string | null;
}

/** What still names the file of a hash, read under its file lock (`underFileLock`). */
export interface FileReferences {
  /** Some account's `Tensor` row (an upload, or a job's output). */
  readonly tensorRow: boolean;
  /** A job that has not finished names it as an input by ref. */
  readonly liveInput: boolean;
  /**
   * When the oldest job that has not finished was submitted (null: none). A file written since may
   * be an output one of them holds in memory (a redundant copy waiting for the others), not yet
   * named by any row.
   */
  readonly oldestLiveJobAt: Date | null;
}

/**
 * The states of a job that has not finished (jobs/job-state.ts: every state but its TERMINAL_STATES;
 * that layer sits above this one; job-state.spec.ts checks they agree), and as a SQL list.
 */
export const LIVE_JOB_STATES: readonly JobState[] = ['QUEUED', 'DISPATCHED', 'RUNNING', 'VERIFYING'];
const LIVE_STATES_SQL = LIVE_JOB_STATES.map((s) => `'${s}'::"JobState"`).join(', ');

/** SQL: a job of `t`'s account that has not finished names `t`'s bytes as an input by ref. */
const LIVE_JOB_OF_ACCOUNT_NAMES_IT = `EXISTS (
  SELECT 1 FROM "Job" j
   WHERE j."accountId" = t."accountId" AND j.state IN (${LIVE_STATES_SQL})
     AND j.spec->'inputs' @> jsonb_build_array(jsonb_build_object('sha256', t.sha256)))`;

/**
 * Serialises, per hash, what places a tensor file and references it (an upload and its row, an
 * output upload and its record) with what deletes it (after checking nothing references it): the
 * file of a hash is never deleted between being placed and being referenced. Taken before any row
 * lock.
 */
async function lockFile(tx: Prisma.TransactionClient, sha256: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended('tensor-file/' || ${sha256}, 0))`;
}

/**
 * The only writer of `Tensor` (which account may use which tensor bytes, as which dtype and shape:
 * its uploads, and its jobs' outputs by ref) and of `OutputUpload` (which provider uploaded which
 * job output).
 */
@Injectable()
export class TensorsRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * Records that `accountId` uploaded these bytes; a second upload of them relabels dtype and shape,
   * and makes a job's output row the account's own (no longer deleted with the job). `place` puts the
   * file under its hash, under the hash's file lock, in the same transaction.
   */
  upsert(
    row: {
      accountId: string;
      sha256: string;
      dtype: string;
      shape: readonly number[];
      bytes: number;
      finite: boolean | null;
    },
    place: PlaceFile,
  ): Promise<{ tensor: Tensor; created: boolean }> {
    const data = {
      dtype: row.dtype,
      shape: [...row.shape],
      bytes: BigInt(row.bytes),
      jobId: null,
      lastUsedAt: new Date(),
      finite: row.finite,
    };
    const where = { accountId_sha256: { accountId: row.accountId, sha256: row.sha256 } };
    return this.prisma.$transaction(async (tx) => {
      await lockFile(tx, row.sha256);
      await place();
      const before = await tx.tensor.findUnique({ where, select: { sha256: true } });
      const tensor = await tx.tensor.upsert({
        where,
        create: { accountId: row.accountId, sha256: row.sha256, ...data },
        update: data,
      });
      return { tensor, created: before === null };
    });
  }

  /**
   * Gives `accountId` the outputs by ref of its job `jobId`: a row each, marked with the job, unless
   * the account already has one for those bytes (its upload, or an earlier job's output, stays).
   */
  async adoptOutputs(
    accountId: string,
    jobId: string,
    outputs: readonly OwnedOutput[],
    finishedAt: Date,
  ): Promise<number> {
    if (outputs.length === 0) return 0;
    // A row the account already has is kept, its retention clock restarted (never turned back).
    return this.prisma.$executeRaw`
      INSERT INTO "Tensor" ("accountId", sha256, dtype, shape, bytes, "jobId", "createdAt", "updatedAt", "lastUsedAt")
      SELECT ${accountId}::uuid, o.sha256, o.dtype,
             ARRAY(SELECT d::int FROM jsonb_array_elements_text(o.shape) WITH ORDINALITY AS x(d, i) ORDER BY i), o.bytes, ${jobId}::uuid,
             now(), now(), ${finishedAt}::timestamp
        FROM jsonb_to_recordset(${JSON.stringify(outputs)}::jsonb) AS o(sha256 text, dtype text, shape jsonb, bytes bigint)
      ON CONFLICT ("accountId", sha256) DO UPDATE
        SET "lastUsedAt" = GREATEST("Tensor"."lastUsedAt", EXCLUDED."lastUsedAt")`;
  }

  /**
   * Records that every element of the float32 bytes `sha256` is finite, on every row naming them (the
   * check is of the bytes, whoever holds them), so no job reads them for it again.
   */
  async markFinite(sha256: string): Promise<void> {
    await this.prisma.tensor.updateMany({ where: { sha256, finite: null }, data: { finite: true } });
  }

  find(accountId: string, sha256: string): Promise<Tensor | null> {
    return this.prisma.tensor.findUnique({ where: { accountId_sha256: { accountId, sha256 } } });
  }

  /**
   * The row of `accountId` for these bytes, marked as used now (a job names it as an input): its
   * retention starts again, and a sweep deleting it at the same moment either sees the new time (and
   * keeps it) or deleted it first (null).
   */
  async touch(accountId: string, sha256: string): Promise<Tensor | null> {
    const { count } = await this.prisma.tensor.updateMany({
      where: { accountId, sha256 },
      data: { lastUsedAt: new Date() },
    });
    return count === 0 ? null : this.find(accountId, sha256);
  }

  /**
   * Of these hashes, those `accountId` still has a row for. Each row is read `FOR SHARE`: a deletion
   * under way (`deleteOwn`, which locks the row before it reads the jobs) is waited for.
   */
  async stillHeld(accountId: string, sha256s: readonly string[]): Promise<Set<string>> {
    if (sha256s.length === 0) return new Set();
    const rows = await this.prisma.$queryRaw<{ sha256: string }[]>`
      SELECT sha256 FROM "Tensor"
       WHERE "accountId" = ${accountId}::uuid AND sha256 = ANY(${[...sha256s]}::text[]) FOR SHARE`;
    return new Set(rows.map((r) => r.sha256));
  }

  /** One page of the account's tensors, newest first, after the (createdAt, sha256) cursor `before`. */
  page(accountId: string, limit: number, before?: { createdAt: Date; sha256: string }): Promise<Tensor[]> {
    return this.prisma.tensor.findMany({
      where: {
        accountId,
        ...(before
          ? {
              OR: [
                { createdAt: { lt: before.createdAt } },
                { createdAt: before.createdAt, sha256: { lt: before.sha256 } },
              ],
            }
          : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { sha256: 'desc' }],
      take: limit,
    });
  }

  /**
   * Deletes the row of `accountId` for these bytes unless a job of the account that has not finished
   * names them as an input (`inUse`: up to 5 such job ids); null when there is no such row. The row is
   * locked before the jobs are read, so a job submitted meanwhile is either seen or finds no row.
   */
  async deleteOwn(
    accountId: string,
    sha256: string,
  ): Promise<{ deleted: DeletedTensor } | { inUse: string[] } | null> {
    return this.prisma.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<DeletedTensor[]>`
        SELECT "accountId"::text AS "accountId", sha256, bytes, "jobId"::text AS "jobId"
          FROM "Tensor" WHERE "accountId" = ${accountId}::uuid AND sha256 = ${sha256} FOR UPDATE`;
      if (rows.length === 0) return null;
      const inUse = await tx.$queryRawUnsafe<{ id: string }[]>(
        `SELECT j.id::text AS id FROM "Job" j
          WHERE j."accountId" = $1::uuid AND j.state IN (${LIVE_STATES_SQL})
            AND j.spec->'inputs' @> jsonb_build_array(jsonb_build_object('sha256', $2::text))
          ORDER BY j."createdAt" LIMIT 5`,
        accountId,
        sha256,
      );
      if (inUse.length > 0) return { inUse: inUse.map((j) => j.id) };
      await tx.tensor.delete({ where: { accountId_sha256: { accountId, sha256 } } });
      return { deleted: rows[0] };
    });
  }

  /**
   * Deletes (at most `limit`) rows past their retention: uploads last used before `uploadsBefore`,
   * outputs last used before `outputsBefore` (null: that kind is kept), none that a job of its
   * account that has not finished names as an input (so rows such jobs hold never fill a batch). One
   * statement: a row a submission marks used meanwhile (`touch`) is re-read with its new time and kept.
   */
  deleteExpired(
    uploadsBefore: Date | null,
    outputsBefore: Date | null,
    limit: number,
  ): Promise<DeletedTensor[]> {
    return this.prisma.$queryRawUnsafe<DeletedTensor[]>(
      `DELETE FROM "Tensor" t
        WHERE (t."accountId", t.sha256) IN (
          SELECT t."accountId", t.sha256 FROM "Tensor" t
           WHERE (   (t."jobId" IS NULL AND t."lastUsedAt" < $1::timestamp)
                  OR (t."jobId" IS NOT NULL AND t."lastUsedAt" < $2::timestamp))
             AND NOT ${LIVE_JOB_OF_ACCOUNT_NAMES_IT}
           ORDER BY t."lastUsedAt" LIMIT $3)
          AND (   (t."jobId" IS NULL AND t."lastUsedAt" < $1::timestamp)
               OR (t."jobId" IS NOT NULL AND t."lastUsedAt" < $2::timestamp))
          AND NOT ${LIVE_JOB_OF_ACCOUNT_NAMES_IT}
        RETURNING t."accountId"::text AS "accountId", t.sha256, t.bytes, t."jobId"::text AS "jobId"`,
      uploadsBefore,
      outputsBefore,
      limit,
    );
  }

  /** Of these hashes, those some account has a row for. */
  async withRows(sha256s: readonly string[]): Promise<Set<string>> {
    if (sha256s.length === 0) return new Set();
    const rows = await this.prisma.tensor.findMany({
      where: { sha256: { in: [...sha256s] } },
      select: { sha256: true },
      distinct: ['sha256'],
    });
    return new Set(rows.map((r) => r.sha256));
  }

  /**
   * Completed jobs (not canaries) finished at or after `since` whose result names one of these hashes
   * as an output by ref: outputs whose row could not be written when the job completed.
   */
  completedNaming(
    sha256s: readonly string[],
    since: Date,
  ): Promise<Pick<Job, 'id' | 'accountId' | 'canary' | 'result' | 'finishedAt'>[]> {
    if (sha256s.length === 0) return Promise.resolve([]);
    return this.prisma.$queryRaw`
      SELECT j.id::text AS id, j."accountId"::text AS "accountId", j.canary, j.result, j."finishedAt"
        FROM "Job" j
       WHERE j.state = 'COMPLETED'::"JobState" AND NOT j.canary AND j."finishedAt" >= ${since}::timestamp
         AND EXISTS (SELECT 1 FROM jsonb_array_elements(
                       CASE WHEN jsonb_typeof(j.result->'outputs') = 'array' THEN j.result->'outputs' ELSE '[]'::jsonb END) o
                      WHERE o->>'sha256' = ANY(${[...sha256s]}::text[]))`;
  }

  /**
   * Runs `work` holding the file lock of `sha256` (see `lockFile`) with what references its file now:
   * deleting the file there is safe when nothing does.
   */
  underFileLock<T>(sha256: string, work: (refs: FileReferences) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(
      async (tx) => {
        await lockFile(tx, sha256);
        const [refs] = await tx.$queryRawUnsafe<
          { tensorRow: boolean; liveInput: boolean; oldestLiveJobAt: Date | null }[]
        >(
          `SELECT EXISTS (SELECT 1 FROM "Tensor" WHERE sha256 = $1) AS "tensorRow",
                  EXISTS (SELECT 1 FROM "Job" j WHERE j.state IN (${LIVE_STATES_SQL})
                           AND j.spec->'inputs' @> jsonb_build_array(jsonb_build_object('sha256', $1::text)))
                    AS "liveInput",
                  (SELECT min("createdAt") FROM "Job" WHERE state IN (${LIVE_STATES_SQL})) AS "oldestLiveJobAt"`,
          sha256,
        );
        return work(refs);
      },
      { timeout: 30_000 },
    );
  }

  /** Bytes of tensors `accountId` uploaded and keeps (its quota use; its jobs' outputs are not counted). */
  async bytesOf(accountId: string): Promise<bigint> {
    const sum = await this.prisma.tensor.aggregate({
      where: { accountId, jobId: null },
      _sum: { bytes: true },
    });
    return sum._sum.bytes ?? 0n;
  }

  /**
   * Records that `peerId` uploaded the job output `sha256` (again: the time is renewed); `place` puts
   * its file under the hash, under the hash's file lock, in the same transaction.
   */
  async recordUpload(peerId: string, sha256: string, at: Date, place: PlaceFile): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      await lockFile(tx, sha256);
      await place();
      await tx.outputUpload.upsert({
        where: { peerId_sha256: { peerId, sha256 } },
        create: { peerId, sha256, storedAt: at },
        update: { storedAt: at },
      });
    });
  }

  /** Whether `peerId` uploaded the job output `sha256` at or after `since`. */
  async uploadedSince(peerId: string, sha256: string, since: Date): Promise<boolean> {
    const row = await this.prisma.outputUpload.findUnique({ where: { peerId_sha256: { peerId, sha256 } } });
    return row !== null && row.storedAt >= since;
  }

  /** Forgets uploads recorded before `before` (results naming them are no longer taken). */
  async pruneUploads(before: Date): Promise<number> {
    const { count } = await this.prisma.outputUpload.deleteMany({ where: { storedAt: { lt: before } } });
    return count;
  }
}
