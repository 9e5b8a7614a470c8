import { Injectable } from '@nestjs/common';
import type { Account, AccountRole, ApiKey, Session } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

export type ApiKeyWithAccount = ApiKey & { account: Account };
export type SessionWithAccount = Session & { account: Account };

/** Nonces, sessions and API keys. Secrets never reach this layer: only their SHA-256 hashes. */
@Injectable()
export class AuthRepository {
  constructor(private readonly prisma: PrismaService) {}

  async createNonce(nonce: string, expiresAt: Date): Promise<void> {
    await this.prisma.authNonce.create({ data: { nonce, expiresAt } });
  }

  /** Marks a nonce used; true only for the first use of an unexpired nonce. */
  async consumeNonce(nonce: string, now: Date): Promise<boolean> {
    const result = await this.prisma.authNonce.updateMany({
      where: { nonce, usedAt: null, expiresAt: { gt: now } },
      data: { usedAt: now },
    });
    return result.count === 1;
  }

  async createSession(accountId: string, tokenHash: string, expiresAt: Date): Promise<Session> {
    return this.prisma.session.create({ data: { accountId, tokenHash, expiresAt } });
  }

  findSessionByHash(tokenHash: string): Promise<SessionWithAccount | null> {
    return this.prisma.session.findUnique({ where: { tokenHash }, include: { account: true } });
  }

  createApiKey(data: {
    accountId: string;
    name: string;
    prefix: string;
    keyHash: string;
    role: AccountRole;
    scopes: string[];
  }): Promise<ApiKey> {
    return this.prisma.apiKey.create({ data });
  }

  findApiKeyByHash(keyHash: string): Promise<ApiKeyWithAccount | null> {
    return this.prisma.apiKey.findUnique({ where: { keyHash }, include: { account: true } });
  }

  listApiKeys(accountId: string): Promise<ApiKey[]> {
    return this.prisma.apiKey.findMany({ where: { accountId }, orderBy: { createdAt: 'desc' } });
  }

  /** Revokes a key and, in the same transaction, every session opened with it (dashboard sign-ins). */
  async revokeApiKey(id: string, accountId: string | null, now: Date): Promise<ApiKey | null> {
    const where = accountId ? { id, accountId } : { id };
    const key = await this.prisma.apiKey.findFirst({ where });
    if (!key) return null;
    if (key.revokedAt) return key;
    return this.prisma.$transaction(async (tx) => {
      await tx.session.updateMany({ where: { apiKeyId: id, revokedAt: null }, data: { revokedAt: now } });
      return tx.apiKey.update({ where: { id }, data: { revokedAt: now } });
    });
  }

  /**
   * Of these keys and sessions, those that no longer authorise anything: keys revoked or gone;
   * sessions revoked, expired, gone, or opened with a key that is revoked. Two queries, whatever the counts.
   */
  async deadCredentials(
    apiKeyIds: readonly string[],
    sessionIds: readonly string[],
    now: Date,
  ): Promise<{ apiKeyIds: string[]; sessionIds: string[] }> {
    const [keys, sessions] = await Promise.all([
      apiKeyIds.length === 0
        ? []
        : this.prisma.apiKey.findMany({
            where: { id: { in: [...apiKeyIds] }, revokedAt: null },
            select: { id: true },
          }),
      sessionIds.length === 0
        ? []
        : this.prisma.session.findMany({
            where: { id: { in: [...sessionIds] }, revokedAt: null, expiresAt: { gt: now } },
            select: { id: true, apiKeyId: true },
          }),
    ]);
    const sessionKeys = [...new Set(sessions.flatMap((s) => (s.apiKeyId ? [s.apiKeyId] : [])))];
    const liveSessionKeys = new Set(
      sessionKeys.length === 0
        ? []
        : (
            await this.prisma.apiKey.findMany({
              where: { id: { in: sessionKeys }, revokedAt: null },
              select: { id: true },
            })
          ).map((k) => k.id),
    );
    const liveKeys = new Set(keys.map((k) => k.id));
    const liveSessions = new Set(
      sessions.filter((s) => s.apiKeyId === null || liveSessionKeys.has(s.apiKeyId)).map((s) => s.id),
    );
    return {
      apiKeyIds: apiKeyIds.filter((id) => !liveKeys.has(id)),
      sessionIds: sessionIds.filter((id) => !liveSessions.has(id)),
    };
  }

  async touchApiKey(id: string, now: Date): Promise<void> {
    await this.prisma.apiKey.update({ where: { id }, data: { lastUsedAt: now } });
  }
}
