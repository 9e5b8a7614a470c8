import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '#prisma';
import { RUNTIME_ENDPOINTS, type RuntimeEndpoints } from '../runtime-endpoints.js';

/** The one Prisma client of the process. Only repositories inject it. */
@Injectable()
export class PrismaService extends PrismaClient implements OnModuleDestroy {
  constructor(@Inject(RUNTIME_ENDPOINTS) endpoints: RuntimeEndpoints) {
    super({
      adapter: new PrismaPg({ connectionString: endpoints.databaseUrl, max: endpoints.databasePoolSize }),
    });
  }

  async onModuleDestroy(): Promise<void> {
    await this.$disconnect();
  }
}
