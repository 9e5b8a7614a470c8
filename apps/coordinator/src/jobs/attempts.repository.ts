import { Injectable } from '@nestjs/common';
import type { JobAttempt } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';

@Injectable()
export class AttemptsRepository {
  constructor(private readonly prisma: PrismaService) {}

  forJob(jobId: string): Promise<JobAttempt[]> {
    return this.prisma.jobAttempt.findMany({ where: { jobId }, orderBy: { attempt: 'asc' } });
  }

  /** Offers attempts to providers; attempt numbers continue after the job's earlier attempts. */
  async createOffers(jobId: string, providerIds: string[]): Promise<JobAttempt[]> {
    return this.prisma.$transaction(async (tx) => {
      const last = await tx.jobAttempt.aggregate({ where: { jobId }, _max: { attempt: true } });
      const first = (last._max.attempt ?? 0) + 1;
      const created: JobAttempt[] = [];
      for (const [i, providerId] of providerIds.entries()) {
        created.push(await tx.jobAttempt.create({ data: { jobId, attempt: first + i, providerId } }));
      }
      return created;
    });
  }
}
