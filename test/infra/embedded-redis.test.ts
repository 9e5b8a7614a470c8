import net from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  pingRedis,
  resolveRedis,
  startEmbeddedRedis,
} from '../../apps/coordinator/src/infra/embedded/embedded-redis.js';
import { createTestRedis } from '../support/redis.js';

const REAL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('resolveRedis', () => {
  it('uses an explicit url as is', async () => {
    const r = await resolveRedis({ url: 'redis://example.invalid:6390' });
    expect(r).toMatchObject({ url: 'redis://example.invalid:6390', embedded: false });
    await r.stop();
  });

  it('picks the Redis answering on 127.0.0.1:6379', async () => {
    const r = await resolveRedis({ probeUrl: REAL });
    expect(r).toMatchObject({ url: REAL, embedded: false });
  });

  it('starts an embedded redis-server when nothing answers, and stops it', async () => {
    const probeUrl = `redis://127.0.0.1:${await closedPort()}`;
    const started = performance.now();
    const r = await resolveRedis({ probeUrl });
    console.info(`[timing] embedded redis-server start ${Math.round(performance.now() - started)} ms`);
    expect(r.embedded).toBe(true);
    expect(r.url).not.toBe(probeUrl);
    expect(await pingRedis(r.url)).toBe(true);
    await r.stop();
    expect(await pingRedis(r.url)).toBe(false);
  });

  it('says how to fix it when no redis-server can start', async () => {
    await expect(startEmbeddedRedis('/nonexistent/redis-server')).rejects.toThrow(
      /No Redis available.*\/nonexistent\/redis-server does not exist.*REDIS_URL/s,
    );
  });
});

describe('test/support/redis', () => {
  it('isolates keys under a unique prefix and removes them on cleanup', async () => {
    const t = await createTestRedis('infra');
    await t.connection.set(`${t.prefix}:k`, '1');
    expect(await t.connection.get(`${t.prefix}:k`)).toBe('1');
    const probe = await createTestRedis('probe');
    expect(probe.prefix).not.toBe(t.prefix);
    await t.cleanup();
    expect(await probe.connection.exists(`${t.prefix}:k`)).toBe(0);
    await probe.cleanup();
  });
});
