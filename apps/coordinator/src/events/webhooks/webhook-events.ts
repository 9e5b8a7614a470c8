// What a webhook is told: the event types, which job transitions produce them, and the JSON body.
import { randomUUID } from 'node:crypto';

/** Job lifecycle events, one per state a developer acts on. */
export const JOB_LIFECYCLE_WEBHOOK_EVENTS = [
  'job.running',
  'job.succeeded',
  'job.failed',
  'job.expired',
  'job.cancelled',
] as const;

/** Every event a webhook can subscribe to (`job.corrected`: a delivered result was found wrong later). */
export const WEBHOOK_EVENT_TYPES = [...JOB_LIFECYCLE_WEBHOOK_EVENTS, 'job.corrected'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The event of `POST /v1/account/webhook/test`: always delivered, whatever the subscription. */
export const WEBHOOK_PING_EVENT = 'ping';

/** The job state each lifecycle event reports. */
const EVENT_OF_STATE: ReadonlyMap<string, WebhookEventType> = new Map([
  ['RUNNING', 'job.running'],
  ['COMPLETED', 'job.succeeded'],
  ['FAILED', 'job.failed'],
  ['EXPIRED', 'job.expired'],
  ['CANCELLED', 'job.cancelled'],
]);

/** The webhook event a job entering `toState` produces, or null (QUEUED, DISPATCHED, VERIFYING...). */
export function lifecycleWebhookEvent(toState: string | null): WebhookEventType | null {
  return toState === null ? null : (EVENT_OF_STATE.get(toState) ?? null);
}

export function isWebhookEventType(value: unknown): value is WebhookEventType {
  return typeof value === 'string' && (WEBHOOK_EVENT_TYPES as readonly string[]).includes(value);
}

export class WebhookEventsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookEventsError';
  }
}

/**
 * The subscription of a webhook from a request: undefined or an empty list means every event;
 * otherwise distinct known event types (sorted). Throws WebhookEventsError naming the bad entry.
 */
export function parseWebhookEvents(input: unknown): WebhookEventType[] {
  if (input === undefined || input === null) return [];
  if (!Array.isArray(input)) throw new WebhookEventsError('events: expected an array of event types');
  const bad = input.find((e) => !isWebhookEventType(e));
  if (bad !== undefined) {
    throw new WebhookEventsError(
      `events: unknown event type ${JSON.stringify(bad)} (one of ${WEBHOOK_EVENT_TYPES.join(', ')})`,
    );
  }
  return [...new Set(input as WebhookEventType[])].sort();
}

/** Whether a webhook subscribed to `events` (empty: all) receives `event`. Pings always go. */
export function webhookWants(events: readonly string[], event: string): boolean {
  return event === WEBHOOK_PING_EVENT || events.length === 0 || events.includes(event);
}

/** The body POSTed to a webhook (signed as sent); `id` is also the x-gpumesh-delivery header. */
export function webhookBody(
  id: string,
  type: string,
  createdAt: Date,
  data: Record<string, unknown>,
): string {
  return JSON.stringify({ id, type, createdAt: createdAt.toISOString(), data });
}

/** One lifecycle delivery to queue if the job's account has a webhook that wants it. */
export interface LifecycleDeliveryRow {
  id: string;
  accountId: string;
  jobId: string;
  event: WebhookEventType;
  payload: string;
}

/** What a lifecycle delivery says about its job (as it stands after the transition). */
export interface LifecycleJob {
  accountId: string;
  kind: string;
  error: string | null;
}

/**
 * The lifecycle deliveries of the events a transition batch records, in their order: one per event
 * whose `toState` a developer is told about (a state passed through, such as RUNNING on the way
 * to VERIFYING, counts). Whether the account has a webhook is decided where they are inserted.
 */
export function lifecycleDeliveryRows(
  events: readonly { jobId: string; fromState: string | null; toState: string | null }[],
  jobOf: (jobId: string) => LifecycleJob | undefined,
  now: Date,
  newId: () => string = randomUUID,
): LifecycleDeliveryRow[] {
  const rows: LifecycleDeliveryRow[] = [];
  for (const e of events) {
    const event = lifecycleWebhookEvent(e.toState);
    const job = event ? jobOf(e.jobId) : undefined;
    if (!event || !job) continue;
    const id = newId();
    const terminal = event !== 'job.running';
    rows.push({
      id,
      accountId: job.accountId,
      jobId: e.jobId,
      event,
      payload: webhookBody(id, event, now, {
        jobId: e.jobId,
        kind: job.kind,
        state: e.toState,
        fromState: e.fromState,
        // The reason of a failed, expired or cancelled job (null while running or when it succeeded).
        error: terminal && event !== 'job.succeeded' ? job.error : null,
      }),
    });
  }
  return rows;
}
