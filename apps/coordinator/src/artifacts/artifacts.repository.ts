import { Injectable } from '@nestjs/common';
import type { Artifact, Prisma } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

export type ArtifactMeta = Omit<Artifact, 'weights'>;

/** An artifact as one account sees it: its metadata and that account's standing. */
export interface ArtifactView {
  readonly meta: ArtifactMeta;
  /** The account uploaded these bytes itself. */
  readonly owned: boolean;
  /** The account's own upload is public (owners), or some owner made it public (everyone else). */
  readonly public: boolean;
  /** When the account uploaded it (owners), or when its earliest public owner did (everyone else). */
  readonly since: Date;
}

/** The keys of a listing page: newest upload first. */
export interface ArtifactCursor {
  readonly createdAt: Date;
  readonly hash: string;
}

const META_SELECT = {
  hash: true,
  format: true,
  sizeBytes: true,
  modelJson: true,
  createdAt: true,
} as const satisfies Prisma.ArtifactSelect;

/** The only writer of `Artifact` and `ArtifactOwner`. */
@Injectable()
export class ArtifactsRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * The artifact `hash` as `accountId` may see it: null unless the account owns it or any owner made
   * it public (a private artifact of someone else is indistinguishable from a missing one).
   */
  async findVisible(hash: string, accountId: string): Promise<ArtifactView | null> {
    const [own, shared] = await Promise.all([
      this.prisma.artifactOwner.findUnique({
        where: { hash_accountId: { hash, accountId } },
        select: { public: true, createdAt: true },
      }),
      this.prisma.artifactOwner.findFirst({
        where: { hash, public: true },
        orderBy: { createdAt: 'asc' },
        select: { createdAt: true },
      }),
    ]);
    if (!own && !shared) return null;
    const meta = await this.prisma.artifact.findUnique({ where: { hash }, select: META_SELECT });
    if (!meta) return null;
    return own
      ? { meta, owned: true, public: own.public, since: own.createdAt }
      : { meta, owned: false, public: true, since: shared?.createdAt ?? meta.createdAt };
  }

  /** The artifacts `accountId` uploaded, newest first, after `before`. */
  async listOwned(
    accountId: string,
    page: { limit: number; before?: ArtifactCursor },
  ): Promise<ArtifactView[]> {
    const before = page.before;
    const rows = await this.prisma.artifactOwner.findMany({
      where: {
        accountId,
        ...(before
          ? {
              OR: [
                { createdAt: { lt: before.createdAt } },
                { createdAt: before.createdAt, hash: { lt: before.hash } },
              ],
            }
          : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { hash: 'desc' }],
      take: page.limit,
      select: { public: true, createdAt: true, artifact: { select: META_SELECT } },
    });
    return rows.map((r) => ({ meta: r.artifact, owned: true, public: r.public, since: r.createdAt }));
  }

  /** The metadata of `hash`, whoever owns it (admins). */
  findMeta(hash: string): Promise<ArtifactMeta | null> {
    return this.prisma.artifact.findUnique({ where: { hash }, select: META_SELECT });
  }

  /** The whole artifact (weights included), whoever owns it: for serving offered jobs and references. */
  findWhole(hash: string): Promise<Artifact | null> {
    return this.prisma.artifact.findUnique({ where: { hash } });
  }

  /**
   * Stores the bytes once (a second upload of the same content keeps the first copy) and records
   * `accountId` as an owner. `created` is about the account's ownership, not the bytes: an account
   * cannot learn from it that someone else uploaded the same model. `isPublic` undefined keeps an
   * existing owner's flag (new owners start private).
   */
  async insertOwned(data: {
    hash: string;
    format: string;
    modelJson: unknown;
    weights: Uint8Array;
    accountId: string;
    isPublic: boolean | undefined;
  }): Promise<{ created: boolean }> {
    return this.prisma.$transaction(async (tx) => {
      await tx.artifact.createMany({
        data: [
          {
            hash: data.hash,
            format: data.format,
            sizeBytes: data.weights.byteLength,
            modelJson: data.modelJson as Prisma.InputJsonValue,
            weights: new Uint8Array(data.weights),
          },
        ],
        skipDuplicates: true,
      });
      const inserted = await tx.artifactOwner.createMany({
        data: [{ hash: data.hash, accountId: data.accountId, public: data.isPublic ?? false }],
        skipDuplicates: true,
      });
      if (inserted.count === 0 && data.isPublic !== undefined) {
        await tx.artifactOwner.update({
          where: { hash_accountId: { hash: data.hash, accountId: data.accountId } },
          data: { public: data.isPublic },
        });
      }
      return { created: inserted.count === 1 };
    });
  }

  /** Sets the public flag of `accountId`'s upload of `hash`; false when the account does not own it. */
  async setPublic(hash: string, accountId: string, isPublic: boolean): Promise<boolean> {
    const updated = await this.prisma.artifactOwner.updateMany({
      where: { hash, accountId },
      data: { public: isPublic },
    });
    return updated.count === 1;
  }
}
