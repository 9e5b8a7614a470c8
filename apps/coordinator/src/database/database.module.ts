import { Global, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { LOGGER } from '../logging/logger.js';
import { RUNTIME_ENDPOINTS, type RuntimeEndpoints } from '../config/runtime-endpoints.js';
import { PrismaService } from './prisma.service.js';
import { DATABASE_POOL, SqlService, createDatabasePool } from './sql.service.js';

@Global()
@Module({
  providers: [
    {
      provide: DATABASE_POOL,
      inject: [RUNTIME_ENDPOINTS, LOGGER],
      useFactory: (endpoints: RuntimeEndpoints, logger: Logger) => createDatabasePool(endpoints, logger),
    },
    PrismaService,
    SqlService,
  ],
  exports: [PrismaService, SqlService],
})
export class DatabaseModule {}
