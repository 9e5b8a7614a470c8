import { Injectable } from '@nestjs/common';
import type { Provider, ProviderStatus } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

@Injectable()
export class ProvidersRepository {
  constructor(private readonly prisma: PrismaService) {}

  list(filter: { statuses?: ProviderStatus[]; limit: number }): Promise<Provider[]> {
    return this.prisma.provider.findMany({
      where: filter.statuses ? { status: { in: filter.statuses } } : {},
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
}
