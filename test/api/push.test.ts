// Push (issue 21, part 6): signed lifecycle webhooks with retries, the delivery log and the test
// ping, delivered to a real local HTTP receiver; and server-sent events that resume after
// Last-Event-ID and keep the connection alive with a heartbeat. Real PostgreSQL, Redis and libp2p.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startCoordinatorOn, type TestCoordinator } from '../helpers/coordinator.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { pollUntil, query } from '../helpers/poll.js';
import { matmulSpec } from '../helpers/specs.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { verifyWebhookSignature } from '../../apps/coordinator/src/events/webhooks/webhook-signature.js';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  answered: number;
}
interface Payload {
  id: string;
  type: string;
  createdAt: string;
  data: { jobId?: string; state?: string; fromState?: string | null; error?: string | null };
}
interface DeliveryBody {
  id: string;
  event: string;
  jobId: string | null;
  state: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
}
interface SseEvent {
  id: string | null;
  event: string | null;
  data: { id: string; type: string; toState: string | null } | null;
  retry: number | null;
  comments: string[];
}

const HEARTBEAT_MS = 150;
const ENV = {
  WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true',
  WEBHOOK_RETRY_BASE_MS: '100',
  WEBHOOK_SWEEP_MS: '100',
  SSE_HEARTBEAT_MS: String(HEARTBEAT_MS),
  SSE_RETRY_MS: '1500',
};
const RETRY_HINT_MS = Number(ENV.SSE_RETRY_MS);

/** The messages of an event stream's text (blank-line separated), each with its fields. */
function parseSse(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const m: SseEvent = { id: null, event: null, data: null, retry: null, comments: [] };
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) m.comments.push(line.slice(1).trim());
        else if (line.startsWith('id: ')) m.id = line.slice(4);
        else if (line.startsWith('event: ')) m.event = line.slice(7);
        else if (line.startsWith('retry: ')) m.retry = Number(line.slice(7));
        else if (line.startsWith('data: ')) m.data = JSON.parse(line.slice(6)) as SseEvent['data'];
      }
      return m;
    });
}

describe('push: lifecycle webhooks and resumable event streams (real coordinator, local receiver)', () => {
  let db: TestDatabase;
  let c: TestCoordinator;
  let receiver: Server;
  let hookUrl: string;
  const agents: FakeAgent[] = [];
  const received: Received[] = [];
  /** What the receiver answers next to each event type (default 204). */
  const answers = new Map<string, number[]>();

  beforeAll(async () => {
    db = await createTestDatabase();
    c = await startCoordinatorOn(db.url, ENV);
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString('utf8')));
      req.on('end', () => {
        const event = String(req.headers['x-gpumesh-event']);
        const answered = answers.get(event)?.shift() ?? 204;
        received.push({ headers: req.headers, body, answered });
        res.statusCode = answered;
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/gpumesh`;
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await c?.close();
    await db?.drop();
    await new Promise((r) => receiver?.close(r));
  });

  const deliveriesOf = (event: string, jobId?: string): Received[] =>
    received.filter(
      (r) =>
        r.headers['x-gpumesh-event'] === event &&
        (jobId === undefined || (JSON.parse(r.body) as Payload).data.jobId === jobId),
    );

  it('delivers signed lifecycle events, retries after a 500, logs every delivery and answers a test ping', async () => {
    const hook = await api<{ secret: string; url: string; events: string[] }>(
      c.url,
      'PUT',
      '/v1/account/webhook',
      { key: c.devKey, body: { url: hookUrl } },
    );
    expect(hook.status, JSON.stringify(hook.body)).toBe(200);
    expect(hook.body.events).toEqual([]); // every event type
    const secret = hook.body.secret;
    const verified = (r: Received, key = secret): boolean =>
      verifyWebhookSignature({
        secret: key,
        body: r.body,
        timestamp: r.headers['x-gpumesh-timestamp'] as string,
        signature: r.headers['x-gpumesh-signature'] as string,
      });

    // The test ping: one signed attempt, reported at once (a failing receiver is reported, not retried).
    const ping = await api<{ delivered: boolean; status: number; delivery: DeliveryBody }>(
      c.url,
      'POST',
      '/v1/account/webhook/test',
      { key: c.devKey },
    );
    expect(ping.status, JSON.stringify(ping.body)).toBe(200);
    expect(ping.body).toMatchObject({ delivered: true, status: 204 });
    expect(ping.body.delivery).toMatchObject({ event: 'ping', state: 'DELIVERED', attempts: 1 });
    expect(deliveriesOf('ping')).toHaveLength(1);
    expect(verified(deliveriesOf('ping')[0])).toBe(true);
    answers.set('ping', [503]);
    const failedPing = await api<{
      delivered: boolean;
      status: number;
      error: string;
      delivery: DeliveryBody;
    }>(c.url, 'POST', '/v1/account/webhook/test', { key: c.devKey });
    expect(failedPing.body).toMatchObject({ delivered: false, status: 503, error: 'answered HTTP 503' });
    expect(failedPing.body.delivery).toMatchObject({ state: 'FAILED', attempts: 1, lastStatus: 503 });

    // A finished delivery is sent again on request (the receiver is fixed): same delivery id, a
    // fresh schedule, delivered this time.
    const failedId = failedPing.body.delivery.id;
    const redeliver = (id: string, key = c.devKey) =>
      api<DeliveryBody>(c.url, 'POST', `/v1/account/webhook/deliveries/${id}/redeliver`, { key });
    const again = await redeliver(failedId);
    expect(again.status, JSON.stringify(again.body)).toBe(202);
    expect(again.body).toMatchObject({ id: failedId, state: 'PENDING', attempts: 0 });
    const redelivered = await pollUntil(
      'the redelivered ping',
      async () => {
        const d = await api<DeliveryBody>(c.url, 'GET', `/v1/account/webhook/deliveries/${failedId}`, {
          key: c.devKey,
        });
        return d.body.state === 'DELIVERED' ? d.body : undefined;
      },
      10_000,
    );
    expect(redelivered).toMatchObject({ attempts: 1, lastStatus: 204 });
    const pings = deliveriesOf('ping');
    expect(pings).toHaveLength(3);
    expect(pings[2]!.headers['x-gpumesh-delivery']).toBe(failedId);
    expect(verified(pings[2]!)).toBe(true);
    expect((await redeliver('00000000-0000-4000-8000-000000000000')).status).toBe(404);

    // A job that runs: job.running, then job.succeeded, whose first attempt is answered 500.
    answers.set('job.succeeded', [500]);
    agents.push(await startFakeAgent(c.url));
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(3, 4, 2, '10'),
    });
    expect(job.status).toBe(201);
    await pollUntil(
      'job.running and two attempts of job.succeeded',
      async () =>
        deliveriesOf('job.running', job.body.id).length === 1 &&
        deliveriesOf('job.succeeded', job.body.id).length === 2
          ? true
          : undefined,
      20_000,
    );
    const [running] = deliveriesOf('job.running', job.body.id);
    const [failed, retried] = deliveriesOf('job.succeeded', job.body.id);
    for (const r of [running, failed, retried]) {
      expect(verified(r)).toBe(true);
      expect(verified(r, 'whsec_wrong')).toBe(false);
      expect(r.headers['content-type']).toBe('application/json');
    }
    expect([failed.answered, retried.answered]).toEqual([500, 204]);
    // A retry is the same delivery (same id, same body), signed again at its own time.
    expect(retried.headers['x-gpumesh-delivery']).toBe(failed.headers['x-gpumesh-delivery']);
    expect(retried.body).toBe(failed.body);
    const succeeded = JSON.parse(retried.body) as Payload;
    expect(succeeded).toMatchObject({
      id: retried.headers['x-gpumesh-delivery'],
      type: 'job.succeeded',
      data: { jobId: job.body.id, state: 'COMPLETED', error: null },
    });
    expect((JSON.parse(running.body) as Payload).data.state).toBe('RUNNING');

    // The delivery log, paged (newest first), then filtered by event type.
    const log = await pollUntil(
      'the log to show job.succeeded delivered',
      async () => {
        const seen: DeliveryBody[] = [];
        let cursor: string | null = null;
        do {
          const page: { status: number; body: { items: DeliveryBody[]; nextCursor: string | null } } =
            await api(
              c.url,
              'GET',
              `/v1/account/webhook/deliveries?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
              { key: c.devKey },
            );
          expect(page.status).toBe(200);
          expect(page.body.items.length).toBeLessThanOrEqual(2);
          seen.push(...page.body.items);
          cursor = page.body.nextCursor;
        } while (cursor);
        const done = seen.find((d) => d.event === 'job.succeeded');
        return done?.state === 'DELIVERED' ? seen : undefined;
      },
      10_000,
    );
    expect(new Set(log.map((d) => d.id)).size).toBe(log.length); // no delivery on two pages
    expect(log.map((d) => d.event).sort()).toEqual(['job.running', 'job.succeeded', 'ping', 'ping']);
    expect(log.find((d) => d.event === 'job.succeeded')).toMatchObject({
      jobId: job.body.id,
      attempts: 2,
      lastStatus: 204,
      lastError: null,
    });
    const onlySucceeded = await api<{ items: DeliveryBody[] }>(
      c.url,
      'GET',
      '/v1/account/webhook/deliveries?event=job.succeeded',
      { key: c.devKey },
    );
    expect(onlySucceeded.body.items.map((d) => d.event)).toEqual(['job.succeeded']);
    const badCursor = await api<{ error: { code: string; message: string } }>(
      c.url,
      'GET',
      '/v1/account/webhook/deliveries?cursor=bm9wZQ',
      { key: c.devKey },
    );
    expect(badCursor.status).toBe(400);
    expect(badCursor.body.error.message).toMatch(/cursor/);

    // A subscription to a subset: a cancelled job is not delivered to a webhook that wants only failures.
    const subset = await api<{ events: string[] }>(c.url, 'PUT', '/v1/account/webhook', {
      key: c.devKey,
      body: { url: hookUrl, events: ['job.failed', 'job.expired'] },
    });
    expect(subset.body.events).toEqual(['job.expired', 'job.failed']);
    const unknown = await api<{ error: { message: string } }>(c.url, 'PUT', '/v1/account/webhook', {
      key: c.devKey,
      body: { url: hookUrl, events: ['job.done'] },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(/events/);
  }, 60_000);

  it('streams events with stable ids, resumes after Last-Event-ID, sends a heartbeat and ends after the terminal event', async () => {
    // An open stream: a job no provider can take (it needs a GPU nobody has) stays queued.
    const spec = { ...matmulSpec(2, 2, 2, '1'), requirements: { minVramMiB: 1_000_000 } };
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', { key: c.devKey, body: spec });
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    const events = `${c.url}/v1/jobs/${job.body.id}/events`;
    const auth = { authorization: `Bearer ${c.devKey}` };
    const response = await fetch(events, { headers: auth });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const opened = Date.now();
    try {
      while ((text.match(/^: ping$/gm) ?? []).length < 3) {
        const chunk = await reader.read();
        if (chunk.done) break;
        text += decoder.decode(chunk.value, { stream: true });
      }
      const quiet = Date.now() - opened;
      // Three heartbeats in about three intervals: a quiet stream is never silent for long.
      expect(quiet).toBeGreaterThanOrEqual(HEARTBEAT_MS * 2);
      expect(quiet).toBeLessThan(HEARTBEAT_MS * 3 + 2_000);
      await api(c.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, { key: c.devKey });
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break; // the stream ends by itself after job.cancelled
        text += decoder.decode(chunk.value, { stream: true });
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
    const live = parseSse(text);
    expect(live[0]).toMatchObject({ id: '0', retry: RETRY_HINT_MS }); // the reconnection hint
    const jobEvents = live.filter((m) => m.data !== null);
    expect(jobEvents.map((m) => m.data?.type)).toEqual(['job.submitted', 'job.cancelled']);
    for (const m of jobEvents) {
      expect(m.event).toBe('job-event');
      expect(m.id).toBe(m.data?.id); // the id: is the event's own, stable id
    }
    expect(BigInt(jobEvents[1].id!)).toBeGreaterThan(BigInt(jobEvents[0].id!));

    // Reconnecting after the first event: only the later one, then the end.
    const resumed = await fetch(events, { headers: { ...auth, 'last-event-id': jobEvents[0].id! } });
    expect(resumed.status).toBe(200);
    const after = parseSse(await resumed.text());
    expect(after[0]).toMatchObject({ id: jobEvents[0].id, retry: RETRY_HINT_MS });
    expect(after.filter((m) => m.data).map((m) => m.data?.type)).toEqual(['job.cancelled']);
    // The query parameter does the same for clients that cannot set headers.
    const viaQuery = await fetch(`${events}?lastEventId=${jobEvents[0].id!}`, { headers: auth });
    expect(
      parseSse(await viaQuery.text())
        .filter((m) => m.data)
        .map((m) => m.data?.type),
    ).toEqual(['job.cancelled']);
    // After the terminal event, nothing followed: 204, which makes an EventSource stop reconnecting.
    const over = await fetch(events, { headers: { ...auth, 'last-event-id': jobEvents[1].id! } });
    expect(over.status).toBe(204);
    expect(await over.text()).toBe('');
    // The admin dashboard's stream of any job resumes the same way.
    const admin = { authorization: `Bearer ${c.adminKey}` };
    const adminEvents = `${c.url}/v1/admin/jobs/${job.body.id}/events`;
    const adminAfter = await fetch(adminEvents, { headers: { ...admin, 'last-event-id': jobEvents[0].id! } });
    expect(
      parseSse(await adminAfter.text())
        .filter((m) => m.data)
        .map((m) => m.data?.type),
    ).toEqual(['job.cancelled']);
    const adminOver = await fetch(adminEvents, { headers: { ...admin, 'last-event-id': jobEvents[1].id! } });
    expect(adminOver.status).toBe(204);
    // Whole history again from 0.
    const fromZero = await fetch(events, { headers: { ...auth, 'last-event-id': '0' } });
    expect(parseSse(await fromZero.text()).filter((m) => m.data)).toHaveLength(2);

    // A bad Last-Event-ID is a clear 400, before any stream starts.
    for (const [bad, message] of [
      ['abc', /Last-Event-ID: expected the id of an event/],
      [String(BigInt(jobEvents[1].id!) + 1000n), /is not the id of an event of this job/],
    ] as const) {
      const res = await api<{ error: { code: string; message: string } }>(
        c.url,
        'GET',
        `/v1/jobs/${job.body.id}/events`,
        { key: c.devKey, headers: { 'last-event-id': bad } },
      );
      expect(res.status, bad).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.message).toMatch(message);
    }

    // The webhook now wants only failures and expiries: the cancellation was not queued for it.
    const cancelled = await api<{ items: DeliveryBody[] }>(
      c.url,
      'GET',
      '/v1/account/webhook/deliveries?event=job.cancelled',
      { key: c.devKey },
    );
    expect(cancelled.body.items).toEqual([]);
  }, 30_000);

  it('keeps retrying a delivery across a coordinator restart (the outbox is in PostgreSQL)', async () => {
    for (const a of agents.splice(0)) await a.stop();
    await api(c.url, 'PUT', '/v1/account/webhook', { key: c.devKey, body: { url: hookUrl } });
    answers.set(
      'job.cancelled',
      Array.from({ length: 50 }, () => 500),
    ); // down until the restart
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: { ...matmulSpec(2, 2, 2, '1'), requirements: { minVramMiB: 1_000_000 } },
    });
    await api(c.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, { key: c.devKey });
    await pollUntil(
      'two failed attempts',
      async () => (deliveriesOf('job.cancelled', job.body.id).length >= 2 ? true : undefined),
      10_000,
    );
    await c.close();
    answers.delete('job.cancelled'); // the receiver is back; the coordinator is not
    const attemptsBefore = deliveriesOf('job.cancelled', job.body.id).length;
    c = await startCoordinatorOn(db.url, ENV);
    const [row] = await pollUntil(
      'the delivery, by the restarted coordinator',
      async () => {
        const rows = await query<{ id: string; state: string; attempts: number; lastStatus: number }>(
          db.url,
          `SELECT id::text, state, attempts, "lastStatus" FROM "WebhookDelivery" WHERE "jobId" = $1 AND event = 'job.cancelled'`,
          [job.body.id],
        );
        return rows[0]?.state === 'DELIVERED' ? rows : undefined;
      },
      20_000,
    );
    const attempts = deliveriesOf('job.cancelled', job.body.id);
    expect(attempts.length).toBeGreaterThan(attemptsBefore);
    expect(attempts.at(-1)?.answered).toBe(204);
    expect(new Set(attempts.map((r) => r.headers['x-gpumesh-delivery']))).toEqual(new Set([row.id]));
    expect(row).toMatchObject({ attempts: attempts.length, lastStatus: 204 });
  }, 40_000);
});
