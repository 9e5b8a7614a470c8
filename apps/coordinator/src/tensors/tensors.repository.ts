import { Injectable } from '@nestjs/common';
import type { Tensor } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

/** The only writer of `Tensor`: which account uploaded which tensor bytes, as which dtype and shape. */
@Injectable()
export class TensorsRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Records that `accountId` uploaded these bytes; a second upload of them relabels dtype and shape. */
  upsert(row: {
    accountId: string;
    sha256: string;
    dtype: string;
    shape: readonly number[];
    bytes: number;
  }): Promise<Tensor> {
    const data = { dtype: row.dtype, shape: [...row.shape], bytes: BigInt(row.bytes) };
    return this.prisma.tensor.upsert({
      where: { accountId_sha256: { accountId: row.accountId, sha256: row.sha256 } },
      create: { accountId: row.accountId, sha256: row.sha256, ...data },
      update: data,
    });
  }

  find(accountId: string, sha256: string): Promise<Tensor | null> {
    return this.prisma.tensor.findUnique({ where: { accountId_sha256: { accountId, sha256 } } });
  }

  /** Bytes of tensors `accountId` keeps (its quota use). */
  async bytesOf(accountId: string): Promise<bigint> {
    const sum = await this.prisma.tensor.aggregate({ where: { accountId }, _sum: { bytes: true } });
    return sum._sum.bytes ?? 0n;
  }
}
