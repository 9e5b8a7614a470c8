import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { SwaggerModule } from '@nestjs/swagger';
import helmet from '@fastify/helmet';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { AppModule } from './app.module.js';
import { createOpenApiDocument } from './openapi.js';
import type { AppConfig } from './config/config.js';
import type { RuntimeEndpoints } from './config/runtime-endpoints.js';
import { PinoNestLogger } from './logging/logger.js';
import { createValidationPipe } from './common/pipes.js';
import { MetricsService } from './metrics/metrics.service.js';
import { startEmbeddedPostgres } from './infra/embedded/embedded-postgres.js';
import { resolveRedis } from './infra/embedded/embedded-redis.js';
import {
  claimQueuePrefix,
  derivedQueuePrefix,
  readMarketplaceId,
  STALE_AFTER_MS,
  staleQueuePrefixes,
  type QueuePrefixClaim,
} from './queue/queue-prefix.js';
import { DevBootstrapService, type DevCredentials } from './dev/dev-bootstrap.service.js';
import { resolveSettlementChain, type SettlementChain } from './settlement/settlement-chain.js';
import { registerDashboard } from './admin/dashboard-static.js';
import { registerRateLimits } from './security/rate-limit.js';
import { frameworkErrors, registerRequestGuards } from './common/request-guards.js';
import { jsonBodyParser } from './common/json-body.js';
import { NPY_MEDIA_TYPE } from '@gpumesh/protocol';
import { RAW_MEDIA_TYPE } from './tensors/tensors.service.js';
import { corsOptions } from './security/cors.js';
import { helmetOptions, httpTimeouts, trustProxyOption } from './security/server-options.js';
import { registerStaticCompression } from './common/static-compression.js';

export interface RunningCoordinator {
  app: NestFastifyApplication;
  url: string;
  endpoints: RuntimeEndpoints;
  dev: DevCredentials | null;
  /** The settlement chain of this process (a local anvil in dev), or null. */
  chain: SettlementChain | null;
  /** The admin dashboard's URL, or null when it is not built (or this is a worker). */
  dashboardUrl: string | null;
  /** The Redis key prefix this coordinator holds (QUEUE_PREFIX, or derived from the database). */
  queuePrefix: string;
  close(): Promise<void>;
}

/** Resolves PostgreSQL and Redis: the configured servers, else the embedded defaults. */
export async function resolveEndpoints(
  config: AppConfig,
  logger: Logger,
): Promise<{ endpoints: RuntimeEndpoints; stop: () => Promise<void> }> {
  const stops: (() => Promise<void>)[] = [];
  let databaseUrl = config.DATABASE_URL;
  if (!databaseUrl) {
    const started = performance.now();
    const pg = await startEmbeddedPostgres({
      dataDir: join(config.DATA_DIR, 'pglite'),
      port: 0,
      host: '127.0.0.1',
    });
    databaseUrl = pg.url;
    stops.push(() => pg.stop());
    logger.info({ ms: Math.round(performance.now() - started) }, 'embedded PostgreSQL (PGlite) ready');
  }
  const redis = await resolveRedis({ url: config.REDIS_URL });
  stops.push(() => redis.stop());
  if (redis.embedded) logger.info('embedded Redis started (nothing answered on 127.0.0.1:6379)');
  return {
    endpoints: {
      databaseUrl,
      // PGlite serves one query at a time; a big pool only queues on its socket server.
      databasePoolSize: config.DATABASE_URL ? 20 : 8,
      redisUrl: redis.url,
      embeddedDatabase: !config.DATABASE_URL,
      embeddedRedis: redis.embedded,
    },
    stop: async () => {
      for (const stop of stops.reverse()) {
        await stop().catch((err: unknown) =>
          logger.error({ err }, 'error while stopping an embedded service'),
        );
      }
    },
  };
}

/** Builds, configures and starts the coordinator's Nest application. */
export async function startCoordinator(configured: AppConfig, logger: Logger): Promise<RunningCoordinator> {
  const { endpoints, stop: stopEndpoints } = await resolveEndpoints(configured, logger);
  let stopChain = async (): Promise<void> => undefined;
  let releasePrefix = async (): Promise<void> => undefined;
  const stop = async (): Promise<void> => {
    await stopChain().catch(() => undefined);
    await releasePrefix();
    await stopEndpoints();
  };
  let app: NestFastifyApplication | undefined;
  try {
    const queue = await claimOwnQueuePrefix(configured, endpoints, logger);
    releasePrefix = queue.release;
    const config: AppConfig = { ...configured, QUEUE_PREFIX: queue.prefix };
    // Settlement on without CHAIN_RPC_URL (role all): a local anvil with the contracts deployed.
    const settlement = await resolveSettlementChain(config, logger);
    stopChain = settlement.stop;
    const adapter = new FastifyAdapter({
      bodyLimit: config.MAX_BODY_BYTES,
      logger: false,
      trustProxy: trustProxyOption(config.TRUST_PROXY),
      // Live event streams never end by themselves: a stop must not wait for their clients.
      forceCloseConnections: true,
      ...httpTimeouts(config),
      frameworkErrors: frameworkErrors(logger),
    });
    const fastify = adapter.getInstance();
    registerRequestGuards(fastify, logger);
    // Security headers first, so that every response carries them (429s and 415s included).
    await fastify.register(helmet, helmetOptions(config.PUBLIC_URL));
    // brotli/gzip for the dashboard's files and the docs (not for API responses or streams)
    registerStaticCompression(fastify);
    // First onRequest hook: over-limit requests are turned away before anything else runs.
    await registerRateLimits(fastify, {
      perIp: config.RATE_LIMIT_PER_IP,
      perKey: config.RATE_LIMIT_PER_KEY,
      redisUrl: config.RATE_LIMIT_STORE === 'redis' ? endpoints.redisUrl : null,
      namespace: config.QUEUE_PREFIX,
      logger,
    });
    fastify.addHook('onRoute', (route) => {
      if (route.url === '/v1/artifacts' && route.method === 'POST') {
        // base64 of the weights plus the model.json
        route.bodyLimit = Math.ceil(config.MAX_ARTIFACT_BYTES * 1.4) + 1024 * 1024;
      }
    });
    fastify.addHook('onRequest', async (request, reply) => {
      const hasBody =
        request.headers['content-length'] !== undefined && request.headers['content-length'] !== '0';
      if (!hasBody && request.headers['transfer-encoding'] === undefined) return;
      const type = request.headers['content-type'] ?? '';
      // Tensor uploads are streamed binary bodies; their route judges the media type itself.
      if (request.method === 'POST' && request.url.split('?')[0] === '/v1/tensors') return;
      if (!/^application\/json\s*(;|$)/i.test(type)) {
        await reply.status(415).send({
          statusCode: 415,
          error: {
            code: 'UNSUPPORTED_MEDIA_TYPE',
            message: `Content-Type must be application/json, got ${type ? type.slice(0, 100) : 'none'}`,
          },
        });
      }
    });
    app = await NestFactory.create<NestFastifyApplication>(
      AppModule.forRoot({ config, endpoints, logger, chain: settlement.chain }),
      adapter,
      {
        logger: new PinoNestLogger(logger),
        abortOnError: false,
      },
    );
    // JSON bodies: `__proto__` refused, `constructor` kept as data, and a body that cannot be used
    // reported only after authentication (json-body.ts).
    app.useBodyParser('application/json', { bodyLimit: config.MAX_BODY_BYTES }, jsonBodyParser(fastify));
    // Tensor uploads: the body stays a stream for the route to read (tensors/tensor-files.ts).
    fastify.addContentTypeParser([NPY_MEDIA_TYPE, RAW_MEDIA_TYPE], (_request, _payload, done) => done(null));
    // A tensor upload answered before its body was read (401, 403, 413, …): the unread rest would
    // be taken for the next request on a kept-alive connection, so the connection closes.
    fastify.addHook('onSend', async (request, reply, payload) => {
      if (request.method === 'POST' && !request.raw.complete) void reply.header('connection', 'close');
      return payload;
    });
    app.enableCors(corsOptions(config.CORS_ORIGINS));
    app.useGlobalPipes(createValidationPipe());
    const metrics = app.get(MetricsService);
    fastify.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      metrics.httpRequestDuration.observe(
        { method: request.method, route, status: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
    });
    // the checked-in docs/openapi.json is the same document, naming npm start's URL (openapi.ts)
    const document = createOpenApiDocument(app, '/');
    SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs/json' });
    const dashboardDir = config.ROLE === 'worker' ? null : await registerDashboard(app);
    await app.listen({ port: config.PORT, host: config.HOST });
    const address = app.getHttpServer().address();
    const port = typeof address === 'object' && address ? address.port : config.PORT;
    const url = `http://${config.HOST}:${port}`;
    const dev =
      config.DEV_BOOTSTRAP && config.ROLE !== 'worker' ? await app.get(DevBootstrapService).ensure() : null;
    const running = app;
    return {
      app: running,
      url,
      endpoints,
      dev,
      chain: settlement.chain,
      dashboardUrl: dashboardDir ? `${url}/dashboard/` : null,
      queuePrefix: config.QUEUE_PREFIX,
      close: async () => {
        await running.close();
        await stop();
      },
    };
  } catch (err) {
    await app?.close().catch(() => undefined);
    await stop();
    throw err;
  }
}

/**
 * Claims this marketplace's Redis prefix (queue/queue-prefix.ts): QUEUE_PREFIX when set, else one
 * derived from the database's marketplace id. Then reports, off the start path, prefixes nobody holds
 * (and in dev deletes the keys of those unused for an hour).
 */
async function claimOwnQueuePrefix(
  config: AppConfig,
  endpoints: RuntimeEndpoints,
  logger: Logger,
): Promise<QueuePrefixClaim> {
  const marketplaceId = await readMarketplaceId(endpoints.databaseUrl);
  const prefix = config.queuePrefixExplicit ? config.QUEUE_PREFIX : derivedQueuePrefix(marketplaceId);
  const claim = await claimQueuePrefix(endpoints.redisUrl, prefix, marketplaceId, logger);
  logger.info({ marketplaceId, queuePrefix: prefix }, 'queue prefix claimed');
  staleQueuePrefixes(endpoints.redisUrl, prefix, {
    removeOlderThanMs: config.DEV_BOOTSTRAP ? STALE_AFTER_MS : undefined,
  }).then(
    ({ stale, removedKeys }) => {
      if (stale.length === 0) return;
      logger.warn(
        {
          stale: stale.map((s) => ({ ...s, lastSeen: s.lastSeenMs && new Date(s.lastSeenMs).toISOString() })),
          removedKeys,
        },
        removedKeys > 0
          ? `removed ${removedKeys} Redis keys of queue prefixes no coordinator has used for an hour (dev)`
          : 'Redis holds keys of queue prefixes no live coordinator holds (stopped marketplaces?)',
      );
    },
    (err: unknown) => logger.warn({ err }, 'could not look for stale queue prefixes'),
  );
  return claim;
}
