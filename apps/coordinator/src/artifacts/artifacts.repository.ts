import { Injectable } from '@nestjs/common';
import type { Artifact, Prisma } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

export type ArtifactMeta = Omit<Artifact, 'weights'>;

@Injectable()
export class ArtifactsRepository {
  constructor(private readonly prisma: PrismaService) {}

  findMeta(hash: string): Promise<ArtifactMeta | null> {
    return this.prisma.artifact.findUnique({
      where: { hash },
      select: {
        hash: true,
        format: true,
        sizeBytes: true,
        modelJson: true,
        accountId: true,
        createdAt: true,
      },
    });
  }

  findWhole(hash: string): Promise<Artifact | null> {
    return this.prisma.artifact.findUnique({ where: { hash } });
  }

  /** Stores an artifact once; a second upload of the same content is a no-op. */
  async insertIfAbsent(data: {
    hash: string;
    format: string;
    modelJson: unknown;
    weights: Uint8Array;
    accountId: string;
  }): Promise<{ created: boolean }> {
    const result = await this.prisma.artifact.createMany({
      data: [
        {
          hash: data.hash,
          format: data.format,
          sizeBytes: data.weights.byteLength,
          modelJson: data.modelJson as Prisma.InputJsonValue,
          weights: new Uint8Array(data.weights),
          accountId: data.accountId,
        },
      ],
      skipDuplicates: true,
    });
    return { created: result.count === 1 };
  }
}
