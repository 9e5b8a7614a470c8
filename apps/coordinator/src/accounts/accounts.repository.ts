import { Injectable } from '@nestjs/common';
import { Prisma, type Account, type AccountRole, type EscrowUnlock } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

@Injectable()
export class AccountsRepository {
  constructor(private readonly prisma: PrismaService) {}

  findById(id: string): Promise<Account | null> {
    return this.prisma.account.findUnique({ where: { id } });
  }

  findByAddress(address: string): Promise<Account | null> {
    return this.prisma.account.findUnique({ where: { address: address.toLowerCase() } });
  }

  /** The account's pending escrow unlock, or null (written by the escrow watcher, SettlementRepository). */
  escrowUnlock(id: string): Promise<EscrowUnlock | null> {
    return this.prisma.escrowUnlock.findUnique({ where: { accountId: id } });
  }

  /** Stores the account's default verification policy; null returns it to the platform default. */
  async setVerificationDefault(id: string, policy: object | null): Promise<void> {
    await this.prisma.account.update({
      where: { id },
      data: { verificationDefault: policy === null ? Prisma.DbNull : (policy as Prisma.InputJsonValue) },
    });
  }

  /** The system account that owns canary jobs (created on first use). */
  canaryAccount(address: string): Promise<Account> {
    return this.prisma.account.upsert({ where: { address }, create: { address }, update: {} });
  }

  /** Creates the account of an address on first sign-in; promotes it when it is a configured admin. */
  upsertByAddress(address: string, role: AccountRole): Promise<Account> {
    const normalized = address.toLowerCase();
    return this.prisma.account.upsert({
      where: { address: normalized },
      create: { address: normalized, role },
      update: role === 'ADMIN' ? { role } : {},
    });
  }
}
