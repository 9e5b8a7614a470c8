// Isolation on the real Redis of the machine (TEST_REDIS_URL, default redis://127.0.0.1:6379): each test
// gets its own BullMQ prefix, and cleanup() deletes every key under it.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pingRedis } from '../../apps/coordinator/src/infra/embedded/embedded-redis.js';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A unique BullMQ `prefix` (BullMQ's default is `bull`). */
export function uniquePrefix(label = 'test'): string {
  return `gpumesh-test:${label}:${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

export interface TestRedis {
  url: string;
  /** Pass as `prefix` to Queue / Worker / FlowProducer. */
  prefix: string;
  /** A connection suitable for BullMQ (`maxRetriesPerRequest: null`). Closed by cleanup(). */
  connection: Redis;
  /** A new BullMQ-suitable connection (workers need their own); closed by cleanup(). */
  newConnection(): Redis;
  /** Deletes the keys under the prefix and closes the connections. */
  cleanup(): Promise<void>;
}

export async function createTestRedis(label?: string): Promise<TestRedis> {
  const prefix = uniquePrefix(label);
  const connections: Redis[] = [];
  const newConnection = (): Redis => {
    const c = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    connections.push(c);
    return c;
  };
  if (!(await pingRedis(TEST_REDIS_URL, 1000))) {
    throw new Error(
      `Cannot reach the test Redis at ${TEST_REDIS_URL}. Start it (see .ci/run) or set TEST_REDIS_URL.`,
    );
  }
  const connection = newConnection();
  return {
    url: TEST_REDIS_URL,
    prefix,
    connection,
    newConnection,
    async cleanup() {
      let cursor = '0';
      do {
        const [next, keys] = await connection.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
        if (keys.length > 0) await connection.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
      await Promise.all(connections.map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}
