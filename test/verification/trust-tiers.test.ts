// Trust tiers, sanity checks and corrections against a real coordinator (PostgreSQL, Redis, libp2p)
// and fake agents: under the default policy (none + canaries, dev hold of 0 s) a cheater's wrong
// answer never reaches a developer as COMPLETED while it is on probation; Inf from finite inputs is
// FAILED at once; `verified` jobs complete only after a check; and when a check later finds a
// delivered result wrong, the developer gets a job.corrected event and a signed webhook delivery.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { parseJobSpec, type TensorWire } from '#protocol';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import {
  referenceMatmul,
  startFakeAgent,
  type FakeAgent,
  type FakeBehaviour,
} from '../helpers/fake-agent.js';
import { matmulSpec } from '../helpers/specs.js';
import { compareResults } from '../../apps/coordinator/src/verification/compare.js';
import { PROBATION_VERIFIED_RESULTS } from '../../apps/coordinator/src/verification/tiers.js';
import { VerifierService } from '../../apps/coordinator/src/verification/verifier.service.js';
import { verifyWebhookSignature } from '../../apps/coordinator/src/events/webhooks/webhook-signature.js';

/** The platform defaults of a production coordinator (test coordinators turn canaries off). */
const DEFAULTS = { CANARY_RATE: '0.05', PROBATION_CANARY_RATE: '0.25', DISPATCH_BACKOFF_MS: '50' };

interface Ctx {
  c: TestCoordinator;
  db: pg.Client;
  agents: FakeAgent[];
  servers: Server[];
}
let ctx: Ctx | null = null;

async function setup(env: Record<string, string> = {}): Promise<Ctx> {
  const c = await startTestCoordinator({ ...DEFAULTS, ...env });
  const db = new pg.Client({ connectionString: c.databaseUrl });
  await db.connect();
  ctx = { c, db, agents: [], servers: [] };
  return ctx;
}

afterEach(async () => {
  if (!ctx) return;
  const { c, db, agents, servers } = ctx;
  ctx = null;
  for (const a of agents) await a.stop().catch(() => undefined);
  for (const s of servers) await new Promise((r) => s.close(r));
  await c.running.app.get(VerifierService).settled();
  await db.end().catch(() => undefined);
  await c.close();
});

async function rows<T extends pg.QueryResultRow>(t: Ctx, text: string, params: unknown[] = []): Promise<T[]> {
  return (await t.db.query<T>(text, params)).rows;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function agent(
  t: Ctx,
  behaviour: FakeBehaviour,
  operatorId: string,
  pricePerUnit = '1',
): Promise<FakeAgent> {
  const a = await startFakeAgent(t.c.url, {
    behaviour,
    operatorId,
    pricePerUnit,
    slots: 4,
    advertEveryMs: 1_000,
  });
  t.agents.push(a);
  await waitFor(`provider ${a.peerId} online`, async () => {
    const list = await api<{ peerId: string; status: string }[]>(t.c.url, 'GET', '/v1/providers');
    return list.body.some((p) => p.peerId === a.peerId && p.status === 'ONLINE') ? true : undefined;
  });
  return a;
}

/** Records checked results for a provider, as if it had passed PROBATION_VERIFIED_RESULTS checks. */
async function makeTrusted(t: Ctx, peerId: string): Promise<void> {
  await t.db.query(
    `INSERT INTO "ReputationEvent" ("peerId", kind, delta, score, "createdAt")
     SELECT $1, 'verified_pass', 0.02, 0.6, now() - interval '1 day' FROM generate_series(1, $2::int)`,
    [peerId, PROBATION_VERIFIED_RESULTS],
  );
}

async function submit(t: Ctx, spec: Record<string, unknown>): Promise<string> {
  const res = await api<{ id: string }>(t.c.url, 'POST', '/v1/jobs', { key: t.c.devKey, body: spec });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

interface JobView {
  state: string;
  cost: string;
  verification: {
    method: string | null;
    verified: boolean;
    corrected: boolean;
    required: boolean;
    cost: { work: string; check: string };
  };
}

async function job(t: Ctx, id: string): Promise<JobView> {
  return (await api<JobView>(t.c.url, 'GET', `/v1/jobs/${id}`, { key: t.c.devKey })).body;
}

async function finished(t: Ctx, id: string, timeoutMs = 30_000): Promise<JobView> {
  return waitFor(
    `job ${id} to finish`,
    async () => {
      const j = await job(t, id);
      return ['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'].includes(j.state) ? j : undefined;
    },
    timeoutMs,
  );
}

async function resultOf(t: Ctx, id: string): Promise<TensorWire[]> {
  const res = await api<{ result: { outputs: TensorWire[] } }>(t.c.url, 'GET', `/v1/jobs/${id}/result`, {
    key: t.c.devKey,
  });
  expect(res.status).toBe(200);
  return res.body.result.outputs;
}

function isRight(spec: Record<string, unknown>, outputs: TensorWire[]): boolean {
  const parsed = parseJobSpec(spec);
  return compareResults(outputs, referenceMatmul(parsed), { spec: parsed }).agree;
}

async function eventTypes(t: Ctx, id: string): Promise<string[]> {
  const events = await rows<{ type: string }>(
    t,
    'SELECT type FROM "JobEvent" WHERE "jobId" = $1 ORDER BY id',
    [id],
  );
  return events.map((e) => e.type);
}

describe('trust tiers and sanity checks (real coordinator, fake agents)', () => {
  it('default policy: a cheater returning zeros on probation never gets a developer job COMPLETED with its answer', async () => {
    const t = await setup();
    const cheater = await agent(t, 'zeros', 'op-cheat');
    // The cheater alone: every job goes to it first.
    const specs = Array.from({ length: 4 }, (_, i) => matmulSpec(6 + i, 8, 5, '5'));
    const ids = await Promise.all(specs.map((s) => submit(t, s)));
    await waitFor('the cheater banned', async () => {
      const [p] = await rows<{ status: string }>(
        t,
        'SELECT status::text FROM "Provider" WHERE "peerId" = $1',
        [cheater.peerId],
      );
      return p?.status === 'BANNED' ? true : undefined;
    });
    for (const id of ids) expect((await job(t, id)).state).not.toBe('COMPLETED');
    // An honest provider of another operator joins: every job completes, with the right answer.
    await agent(t, 'honest', 'op-honest', '3');
    for (const [i, id] of ids.entries()) {
      const done = await finished(t, id);
      expect(done.state).toBe('COMPLETED');
      expect(isRight(specs[i], await resultOf(t, id)), `job ${i} delivered the right answer`).toBe(true);
      expect(done.verification).toMatchObject({ method: 'reference', verified: true, corrected: false });
    }
    const cheats = await rows<{ state: string; error: string | null }>(
      t,
      `SELECT a.state::text, a.error FROM "JobAttempt" a JOIN "Job" j ON j.id = a."jobId"
        WHERE a."providerId" = $1 AND j.canary = false`,
      [cheater.peerId],
    );
    expect(cheats.length).toBeGreaterThan(0);
    expect(cheats.every((a) => a.state === 'FAILED')).toBe(true);
    const [conviction] = await rows<{ kind: string }>(
      t,
      `SELECT kind FROM "ReputationEvent" WHERE "peerId" = $1 AND kind = 'failed_check'`,
      [cheater.peerId],
    );
    expect(conviction?.kind).toBe('failed_check');
  }, 90_000);

  it('Inf outputs from finite inputs are FAILED at once (NON_FINITE_OUTPUT), and the job runs elsewhere', async () => {
    const t = await setup();
    const liar = await agent(t, 'inf', 'op-inf');
    const spec = matmulSpec(4, 4, 4, '5');
    const id = await submit(t, spec);
    const failed = await waitFor('the Inf attempt to fail', async () => {
      const [a] = await rows<{ state: string; error: string }>(
        t,
        `SELECT state::text, error FROM "JobAttempt" WHERE "jobId" = $1 AND "providerId" = $2 AND error IS NOT NULL`,
        [id, liar.peerId],
      );
      return a;
    });
    expect(failed.state).toBe('FAILED');
    expect(failed.error).toMatch(/^NON_FINITE_OUTPUT: c\[0\] is Infinity/);
    // Refused on sight: no coordinator recompute was needed.
    expect(await eventTypes(t, id)).not.toContain('verification.held');
    expect((await job(t, id)).state).not.toBe('COMPLETED');
    await waitFor('the sanity penalty', async () => {
      const [e] = await rows<{ kind: string }>(
        t,
        `SELECT kind FROM "ReputationEvent" WHERE "peerId" = $1 AND kind = 'failed_sanity'`,
        [liar.peerId],
      );
      return e;
    });
    await agent(t, 'honest', 'op-honest', '3');
    expect((await finished(t, id)).state).toBe('COMPLETED');
    expect(isRight(spec, await resultOf(t, id))).toBe(true);
  }, 60_000);

  it('a trusted provider is spot-checked; a job requiring verified completes only after a check (and pays for a check run)', async () => {
    const t = await setup();
    const trusted = await agent(t, 'honest', 'op-trusted');
    await makeTrusted(t, trusted.peerId);
    const plain = await submit(t, matmulSpec(5, 5, 5, '5'));
    const plainDone = await finished(t, plain);
    expect(plainDone.state).toBe('COMPLETED');
    expect(plainDone.verification).toMatchObject({ method: 'spot-check', verified: false, required: false });
    expect(await eventTypes(t, plain)).not.toContain('verification.held');

    const spec = { ...matmulSpec(5, 6, 5, '5'), verification: { mode: 'none', verified: true } };
    const strict = await submit(t, spec);
    const strictDone = await finished(t, strict);
    expect(strictDone.state).toBe('COMPLETED');
    expect(strictDone.verification).toMatchObject({ method: 'reference', verified: true, required: true });
    expect(strictDone.verification.cost.check).toBe(strictDone.verification.cost.work);
    expect(BigInt(strictDone.cost)).toBe(2n * BigInt(strictDone.verification.cost.work));
    const types = await eventTypes(t, strict);
    expect(types.indexOf('verification.held')).toBeGreaterThanOrEqual(0);
    expect(types.indexOf('verification.held')).toBeLessThan(types.indexOf('job.completed'));
  }, 60_000);

  it('without a coordinator reference, a probation result is held until a provider of another operator agrees', async () => {
    const t = await setup({ REFERENCE_WORK_BUDGET: '0' });
    const a = await agent(t, 'honest', 'op-a', '2');
    const b = await agent(t, 'honest', 'op-b', '2');
    const id = await submit(t, matmulSpec(4, 4, 4, '5'));
    const done = await finished(t, id);
    expect(done.state).toBe('COMPLETED');
    expect(done.verification).toMatchObject({ method: 'redundant', verified: true });
    const [completed] = await rows<{ data: { providers: string[]; verification: { checkedBy: string } } }>(
      t,
      `SELECT data FROM "JobEvent" WHERE "jobId" = $1 AND type = 'job.completed'`,
      [id],
    );
    const delivered = completed.data.providers[0];
    expect([a.peerId, b.peerId]).toContain(delivered);
    expect(completed.data.verification.checkedBy).toBe(delivered === a.peerId ? b.peerId : a.peerId);
    // Both runs are paid out of the one reservation (the checker first).
    const paid = await rows<{ account: string }>(
      t,
      `SELECT DISTINCT account FROM "LedgerEntry" WHERE "jobId" = $1 AND account LIKE 'provider:%' AND amount > 0`,
      [id],
    );
    expect(paid.length).toBe(2);
  }, 60_000);

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
      body: { url: `http://127.0.0.1:${port}/gpumesh` },
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
      const res = await api<{ state: string; attempts: number; lastStatus: number; jobId: string }[]>(
        t.c.url,
        'GET',
        '/v1/account/webhook/deliveries',
        { key: t.c.devKey },
      );
      return res.body[0]?.state === 'DELIVERED' ? res.body : undefined;
    });
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ jobId: wrongJob, attempts: 2, lastStatus: 204 });
  }, 90_000);

  it('refuses webhook URLs on private addresses unless allowed', async () => {
    const t = await setup();
    for (const url of [
      'http://127.0.0.1:9/x',
      'https://169.254.169.254/latest',
      'https://localhost/x',
      'ftp://x.example/',
    ]) {
      const res = await api<{ code: string }>(t.c.url, 'PUT', '/v1/account/webhook', {
        key: t.c.devKey,
        body: { url },
      });
      expect(res.status, url).toBe(400);
    }
  }, 30_000);
});
