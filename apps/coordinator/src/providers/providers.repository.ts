import { Injectable } from '@nestjs/common';
import type { Prisma, Provider, ProviderStatus } from '#prisma';
import type { ProviderAdvert } from '@gpumesh/protocol';
import { PrismaService } from '../database/prisma.service.js';

@Injectable()
export class ProvidersRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Providers by status; with `liveAt`, only those whose advert has not expired by then. */
  list(filter: { statuses?: ProviderStatus[]; limit: number; liveAt?: Date }): Promise<Provider[]> {
    return this.prisma.provider.findMany({
      where: {
        ...(filter.statuses ? { status: { in: filter.statuses } } : {}),
        ...(filter.liveAt ? { advertExpiresAt: { gt: filter.liveAt } } : {}),
      },
      orderBy: [{ lastSeenAt: 'desc' }, { peerId: 'asc' }],
      take: filter.limit,
    });
  }

  /** Providers that can take work now, for placement. */
  placeable(now: Date): Promise<Provider[]> {
    return this.prisma.provider.findMany({
      where: {
        status: 'ONLINE',
        freeSlots: { gt: 0 },
        lastSeenAt: { gt: new Date(now.getTime() - 120_000) },
      },
    });
  }

  /**
   * Stores the latest accepted advert of a provider (a banned or draining provider keeps its status).
   * Its operator is its signing (staking) address; the declared operatorId stays in `advert` only.
   * `live` carries the placing worker's figures: usable stake (null: not gated) and value in flight.
   */
  async upsertFromAdvert(
    advert: ProviderAdvert,
    now: Date,
    live: { stake?: bigint | null; inFlightValue?: bigint } = {},
  ): Promise<Provider> {
    const data = {
      address: advert.address,
      operatorId: advert.address.toLowerCase(),
      ...(live.stake !== undefined ? { stake: live.stake } : {}),
      ...(live.inFlightValue !== undefined ? { inFlightValue: live.inFlightValue } : {}),
      backend: advert.backend,
      gpus: advert.gpus as unknown as Prisma.InputJsonValue,
      gflops: advert.gflops,
      pricePerUnit: BigInt(advert.pricePerUnit),
      slots: advert.slots,
      freeSlots: advert.freeSlots,
      region: advert.region ?? null,
      advert: advert as unknown as Prisma.InputJsonValue,
      advertSeq: BigInt(advert.seq),
      advertExpiresAt: new Date(advert.expiresAt),
      lastSeenAt: now,
    };
    const existing = await this.prisma.provider.findUnique({
      where: { peerId: advert.peerId },
      select: { status: true },
    });
    const status: ProviderStatus = existing && existing.status !== 'OFFLINE' ? existing.status : 'ONLINE';
    return this.prisma.provider.upsert({
      where: { peerId: advert.peerId },
      create: { peerId: advert.peerId, ...data, status },
      update: { ...data, status },
    });
  }

  /** A stake-gating worker read a new usable stake for an operator's address. */
  async setStake(address: string, stake: bigint): Promise<void> {
    await this.prisma.provider.updateMany({ where: { operatorId: address.toLowerCase() }, data: { stake } });
  }

  /**
   * Base units of work offered to or running on each provider, by every coordinator worker: Σ over
   * its open attempts (OFFERED, ACCEPTED, RUNNING) of the job's work units × the provider's price.
   */
  async openAttemptValues(peerIds: readonly string[]): Promise<Map<string, bigint>> {
    if (peerIds.length === 0) return new Map();
    const rows = await this.prisma.$queryRaw<{ peerId: string; value: bigint }[]>`
      SELECT a."providerId" AS "peerId", SUM(j."workUnits" * p."pricePerUnit")::bigint AS value
        FROM "JobAttempt" a
        JOIN "Job" j ON j.id = a."jobId"
        JOIN "Provider" p ON p."peerId" = a."providerId"
       WHERE a.state IN ('OFFERED', 'ACCEPTED', 'RUNNING') AND a."providerId" = ANY(${[...peerIds]}::text[])
       GROUP BY a."providerId"`;
    return new Map(rows.map((r) => [r.peerId, r.value]));
  }

  /** Peer ids of providers (not banned) seen since `since`, most recent first: the p2p node's known peers. */
  async seenSince(since: Date, limit: number): Promise<string[]> {
    const rows = await this.prisma.provider.findMany({
      where: { lastSeenAt: { gte: since }, status: { not: 'BANNED' } },
      select: { peerId: true },
      orderBy: { lastSeenAt: 'desc' },
      take: limit,
    });
    return rows.map((r) => r.peerId);
  }

  findByPeerId(peerId: string): Promise<Provider | null> {
    return this.prisma.provider.findUnique({ where: { peerId } });
  }

  async markOffline(peerId: string): Promise<void> {
    await this.prisma.provider.updateMany({
      where: { peerId, status: 'ONLINE' },
      data: { status: 'OFFLINE' },
    });
  }

  /**
   * ONLINE providers whose advert expired by `now` go OFFLINE (idempotent: any process may run it).
   * A provider that adverts again comes back ONLINE through upsertFromAdvert.
   */
  async markLapsed(now: Date): Promise<number> {
    const result = await this.prisma.provider.updateMany({
      where: { status: 'ONLINE', advertExpiresAt: { lte: now } },
      data: { status: 'OFFLINE' },
    });
    return result.count;
  }

  /** Providers whose last advert is older than `before` go OFFLINE. */
  async markStale(before: Date): Promise<number> {
    const result = await this.prisma.provider.updateMany({
      where: { status: 'ONLINE', lastSeenAt: { lt: before } },
      data: { status: 'OFFLINE' },
    });
    return result.count;
  }
}
