import { Injectable } from '@nestjs/common';
import type { Tensor } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

/** A job output by ref that its job's account may now name (a `Tensor` row marked with the job). */
export interface OwnedOutput {
  readonly sha256: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly bytes: number;
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
   * and makes a job's output row the account's own (no longer deleted with the job).
   */
  upsert(row: {
    accountId: string;
    sha256: string;
    dtype: string;
    shape: readonly number[];
    bytes: number;
  }): Promise<Tensor> {
    const data = { dtype: row.dtype, shape: [...row.shape], bytes: BigInt(row.bytes), jobId: null };
    return this.prisma.tensor.upsert({
      where: { accountId_sha256: { accountId: row.accountId, sha256: row.sha256 } },
      create: { accountId: row.accountId, sha256: row.sha256, ...data },
      update: data,
    });
  }

  /**
   * Gives `accountId` the outputs by ref of its job `jobId`: a row each, marked with the job, unless
   * the account already has one for those bytes (its upload, or an earlier job's output, stays).
   */
  async adoptOutputs(accountId: string, jobId: string, outputs: readonly OwnedOutput[]): Promise<number> {
    if (outputs.length === 0) return 0;
    const { count } = await this.prisma.tensor.createMany({
      data: outputs.map((o) => ({
        accountId,
        sha256: o.sha256,
        dtype: o.dtype,
        shape: [...o.shape],
        bytes: BigInt(o.bytes),
        jobId,
      })),
      skipDuplicates: true,
    });
    return count;
  }

  find(accountId: string, sha256: string): Promise<Tensor | null> {
    return this.prisma.tensor.findUnique({ where: { accountId_sha256: { accountId, sha256 } } });
  }

  /** Bytes of tensors `accountId` uploaded and keeps (its quota use; its jobs' outputs are not counted). */
  async bytesOf(accountId: string): Promise<bigint> {
    const sum = await this.prisma.tensor.aggregate({
      where: { accountId, jobId: null },
      _sum: { bytes: true },
    });
    return sum._sum.bytes ?? 0n;
  }

  /** Records that `peerId` uploaded the job output `sha256` (again: the time is renewed). */
  async recordUpload(peerId: string, sha256: string, at: Date): Promise<void> {
    await this.prisma.outputUpload.upsert({
      where: { peerId_sha256: { peerId, sha256 } },
      create: { peerId, sha256, storedAt: at },
      update: { storedAt: at },
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
