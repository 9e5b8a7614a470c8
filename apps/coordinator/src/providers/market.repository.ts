import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service.js';

/** Reads the prices of live providers (never writes). */
@Injectable()
export class MarketRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Price per work unit and backend of each ONLINE provider whose advert arrived after `since`. */
  livePrices(since: Date): Promise<{ pricePerUnit: bigint; backend: string }[]> {
    return this.prisma.provider.findMany({
      where: { status: 'ONLINE', lastSeenAt: { gt: since } },
      select: { pricePerUnit: true, backend: true },
    });
  }
}
