import { Injectable } from '@nestjs/common';
import type { Prisma } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

@Injectable()
export class SettingsRepository {
  constructor(private readonly prisma: PrismaService) {}

  async all(): Promise<{ key: string; value: unknown; updatedBy: string | null; updatedAt: Date }[]> {
    return this.prisma.setting.findMany({ orderBy: { key: 'asc' } });
  }

  async put(key: string, value: unknown, updatedBy: string | null): Promise<void> {
    const json = value as Prisma.InputJsonValue;
    await this.prisma.setting.upsert({
      where: { key },
      create: { key, value: json, updatedBy },
      update: { value: json, updatedBy },
    });
  }

  async remove(key: string): Promise<void> {
    await this.prisma.setting.deleteMany({ where: { key } });
  }
}
