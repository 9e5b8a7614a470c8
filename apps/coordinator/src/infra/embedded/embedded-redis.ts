// Redis for a zero-setup start: REDIS_URL if given, else a Redis already answering on 127.0.0.1:6379,
// else a private redis-server started by redis-memory-server from the system binary.
import { existsSync } from 'node:fs';
import net from 'node:net';
import { RedisMemoryServer } from 'redis-memory-server';

export interface ResolveRedisOptions {
  /** Use this Redis as is (e.g. REDIS_URL). */
  url?: string;
  /** Where to look for a running Redis first; default redis://127.0.0.1:6379. */
  probeUrl?: string;
  /** Probe timeout in ms; default 300. */
  probeTimeoutMs?: number;
  /** redis-server binary for the embedded one; default REDISMS_SYSTEM_BINARY, else /usr/bin/redis-server. */
  systemBinary?: string;
}

export interface ResolvedRedis {
  url: string;
  /** True when this call started a private redis-server (stopped by stop()). */
  embedded: boolean;
  /** Stops the embedded server; a no-op for an external Redis. Idempotent. */
  stop(): Promise<void>;
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
const DEFAULT_SYSTEM_BINARY = '/usr/bin/redis-server';

/** True when a Redis at `url` answers PING (with no credentials) within `timeoutMs`. */
export function pingRedis(url: string, timeoutMs = 300): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname || '127.0.0.1', port: Number(port || 6379) });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** Starts a private, non-persistent redis-server on a free port of 127.0.0.1. */
export async function startEmbeddedRedis(systemBinary?: string): Promise<ResolvedRedis> {
  const binary = systemBinary ?? process.env.REDISMS_SYSTEM_BINARY ?? DEFAULT_SYSTEM_BINARY;
  const fail = (reason: string): Error =>
    new Error(
      `No Redis available: none answered on ${DEFAULT_REDIS_URL} and an embedded redis-server could not ` +
        `start (${reason}). Install Redis (e.g. \`apt-get install redis-server\`, binary at ${DEFAULT_SYSTEM_BINARY} ` +
        'or set REDISMS_SYSTEM_BINARY) or set REDIS_URL to a running Redis.',
    );
  // Without an existing binary redis-memory-server would try to download and build Redis.
  if (!existsSync(binary)) throw fail(`${binary} does not exist`);
  let server: RedisMemoryServer;
  try {
    server = await RedisMemoryServer.create({
      binary: { systemBinary: binary },
      instance: { ip: '127.0.0.1', args: ['--save', '', '--appendonly', 'no'] },
    });
  } catch (error) {
    throw fail(error instanceof Error ? error.message : String(error));
  }
  const url = `redis://${await server.getHost()}:${await server.getPort()}`;
  let stopping: Promise<void> | undefined;
  return {
    url,
    embedded: true,
    stop: () =>
      (stopping ??= server.stop().then(
        () => undefined,
        () => undefined,
      )),
  };
}

/**
 * Picks the Redis to use: `url` if given; else the one answering on 127.0.0.1:6379; else an embedded
 * redis-server. Throws a clear error when none of these works.
 */
export async function resolveRedis(options: ResolveRedisOptions = {}): Promise<ResolvedRedis> {
  const external = (url: string): ResolvedRedis => ({ url, embedded: false, stop: async () => undefined });
  if (options.url) return external(options.url);
  const probeUrl = options.probeUrl ?? DEFAULT_REDIS_URL;
  if (await pingRedis(probeUrl, options.probeTimeoutMs ?? 300)) return external(probeUrl);
  return startEmbeddedRedis(options.systemBinary);
}
