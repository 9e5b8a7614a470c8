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

  /** A dashboard session, tied to the API key it was opened with (revoking the key ends it). */
  create(accountId: string, tokenHash: string, expiresAt: Date, apiKeyId: string): Promise<Session> {
    return this.prisma.session.create({ data: { accountId, tokenHash, expiresAt, apiKeyId } });
  }

  /** The session with its account, and whether the key it was opened with is revoked. */
  async find(tokenHash: string): Promise<(Session & { account: Account; keyRevoked: boolean }) | null> {
    const session = await this.prisma.session.findUnique({
      where: { tokenHash },
      include: { account: true },
    });
    if (!session) return null;
    const key = session.apiKeyId
      ? await this.prisma.apiKey.findUnique({ where: { id: session.apiKeyId }, select: { revokedAt: true } })
      : undefined;
    return { ...session, keyRevoked: key !== undefined && (key === null || key.revokedAt !== null) };
  }

  /** Revokes the session of a cookie; returns its id (null when there was none to revoke). */
  async revoke(tokenHash: string, now: Date): Promise<string | null> {
    const session = await this.prisma.session.findUnique({ where: { tokenHash }, select: { id: true } });
    if (!session) return null;
    await this.prisma.session.updateMany({
      where: { id: session.id, revokedAt: null },
      data: { revokedAt: now },
    });
    return session.id;
  }
}
