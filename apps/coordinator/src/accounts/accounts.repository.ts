import { Injectable } from '@nestjs/common';
import type { Account, AccountRole } from '#prisma';
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
