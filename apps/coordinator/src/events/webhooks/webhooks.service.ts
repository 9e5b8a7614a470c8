import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Logger } from 'pino';
import type { Webhook, WebhookDelivery } from '#prisma';
import { APP_CONFIG, type AppConfig } from '../../config/config.js';
import { DomainError } from '../../common/domain-error.js';
import { LOGGER } from '../../logging/logger.js';
import {
  WebhooksRepository,
  type ClaimedDelivery,
  type WebhookDeliveryState,
} from './webhooks.repository.js';
import { decodeDeliveryCursor, encodeDeliveryCursor } from './delivery-cursor.js';
import { WEBHOOK_PING_EVENT, WebhookEventsError, parseWebhookEvents } from './webhook-events.js';
import { DEFAULT_WEBHOOK_RETRY_SCHEDULE, retryDelayMs, type WebhookRetrySchedule } from './webhook-retry.js';
import {
  WEBHOOK_DELIVERY_HEADER,
  WEBHOOK_EVENT_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  newWebhookSecret,
  signWebhook,
} from './webhook-signature.js';
import { WebhookUrlError, resolveWebhookUrl, type ResolvedWebhookUrl } from './webhook-url.js';

/** Deliveries claimed per sweep. */
export const WEBHOOK_SWEEP_BATCH = 50;
/** A claimed delivery is retried by another sweep only after this lease (covers the request). */
export const WEBHOOK_CLAIM_LEASE_MS = 30_000;
/** Time limit of one delivery request, connection included. */
export const WEBHOOK_TIMEOUT_MS = 5_000;
/** Most response bytes read (and ignored) from a webhook's answer. */
const MAX_RESPONSE_BYTES = 4_096;
/** Most deliveries one page of the log holds. */
export const MAX_DELIVERY_LOG = 100;

/** The outcome of one delivery attempt. */
export interface AttemptOutcome {
  delivered: boolean;
  status: number | null;
  error: string | null;
  /** When it is tried again; null: delivered or given up. */
  retryAt: Date | null;
  durationMs: number;
}

export interface WebhookView {
  url: string;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * Account webhooks: registration (URL checked against SSRF, a fresh signing secret, the event types
 * wanted) and the delivery of queued events (outbox rows in WebhookDelivery, written in the
 * transaction of the change they report: job lifecycle transitions, corrections): each POST is
 * signed (HMAC-SHA256 over "<timestamp>.<body>"), connects only to the address its URL was checked
 * to resolve to, follows no redirect, and is retried with exponential backoff until a 2xx answer
 * or WEBHOOK_MAX_ATTEMPTS. A test ping is one attempt made at once, reported to the caller.
 */
@Injectable()
export class WebhooksService implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<number> | null = null;
  private again = false;
  private closed = false;
  /** Early retries (sooner than the next sweep) waiting for their time. */
  private readonly soon = new Set<NodeJS.Timeout>();
  private readonly retries: WebhookRetrySchedule;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly repo: WebhooksRepository,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.retries = {
      baseMs: config.WEBHOOK_RETRY_BASE_MS,
      maxMs: DEFAULT_WEBHOOK_RETRY_SCHEDULE.maxMs,
      maxAttempts: config.WEBHOOK_MAX_ATTEMPTS,
    };
  }

  onApplicationBootstrap(): void {
    if (this.config.ROLE === 'api') return;
    this.timer = setInterval(() => this.kick(), this.config.WEBHOOK_SWEEP_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const t of this.soon) clearTimeout(t);
    this.soon.clear();
    await this.sweeping;
  }

  /**
   * Sets (or replaces) the account's webhook and the event types it wants (none: all); returns it
   * with its new signing secret.
   */
  async register(accountId: string, url: unknown, events?: unknown): Promise<Webhook> {
    if (typeof url !== 'string') throw new DomainError('VALIDATION_FAILED', 'url: expected a string');
    let wanted: string[];
    try {
      wanted = parseWebhookEvents(events);
      await resolveWebhookUrl(url, this.urlPolicy());
    } catch (err) {
      if (err instanceof WebhookUrlError || err instanceof WebhookEventsError) {
        throw new DomainError('VALIDATION_FAILED', err.message);
      }
      throw err;
    }
    const webhook = await this.repo.upsert(accountId, url, newWebhookSecret(), wanted);
    this.logger.info({ accountId, host: new URL(url).host, events: wanted }, 'webhook registered');
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

  /** A page of the delivery log, newest first, and the cursor of the next one (null: the last page). */
  async deliveryPage(
    accountId: string,
    query: { limit?: number; cursor?: string; state?: WebhookDeliveryState; event?: string } = {},
  ): Promise<{ items: WebhookDelivery[]; nextCursor: string | null }> {
    const after = query.cursor === undefined ? undefined : decodeDeliveryCursor(query.cursor);
    if (after === null)
      throw new DomainError('VALIDATION_FAILED', 'cursor: is not a cursor this API returned');
    const limit = Math.min(Math.max(1, query.limit ?? 50), MAX_DELIVERY_LOG);
    const items = await this.repo.deliveries(accountId, {
      limit,
      after,
      state: query.state,
      event: query.event,
    });
    const last = items.at(-1);
    return { items, nextCursor: items.length === limit && last ? encodeDeliveryCursor(last) : null };
  }

  async delivery(accountId: string, id: string): Promise<WebhookDelivery> {
    const found = await this.repo.delivery(accountId, id);
    if (!found) throw new DomainError('NOT_FOUND', 'no such delivery of this account');
    return found;
  }

  /**
   * Delivers a signed `ping` to the account's webhook now (one attempt, no retry; it is in the
   * delivery log like any other) and reports how it went.
   */
  /** Sends a finished delivery again (after fixing a receiver): queued at once, with a fresh schedule. */
  async redeliver(accountId: string, id: string): Promise<WebhookDelivery> {
    const queued = await this.repo.requeue(accountId, id);
    if (queued) {
      this.logger.info({ deliveryId: id, accountId, event: queued.event }, 'webhook delivery queued again');
      this.kick();
      return queued;
    }
    const found = await this.repo.delivery(accountId, id);
    if (!found) throw new DomainError('NOT_FOUND', 'no such delivery of this account');
    if (found.state === 'PENDING')
      throw new DomainError(
        'ILLEGAL_TRANSITION',
        'this delivery is still being tried: wait for it to finish',
        {
          state: found.state,
        },
      );
    throw new DomainError('WEBHOOK_NOT_FOUND', 'this account has no webhook to deliver to: set one first');
  }

  async ping(accountId: string): Promise<{ delivery: WebhookDelivery; outcome: AttemptOutcome }> {
    const claimed = await this.repo.createPing(accountId, WEBHOOK_CLAIM_LEASE_MS);
    if (!claimed) throw new DomainError('WEBHOOK_NOT_FOUND', 'this account has no webhook');
    const outcome = await this.attempt(claimed);
    return { delivery: await this.delivery(accountId, claimed.id), outcome };
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
      delivered = results.filter((r) => r.delivered).length;
    } catch (err) {
      this.logger.warn({ err }, 'webhook sweep failed; the next one retries');
    }
    return delivered;
  }

  private async attempt(d: ClaimedDelivery): Promise<AttemptOutcome> {
    const started = Date.now();
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
    // A ping is one attempt: its caller hears the outcome at once.
    const final = delivered || d.secret === null || d.event === WEBHOOK_PING_EVENT;
    const delay = final ? null : retryDelayMs(attempts, this.retries);
    const retryAt = delay === null ? null : new Date(Date.now() + delay);
    await this.repo.recordAttempt(d.id, { delivered, status, error, retryAt });
    if (delay !== null && delay < this.config.WEBHOOK_SWEEP_MS) this.retrySoon(delay);
    const log = { deliveryId: d.id, accountId: d.accountId, event: d.event, attempts, status };
    if (delivered) this.logger.info(log, 'webhook delivered');
    else if (delay === null) this.logger.warn({ ...log, error }, 'webhook delivery given up');
    else this.logger.info({ ...log, error, retryInMs: delay }, 'webhook delivery failed; retrying');
    return { delivered, status, error, retryAt, durationMs: Date.now() - started };
  }

  /** A sweep once a retry due before the next regular sweep is due. */
  private retrySoon(delayMs: number): void {
    if (this.closed || this.config.ROLE === 'api') return;
    const timer = setTimeout(() => {
      this.soon.delete(timer);
      this.kick();
    }, delayMs + 5);
    timer.unref();
    this.soon.add(timer);
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
