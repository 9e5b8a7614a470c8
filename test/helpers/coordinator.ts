import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig, type AppConfig } from '../../apps/coordinator/src/config/config.js';
import { createLogger } from '../../apps/coordinator/src/logging/logger.js';
import { startCoordinator, type RunningCoordinator } from '../../apps/coordinator/src/bootstrap.js';
import { createTestDatabase } from '../support/database.js';
import { pollUntil } from './poll.js';

export interface TestCoordinator {
  url: string;
  devKey: string;
  adminKey: string;
  databaseUrl: string;
  config: AppConfig;
  running: RunningCoordinator;
  close(): Promise<void>;
}

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Requests a minute per IP and per key in test coordinators (test/setup gives spawned ones the same). */
export const TEST_RATE_LIMIT = '1000000';

/**
 * A real coordinator on `databaseUrl` (already migrated; the caller owns it) with a private BullMQ
 * prefix on the real Redis and the dev accounts bootstrapped. close() leaves the database alone.
 */
export async function startCoordinatorOn(
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<TestCoordinator> {
  const dataDir = await mkdtemp(join(tmpdir(), 'gpumesh-test-'));
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    REDIS_URL: TEST_REDIS_URL,
    PORT: '0',
    QUEUE_PREFIX: `t${randomBytes(6).toString('hex')}`,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATA_DIR: dataDir,
    DEV_BOOTSTRAP: 'true',
    API_KEY_CACHE_TTL_MS: '0',
    // tests send far more than a client should; the limiter still runs (test/security covers it)
    RATE_LIMIT_PER_IP: TEST_RATE_LIMIT,
    RATE_LIMIT_PER_KEY: TEST_RATE_LIMIT,
    // Canaries are random extra jobs (and payments): tests that count money turn them on themselves.
    CANARY_RATE: '0',
    PROBATION_CANARY_RATE: '0',
    // Capacity probes are platform-paid jobs too (test/p2p/capacity-probe.test.ts turns them on).
    CAPACITY_PROBES: 'false',
    ...env,
  });
  const running = await startCoordinator(config, createLogger(config.LOG_LEVEL));
  if (!running.dev) throw new Error('dev bootstrap did not run');
  return {
    url: running.url,
    devKey: running.dev.developerKey,
    adminKey: running.dev.adminKey,
    databaseUrl,
    config,
    running,
    close: async () => {
      await running.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A real coordinator (see startCoordinatorOn) on a fresh database it drops on close(). */
export async function startTestCoordinator(env: Record<string, string> = {}): Promise<TestCoordinator> {
  const db = await createTestDatabase();
  const coordinator = await startCoordinatorOn(db.url, env);
  return {
    ...coordinator,
    close: async () => {
      await coordinator.close();
      await db.drop();
    },
  };
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

/** A small JSON client for the coordinator's REST API. */
export async function api<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  options: { key?: string; body?: unknown; headers?: Record<string, string>; rawBody?: string } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  let body: string | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed as T, headers: response.headers };
}

/** Polls `GET /v1/jobs/:id` until the job is COMPLETED; throws naming the state it ended in otherwise. */
export async function jobCompleted(
  base: string,
  key: string,
  jobId: string,
  timeoutMs = 30_000,
): Promise<void> {
  await pollUntil(
    `job ${jobId} completed`,
    async () => {
      const { state } = (await api<{ state: string }>(base, 'GET', `/v1/jobs/${jobId}`, { key })).body;
      if (['FAILED', 'EXPIRED', 'CANCELLED'].includes(state)) throw new Error(`job ${jobId} ended ${state}`);
      return state === 'COMPLETED' ? true : undefined;
    },
    timeoutMs,
  );
}
