import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Logger } from 'pino';
import type { Webhook, WebhookDelivery } from '#prisma';
import { APP_CONFIG, type AppConfig } from '../../config/config.js';
import { DomainError } from '../../common/domain-error.js';
import { LOGGER } from '../../logging/logger.js';
import { WebhooksRepository, type ClaimedDelivery } from './webhooks.repository.js';
import {
  WEBHOOK_DELIVERY_HEADER,
  WEBHOOK_EVENT_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  newWebhookSecret,
  signWebhook,
} from './webhook-signature.js';
import { WebhookUrlError, resolveWebhookUrl, type ResolvedWebhookUrl } from './webhook-url.js';

/** How often due deliveries are looked for (a correction in this process also kicks a sweep). */
export const WEBHOOK_SWEEP_EVERY_MS = 1_000;
/** Deliveries claimed per sweep. */
export const WEBHOOK_SWEEP_BATCH = 50;
/** A claimed delivery is retried by another sweep only after this lease (covers the request). */
export const WEBHOOK_CLAIM_LEASE_MS = 30_000;
/** Time limit of one delivery request, connection included. */
export const WEBHOOK_TIMEOUT_MS = 5_000;
/** Attempts before a delivery is given up (FAILED). */
export const WEBHOOK_MAX_ATTEMPTS = 8;
/** Backoff before retry n (n ≥ 1): WEBHOOK_RETRY_BASE_MS × 4^(n−1), at most WEBHOOK_RETRY_MAX_MS. */
export const WEBHOOK_RETRY_BASE_MS = 2_000;
export const WEBHOOK_RETRY_MAX_MS = 3_600_000;
/** Most response bytes read (and ignored) from a webhook's answer. */
const MAX_RESPONSE_BYTES = 4_096;
/** Most deliveries the log returns. */
export const MAX_DELIVERY_LOG = 100;

/** The wait before the retry that follows `attempts` failed attempts, or null to give up. */
export function retryDelayMs(attempts: number): number | null {
  if (attempts >= WEBHOOK_MAX_ATTEMPTS) return null;
  return Math.min(WEBHOOK_RETRY_MAX_MS, WEBHOOK_RETRY_BASE_MS * 4 ** (attempts - 1));
}

export interface WebhookView {
  url: string;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * Account webhooks: registration (URL checked against SSRF, a fresh signing secret) and the
 * delivery of queued events (outbox rows in WebhookDelivery, written in the transaction of the
 * change they report): each POST is signed (HMAC-SHA256 over "<timestamp>.<body>"), connects only
 * to the address its URL was checked to resolve to, follows no redirect, and is retried with
 * exponential backoff until a 2xx answer or WEBHOOK_MAX_ATTEMPTS.
 */
@Injectable()
export class WebhooksService implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<number> | null = null;
  private again = false;
  private closed = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly repo: WebhooksRepository,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.ROLE === 'api') return;
    this.timer = setInterval(() => this.kick(), WEBHOOK_SWEEP_EVERY_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.sweeping;
  }

  /** Sets (or replaces) the account's webhook; returns it with its new signing secret. */
  async register(accountId: string, url: unknown): Promise<Webhook> {
    if (typeof url !== 'string') throw new DomainError('VALIDATION_FAILED', 'url: expected a string');
    try {
      await resolveWebhookUrl(url, this.urlPolicy());
    } catch (err) {
      if (err instanceof WebhookUrlError) throw new DomainError('VALIDATION_FAILED', err.message);
      throw err;
    }
    const webhook = await this.repo.upsert(accountId, url, newWebhookSecret());
    this.logger.info({ accountId, host: new URL(url).host }, 'webhook registered');
    return webhook;
  }

  async get(accountId: string): Promise<Webhook> {
    const webhook = await this.repo.find(accountId);
    if (!webhook) throw new DomainError('WEBHOOK_NOT_FOUND', 'this account has no webhook');
    return webhook;
  }

  async remove(accountId: string): Promise<void> {
    if (!(await this.repo.remove(accountId))) {
      throw new DomainError('WEBHOOK_NOT_FOUND', 'this account has no webhook');
    }
  }

  deliveries(accountId: string, limit = 50): Promise<WebhookDelivery[]> {
    return this.repo.deliveries(accountId, Math.min(Math.max(1, limit), MAX_DELIVERY_LOG));
  }

  /** Starts a sweep now (or right after the running one): a new delivery was queued. */
  kick(): void {
    if (this.closed || this.config.ROLE === 'api') return;
    if (this.sweeping) {
      this.again = true;
      return;
    }
    this.sweeping = this.sweep().finally(() => {
      this.sweeping = null;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  /** Attempts every due delivery once; returns how many were delivered. */
  async sweep(): Promise<number> {
    let delivered = 0;
    try {
      const due = await this.repo.claimDue(WEBHOOK_SWEEP_BATCH, WEBHOOK_CLAIM_LEASE_MS);
      const results = await Promise.all(due.map((d) => this.attempt(d)));
      delivered = results.filter(Boolean).length;
    } catch (err) {
      this.logger.warn({ err }, 'webhook sweep failed; the next one retries');
    }
    return delivered;
  }

  private async attempt(d: ClaimedDelivery): Promise<boolean> {
    const attempts = d.attempts + 1;
    let status: number | null = null;
    let error: string | null = null;
    if (d.secret === null) error = 'the webhook was removed';
    else {
      try {
        const target = await resolveWebhookUrl(d.url, this.urlPolicy());
        status = await post(target, d, d.secret);
        if (status < 200 || status >= 300) error = `answered HTTP ${status}`;
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
    }
    const delivered = error === null;
    const delay = delivered || d.secret === null ? null : retryDelayMs(attempts);
    await this.repo.recordAttempt(d.id, {
      delivered,
      status,
      error,
      retryAt: delay === null ? null : new Date(Date.now() + delay),
    });
    const log = { deliveryId: d.id, accountId: d.accountId, event: d.event, attempts, status };
    if (delivered) this.logger.info(log, 'webhook delivered');
    else if (delay === null) this.logger.warn({ ...log, error }, 'webhook delivery given up');
    else this.logger.info({ ...log, error, retryInMs: delay }, 'webhook delivery failed; retrying');
    return delivered;
  }

  private urlPolicy(): { allowPrivate: boolean } {
    return { allowPrivate: this.config.WEBHOOK_ALLOW_PRIVATE_ADDRESSES };
  }
}

/** POSTs one signed delivery to the checked address; resolves to the HTTP status. */
function post(target: ResolvedWebhookUrl, d: ClaimedDelivery, secret: string): Promise<number> {
  const timestamp = Math.floor(Date.now() / 1000);
  const body = Buffer.from(d.payload, 'utf8');
  // Connect to the address that was checked, whatever the host name resolves to by now.
  const pinned: LookupFunction = (_host, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as (err: null, addresses: { address: string; family: number }[]) => void)(null, [
        { address: target.address, family: target.family },
      ]);
    } else callback(null, target.address, target.family);
  };
  const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<number>((resolve, reject) => {
    const req = send(
      target.url,
      {
        method: 'POST',
        lookup: pinned,
        timeout: WEBHOOK_TIMEOUT_MS,
        headers: {
          'content-type': 'application/json',
          'content-length': String(body.byteLength),
          'user-agent': 'gpumesh-webhooks/1',
          [WEBHOOK_TIMESTAMP_HEADER]: String(timestamp),
          [WEBHOOK_SIGNATURE_HEADER]: signWebhook(secret, timestamp, d.payload),
          [WEBHOOK_EVENT_HEADER]: d.event,
          [WEBHOOK_DELIVERY_HEADER]: d.id,
        },
      },
      (res: IncomingMessage) => {
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.byteLength;
          if (read > MAX_RESPONSE_BYTES) res.destroy();
        });
        res.on('close', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${WEBHOOK_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
