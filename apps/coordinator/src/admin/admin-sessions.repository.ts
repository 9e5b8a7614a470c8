import { Injectable } from '@nestjs/common';
import type { Account, Session } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

/**
 * Dashboard sessions live in the Session table (only the SHA-256 of the cookie's token is stored).
 * Read here without the auth cache, so signing out or a role change takes effect at once.
 */
@Injectable()
export class AdminSessionsRepository {
  constructor(private readonly prisma: PrismaService) {}

  create(accountId: string, tokenHash: string, expiresAt: Date): Promise<Session> {
    return this.prisma.session.create({ data: { accountId, tokenHash, expiresAt } });
  }

  find(tokenHash: string): Promise<(Session & { account: Account }) | null> {
    return this.prisma.session.findUnique({ where: { tokenHash }, include: { account: true } });
  }

  async revoke(tokenHash: string, now: Date): Promise<void> {
    await this.prisma.session.updateMany({ where: { tokenHash, revokedAt: null }, data: { revokedAt: now } });
  }
}
