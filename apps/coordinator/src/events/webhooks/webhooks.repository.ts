import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Prisma, Webhook, WebhookDelivery } from '#prisma';
import { PrismaService } from '../../database/prisma.service.js';
import type { SqlParams } from '../../database/sql.service.js';
import { WEBHOOK_PING_EVENT, webhookBody, type LifecycleDeliveryRow } from './webhook-events.js';

/** A delivery claimed for one attempt, with its webhook's current secret (null: webhook removed). */
export interface ClaimedDelivery {
  id: string;
  accountId: string;
  event: string;
  url: string;
  payload: string;
  attempts: number;
  secret: string | null;
}

/** The states of a delivery: waiting or retrying, answered 2xx, given up. */
export const WEBHOOK_DELIVERY_STATES = ['PENDING', 'DELIVERED', 'FAILED'] as const;
export type WebhookDeliveryState = (typeof WEBHOOK_DELIVERY_STATES)[number];

/** Where a page of the delivery log starts: after this delivery (newest first). */
export interface DeliveryCursor {
  createdAt: Date;
  id: string;
}

/** Webhook and WebhookDelivery: the only code that writes them. */
@Injectable()
export class WebhooksRepository {
  constructor(private readonly prisma: PrismaService) {}

  find(accountId: string): Promise<Webhook | null> {
    return this.prisma.webhook.findUnique({ where: { accountId } });
  }

  upsert(accountId: string, url: string, secret: string, events: readonly string[]): Promise<Webhook> {
    return this.prisma.webhook.upsert({
      where: { accountId },
      create: { accountId, url, secret, events: [...events] },
      update: { url, secret, events: [...events] },
    });
  }

  async remove(accountId: string): Promise<boolean> {
    const { count } = await this.prisma.webhook.deleteMany({ where: { accountId } });
    return count > 0;
  }

  /**
   * Queues an event for the account's webhook inside the caller's transaction (outbox): nothing
   * when the account has none. Returns whether a delivery was queued.
   */
  async enqueueIn(
    tx: Prisma.TransactionClient,
    input: { accountId: string; jobId: string | null; event: string; data: Record<string, unknown> },
  ): Promise<boolean> {
    const id = randomUUID();
    const createdAt = new Date();
    const payload = webhookBody(id, input.event, createdAt, input.data);
    const inserted = await tx.$executeRaw`
      INSERT INTO "WebhookDelivery" (id, "accountId", "jobId", event, url, payload, state, attempts,
                                     "nextAttemptAt", "createdAt")
      SELECT ${id}::uuid, w."accountId", ${input.jobId}::uuid, ${input.event}, w.url, ${payload},
             'PENDING', 0, ${createdAt}, ${createdAt}
        FROM "Webhook" w
       WHERE w."accountId" = ${input.accountId}::uuid
         AND (cardinality(w.events) = 0 OR ${input.event} = ANY(w.events))`;
    return inserted > 0;
  }

  /**
   * Queues a signed `ping` to the account's webhook already claimed for `leaseMs` (the caller makes
   * its one attempt at once; sweeps leave it alone meanwhile). Null when the account has no webhook.
   */
  async createPing(accountId: string, leaseMs: number): Promise<ClaimedDelivery | null> {
    const id = randomUUID();
    const createdAt = new Date();
    const lease = new Date(createdAt.getTime() + leaseMs);
    const payload = webhookBody(id, WEBHOOK_PING_EVENT, createdAt, {
      message: 'a test delivery from gpumesh (POST /v1/account/webhook/test)',
    });
    const rows = await this.prisma.$queryRaw<ClaimedDelivery[]>`
      INSERT INTO "WebhookDelivery" (id, "accountId", "jobId", event, url, payload, state, attempts,
                                     "nextAttemptAt", "createdAt")
      SELECT ${id}::uuid, w."accountId", NULL, ${WEBHOOK_PING_EVENT}, w.url, ${payload},
             'PENDING', 0, ${lease}, ${createdAt}
        FROM "Webhook" w WHERE w."accountId" = ${accountId}::uuid
      RETURNING id::text AS id, "accountId"::text AS "accountId", event, url, payload, attempts,
                (SELECT w.secret FROM "Webhook" w WHERE w."accountId" = ${accountId}::uuid) AS secret`;
    return rows[0] ?? null;
  }

  /**
   * Claims up to `limit` due deliveries for one attempt each: their next attempt moves `leaseMs`
   * ahead, so another worker (or this one after a crash) retries them only once the lease passed.
   */
  async claimDue(limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    const now = new Date();
    const lease = new Date(now.getTime() + leaseMs);
    return this.prisma.$queryRaw<ClaimedDelivery[]>`
      UPDATE "WebhookDelivery" d SET "nextAttemptAt" = ${lease}
       WHERE d.id IN (SELECT id FROM "WebhookDelivery"
                       WHERE state = 'PENDING' AND "nextAttemptAt" <= ${now}
                       ORDER BY "nextAttemptAt" LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      RETURNING d.id::text AS id, d."accountId"::text AS "accountId", d.event, d.url, d.payload, d.attempts,
                (SELECT w.secret FROM "Webhook" w WHERE w."accountId" = d."accountId") AS secret`;
  }

  /** Records one attempt: delivered, retried at `retryAt`, or given up (`retryAt` null). */
  async recordAttempt(
    id: string,
    outcome: { delivered: boolean; status: number | null; error: string | null; retryAt: Date | null },
  ): Promise<void> {
    const now = new Date();
    const state = outcome.delivered ? 'DELIVERED' : outcome.retryAt ? 'PENDING' : 'FAILED';
    await this.prisma.webhookDelivery.update({
      where: { id },
      data: {
        state,
        attempts: { increment: 1 },
        lastStatus: outcome.status,
        lastError: outcome.error?.slice(0, 500) ?? null,
        nextAttemptAt: outcome.retryAt ?? now,
        deliveredAt: outcome.delivered ? now : null,
      },
    });
  }

  /**
   * Queues a finished delivery (FAILED or DELIVERED) again, to the account's webhook URL of now, with
   * a fresh retry schedule; the same delivery id, so a receiver that saw it can tell. Null when the
   * delivery is not the account's, still PENDING, or the account has no webhook.
   */
  async requeue(accountId: string, id: string): Promise<WebhookDelivery | null> {
    const rows = await this.prisma.$queryRaw<{ id: string }[]>`
      UPDATE "WebhookDelivery" d
         SET state = 'PENDING', attempts = 0, "nextAttemptAt" = now(), "deliveredAt" = NULL, url = w.url
        FROM "Webhook" w
       WHERE d.id = ${id}::uuid AND d."accountId" = ${accountId}::uuid AND w."accountId" = d."accountId"
         AND d.state IN ('FAILED', 'DELIVERED')
      RETURNING d.id::text AS id`;
    return rows.length === 0 ? null : this.delivery(accountId, id);
  }

  /** One delivery of an account (the log entry). */
  delivery(accountId: string, id: string): Promise<WebhookDelivery | null> {
    return this.prisma.webhookDelivery.findFirst({ where: { id, accountId } });
  }

  /**
   * A page of an account's deliveries, newest first (the delivery log), optionally of one state or
   * event type, starting after `after`.
   */
  deliveries(
    accountId: string,
    page: { limit: number; after?: DeliveryCursor; state?: WebhookDeliveryState; event?: string },
  ): Promise<WebhookDelivery[]> {
    const { after } = page;
    return this.prisma.webhookDelivery.findMany({
      where: {
        accountId,
        ...(page.state ? { state: page.state } : {}),
        ...(page.event ? { event: page.event } : {}),
        ...(after
          ? {
              OR: [
                { createdAt: { lt: after.createdAt } },
                { createdAt: after.createdAt, id: { lt: after.id } },
              ],
            }
          : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: page.limit,
    });
  }
}

/**
 * The insert of job lifecycle deliveries for the accounts whose webhook wants them, as a CTE of
 * the statement that records the transitions (`JobsRepository`), so each is queued in the very
 * transaction of the change it reports (outbox). Rows of accounts without a webhook insert nothing.
 */
export function insertLifecycleDeliveriesSql(
  rows: readonly LifecycleDeliveryRow[],
  now: Date,
  p: SqlParams,
): string {
  // timestamp (no zone) from the UTC ISO text: what Prisma writes, whatever the session's time zone.
  const at = p.add(now.toISOString());
  return `INSERT INTO "WebhookDelivery" (id, "accountId", "jobId", event, url, payload, state, attempts,
                                         "nextAttemptAt", "createdAt")
     SELECT u.id, w."accountId", u.job, u.event, w.url, u.payload, 'PENDING', 0, ${at}::timestamp, ${at}::timestamp
       FROM unnest(${p.add(rows.map((r) => r.id))}::uuid[], ${p.add(rows.map((r) => r.accountId))}::uuid[],
                   ${p.add(rows.map((r) => r.jobId))}::uuid[], ${p.add(rows.map((r) => r.event))}::text[],
                   ${p.add(rows.map((r) => r.payload))}::text[]) AS u(id, account, job, event, payload)
       JOIN "Webhook" w ON w."accountId" = u.account
      WHERE cardinality(w.events) = 0 OR u.event = ANY(w.events)
     RETURNING id`;
}
