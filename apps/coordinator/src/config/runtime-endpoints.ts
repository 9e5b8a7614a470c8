/** Where PostgreSQL and Redis are, resolved before Nest boots (embedded defaults or configured servers). */
export interface RuntimeEndpoints {
  databaseUrl: string;
  databasePoolSize: number;
  redisUrl: string;
  embeddedDatabase: boolean;
  embeddedRedis: boolean;
}

export const RUNTIME_ENDPOINTS = Symbol('RUNTIME_ENDPOINTS');
