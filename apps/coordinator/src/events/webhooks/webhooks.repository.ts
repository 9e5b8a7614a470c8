import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Prisma, Webhook, WebhookDelivery } from '#prisma';
import { PrismaService } from '../../database/prisma.service.js';

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

/** Webhook and WebhookDelivery: the only code that writes them. */
@Injectable()
export class WebhooksRepository {
  constructor(private readonly prisma: PrismaService) {}

  find(accountId: string): Promise<Webhook | null> {
    return this.prisma.webhook.findUnique({ where: { accountId } });
  }

  upsert(accountId: string, url: string, secret: string): Promise<Webhook> {
    return this.prisma.webhook.upsert({
      where: { accountId },
      create: { accountId, url, secret },
      update: { url, secret },
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
    const payload = JSON.stringify({
      id,
      type: input.event,
      createdAt: createdAt.toISOString(),
      data: input.data,
    });
    const inserted = await tx.$executeRaw`
      INSERT INTO "WebhookDelivery" (id, "accountId", "jobId", event, url, payload, state, attempts,
                                     "nextAttemptAt", "createdAt")
      SELECT ${id}::uuid, w."accountId", ${input.jobId}::uuid, ${input.event}, w.url, ${payload},
             'PENDING', 0, ${createdAt}, ${createdAt}
        FROM "Webhook" w WHERE w."accountId" = ${input.accountId}::uuid`;
    return inserted > 0;
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

  /** An account's deliveries, newest first (the delivery log). */
  deliveries(accountId: string, limit: number): Promise<WebhookDelivery[]> {
    return this.prisma.webhookDelivery.findMany({
      where: { accountId },
      orderBy: { createdAt: 'desc' },
      take: limit,
    });
  }
}
