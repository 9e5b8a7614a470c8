// Corrections reach the developer with a hold of 0 s: job.corrected event and a signed, retried webhook.
import { describe, expect, it } from 'vitest';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { api } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import { verifyWebhookSignature } from '../../apps/coordinator/src/events/webhooks/webhook-signature.js';
import {
  setup,
  waitFor,
  agent,
  makeTrusted,
  submit,
  job,
  finished,
  resultOf,
  isRight,
  rows,
  stopAfterEach,
} from './tiers-support.js';

stopAfterEach();

describe('corrections (real coordinator, fake agents)', () => {
  it('a correction reaches the developer with a hold of 0 s: job.corrected on the event stream and a signed webhook delivery (retried)', async () => {
    const t = await setup({ WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true' });
    expect(t.c.config.VERIFICATION_HOLD_SECONDS).toBeUndefined(); // dev: credits vest at once
    // A receiver that fails its first delivery (500) and accepts the next.
    const received: { headers: IncomingHttpHeaders; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString('utf8')));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.statusCode = received.length === 1 ? 500 : 204;
        res.end();
      });
    });
    t.servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const hook = await api<{ secret: string; url: string }>(t.c.url, 'PUT', '/v1/account/webhook', {
      key: t.c.devKey,
      // Only corrections: this receiver is not told of the lifecycle of the jobs below.
      body: { url: `http://127.0.0.1:${port}/gpumesh`, events: ['job.corrected'] },
    });
    expect(hook.status, JSON.stringify(hook.body)).toBe(200);
    expect(hook.body.secret).toMatch(/^whsec_/);

    // A trusted provider turns cheater: its result is delivered unchecked (spot-check)...
    const cheater = await agent(t, 'zeros', 'op-cheat');
    await makeTrusted(t, cheater.peerId);
    const spec = matmulSpec(6, 6, 6, '5');
    const wrongJob = await submit(t, spec);
    const delivered = await finished(t, wrongJob);
    expect(delivered.state).toBe('COMPLETED');
    expect(delivered.verification).toMatchObject({ method: 'spot-check', verified: false });
    expect(isRight(spec, await resultOf(t, wrongJob))).toBe(false);
    const [vested] = await rows<{ n: string }>(
      t,
      `SELECT COUNT(*)::text AS n FROM "LedgerEntry" WHERE "jobId" = $1 AND account = $2`,
      [wrongJob, `provider:${cheater.peerId}:earned`],
    );
    expect(vested.n).toBe('1'); // hold 0 s: nothing is held to re-verify

    // ...until a check catches it on a later job (here a job that requires verified).
    await submit(t, { ...matmulSpec(4, 4, 4, '5'), verification: { mode: 'none', verified: true } });
    await waitFor(
      'the correction',
      async () => ((await job(t, wrongJob)).verification.corrected ? true : undefined),
      30_000,
    );
    expect(isRight(spec, await resultOf(t, wrongJob))).toBe(true);

    // The event stream replays the correction after the completion.
    const sse = await fetch(`${t.c.url}/v1/jobs/${wrongJob}/events`, {
      headers: { authorization: `Bearer ${t.c.devKey}`, accept: 'text/event-stream' },
    });
    const stream = await sse.text();
    expect(stream.indexOf('"type":"job.completed"')).toBeGreaterThan(0);
    expect(stream.indexOf('"type":"job.corrected"')).toBeGreaterThan(
      stream.indexOf('"type":"job.completed"'),
    );

    // The webhook: first attempt answered 500, the retry delivered; both signed, same delivery id.
    await waitFor('two webhook attempts', async () => (received.length >= 2 ? true : undefined), 20_000);
    for (const r of received) {
      expect(
        verifyWebhookSignature({
          secret: hook.body.secret,
          body: r.body,
          timestamp: r.headers['x-gpumesh-timestamp'] as string,
          signature: r.headers['x-gpumesh-signature'] as string,
        }),
      ).toBe(true);
      expect(
        verifyWebhookSignature({
          secret: 'whsec_wrong',
          body: r.body,
          timestamp: r.headers['x-gpumesh-timestamp'] as string,
          signature: r.headers['x-gpumesh-signature'] as string,
        }),
      ).toBe(false);
      expect(r.headers['x-gpumesh-event']).toBe('job.corrected');
    }
    expect(received[1].headers['x-gpumesh-delivery']).toBe(received[0].headers['x-gpumesh-delivery']);
    const payload = JSON.parse(received[1].body) as {
      type: string;
      data: { jobId: string; provider: string };
    };
    expect(payload.type).toBe('job.corrected');
    expect(payload.data.jobId).toBe(wrongJob);
    expect(payload.data.provider).toBe(cheater.peerId);
    const log = await waitFor('the delivery log to say DELIVERED', async () => {
      const res = await api<{
        items: { state: string; attempts: number; lastStatus: number; jobId: string }[];
      }>(t.c.url, 'GET', '/v1/account/webhook/deliveries?event=job.corrected', { key: t.c.devKey });
      return res.body.items[0]?.state === 'DELIVERED' ? res.body.items : undefined;
    });
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ jobId: wrongJob, attempts: 2, lastStatus: 204 });
  }, 90_000);
});
