import { LoggerService } from '@nestjs/common';
import { pino, type Logger } from 'pino';

export const LOGGER = Symbol('LOGGER');

/** Fields (at the top level or one object down) whose value never reaches a log line. */
const SECRET_KEYS = [
  'secret',
  'token',
  'apiKey',
  'privateKey',
  'signerPrivateKey',
  'password',
  'passphrase',
  'cookie',
  'authorization',
  'mnemonic',
  'databaseUrl',
  'redisUrl',
  'DATABASE_URL',
  'REDIS_URL',
  'SETTLER_KEY',
  'SLASHER_KEY',
  'CHAIN_RPC_URL',
];

/** Paths that must never reach a log line. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers.cookie',
  'res.headers["set-cookie"]',
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
];

/**
 * Last line of defence for secrets inside free text (an error message quoting a header, a URL with
 * credentials): API keys and session tokens keep their recognisable prefix only, URL passwords go.
 */
const SECRET_PATTERNS: [RegExp, string][] = [
  [/\b(gm[ks]_[A-Za-z0-9_-]{4})[A-Za-z0-9_-]{8,}/g, '$1…[redacted]'],
  [/\b([a-z][a-z0-9+.-]*:\/\/[^:/@\s"]*:)[^@/\s"]+@/gi, '$1[redacted]@'],
];

/** Scrubs secrets out of one serialized log line. Exported for tests. */
export function scrubSecrets(line: string): string {
  let out = line;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'coordinator' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      hooks: { streamWrite: scrubSecrets },
    },
    destination ?? process.stdout,
  );
}

/**
 * Nest's start-up chatter (one line per module and per route: 70+ lines at every start): logged at
 * debug, so an info-level log starts with what matters. `LOG_LEVEL=debug` shows it again.
 */
const NEST_BOOT_CONTEXTS = new Set([
  'InstanceLoader',
  'RoutesResolver',
  'RouterExplorer',
  'NestFactory',
  'NestApplication',
]);

/** Routes Nest's own log calls through pino. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}
  log(message: unknown, context?: string): void {
    if (context !== undefined && NEST_BOOT_CONTEXTS.has(context))
      this.logger.debug({ context }, String(message));
    else this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.logger.trace({ context }, String(message));
  }
}
