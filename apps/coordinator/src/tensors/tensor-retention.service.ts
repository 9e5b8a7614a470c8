import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { LOGGER } from '../logging/logger.js';
import { TensorsRepository } from './tensors.repository.js';
import { TensorsService } from './tensors.service.js';

/** How often the sweep runs (the `retention` queue's repeatable job). */
export const TENSOR_SWEEP_EVERY_MS = 15 * 60 * 1000;
/**
 * A file no row names is deleted only once it has not been written for this long: an upload or an
 * output between its file and its row, or a crash between deleting a row and its file, is not
 * mistaken for garbage. Temporaries idle this long are deleted too.
 */
export const ORPHAN_FILE_GRACE_MS = 60 * 60 * 1000;
/** Rows deleted per statement. */
const BATCH = 500;

/** What one sweep deleted. */
export interface SweepReport {
  /** Rows past their retention: uploads and outputs by ref. */
  readonly uploads: number;
  readonly outputs: number;
  /** Bytes those rows named (a file shared with a row that stays is not deleted). */
  readonly rowBytes: number;
  /** Files deleted: of the rows above, and orphans (no row, not written for ORPHAN_FILE_GRACE_MS). */
  readonly files: number;
  readonly fileBytes: number;
  readonly orphans: number;
  /** Outputs of completed jobs that had no row (a failed adoption) given to their account again. */
  readonly readopted: number;
  readonly temporaries: number;
}

/**
 * Tensor retention: deletes uploads not used for TENSOR_RETENTION_DAYS and outputs by ref
 * OUTPUT_RETENTION_DAYS after their job finished (or a job last named them), never one a job that has
 * not finished names; each row first, in a statement that checks that, then its file if nothing else
 * references it (`TensorsService.removeFileIfUnreferenced`). Files no row names (a crash between the
 * two, a canary's or a failed job's outputs) are deleted once idle for ORPHAN_FILE_GRACE_MS.
 */
@Injectable()
export class TensorRetentionService {
  constructor(
    private readonly tensors: TensorsService,
    private readonly repo: TensorsRepository,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async sweep(now = new Date()): Promise<SweepReport> {
    const uploadMs = this.tensors.retentionMs('upload');
    const outputMs = this.tensors.retentionMs('output');
    let uploads = 0;
    let outputs = 0;
    let rowBytes = 0;
    let files = 0;
    let fileBytes = 0;
    if (uploadMs !== null || outputMs !== null) {
      const uploadsBefore = uploadMs === null ? null : new Date(now.getTime() - uploadMs);
      const outputsBefore = outputMs === null ? null : new Date(now.getTime() - outputMs);
      for (;;) {
        const deleted = await this.repo.deleteExpired(uploadsBefore, outputsBefore, BATCH);
        for (const row of deleted) {
          if (row.jobId === null) uploads++;
          else outputs++;
          rowBytes += Number(row.bytes);
        }
        for (const sha256 of new Set(deleted.map((r) => r.sha256))) {
          const removed = await this.removeFile(sha256);
          if (removed !== undefined) {
            files++;
            fileBytes += removed;
          }
        }
        if (deleted.length < BATCH) break;
      }
    }
    const orphans = await this.sweepOrphans(now, outputMs);
    const temporaries = await this.tensors.files.removeStaleTemporaries(
      new Date(now.getTime() - ORPHAN_FILE_GRACE_MS),
    );
    const report: SweepReport = {
      uploads,
      outputs,
      rowBytes,
      files: files + orphans.files,
      fileBytes: fileBytes + orphans.bytes,
      orphans: orphans.files,
      readopted: orphans.readopted,
      temporaries,
    };
    this.logger.info(report, 'tensor retention sweep');
    return report;
  }

  /**
   * Files idle for ORPHAN_FILE_GRACE_MS that no row names: an output a completed job names (within
   * the output retention) gets its row back; any other is deleted if nothing references it.
   */
  private async sweepOrphans(
    now: Date,
    outputMs: number | null,
  ): Promise<{ files: number; bytes: number; readopted: number }> {
    const idleSince = new Date(now.getTime() - ORPHAN_FILE_GRACE_MS);
    const idle = (await this.tensors.files.list()).filter((f) => f.modifiedAt < idleSince);
    let files = 0;
    let bytes = 0;
    let readopted = 0;
    for (let i = 0; i < idle.length; i += BATCH) {
      const batch = idle.slice(i, i + BATCH);
      const named = await this.repo.withRows(batch.map((f) => f.sha256));
      const unnamed = batch.filter((f) => !named.has(f.sha256));
      if (unnamed.length === 0) continue;
      // the job that returned an output finished after its file was written
      const since = new Date(
        Math.max(
          Math.min(...unnamed.map((f) => f.modifiedAt.getTime())),
          outputMs === null ? 0 : now.getTime() - outputMs,
        ),
      );
      for (const job of await this.repo.completedNaming(
        unnamed.map((f) => f.sha256),
        since,
      )) {
        readopted += await this.tensors.adoptOutputs(job);
      }
      for (const file of unnamed) {
        const removed = await this.removeFile(file.sha256, idleSince);
        if (removed !== undefined) {
          files++;
          bytes += removed;
        }
      }
    }
    return { files, bytes, readopted };
  }

  private async removeFile(sha256: string, writtenBefore?: Date): Promise<number | undefined> {
    return this.tensors.removeFileIfUnreferenced(sha256, writtenBefore).catch((err: unknown) => {
      this.logger.warn({ err, sha256 }, 'could not delete a tensor file; the next sweep tries again');
      return undefined;
    });
  }
}
