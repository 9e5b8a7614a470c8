import type { FastifyServerOptions } from 'fastify';
import type { FastifyHelmetOptions } from '@fastify/helmet';
import type { AppConfig } from '../config/config.js';

/** How often Node checks requests against the headers and request timeouts (its default is 30 s). */
export const TIMEOUT_CHECK_INTERVAL_MS = 1_000;

/**
 * Server timeouts that cut off slow clients: a client that trickles its headers is dropped after
 * `HTTP_HEADERS_TIMEOUT_MS`, one that trickles its body gets 408 and a closed connection after
 * `HTTP_REQUEST_TIMEOUT_MS`, idle keep-alive connections close after `HTTP_KEEP_ALIVE_TIMEOUT_MS`, and
 * `HTTP_IDLE_TIMEOUT_MS` (when set) destroys sockets silent in both directions.
 */
export function httpTimeouts(
  config: Pick<
    AppConfig,
    | 'HTTP_HEADERS_TIMEOUT_MS'
    | 'HTTP_REQUEST_TIMEOUT_MS'
    | 'HTTP_KEEP_ALIVE_TIMEOUT_MS'
    | 'HTTP_IDLE_TIMEOUT_MS'
  >,
): Pick<FastifyServerOptions, 'connectionTimeout' | 'requestTimeout' | 'keepAliveTimeout'> & {
  http: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number };
} {
  return {
    connectionTimeout: config.HTTP_IDLE_TIMEOUT_MS,
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    http: {
      headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_INTERVAL_MS, config.HTTP_HEADERS_TIMEOUT_MS),
    },
  };
}

/** `TRUST_PROXY` as Fastify takes it (a hop count becomes "trust the nearest n hops"). */
export function trustProxyOption(
  value: boolean | number | string[],
): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof value === 'number') return (_address: string, hop: number) => hop < value;
  return value;
}

/**
 * Security headers (helmet) on every response: a strict CSP for the dashboard and the docs (Swagger UI
 * needs inline scripts and styles), nosniff, frame and referrer policies. Served over https
 * (`PUBLIC_URL` https://…) the CSP also upgrades insecure requests and HSTS is sent; over plain http
 * neither is, since a browser on a LAN host would then fetch the dashboard's assets over https and
 * show a blank page (browsers exempt only localhost).
 */
export function helmetOptions(publicUrl?: string): FastifyHelmetOptions {
  const https = publicUrl?.startsWith('https://') === true;
  return {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'", "'unsafe-inline'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        frameAncestors: ["'none'"],
        upgradeInsecureRequests: https ? [] : null,
      },
    },
    strictTransportSecurity: https,
  };
}
