import { randomUUID } from 'node:crypto';
import { Wallet } from 'ethers';
import pg from 'pg';
import { SiweMessage } from 'siwe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';

interface JobBody {
  id: string;
  state: string;
  cost: string;
  workUnits: string;
}
interface ErrorBody {
  statusCode: number;
  error: { code: string; message: string };
}
interface AccountBody {
  balance: string;
  reserved: string;
}

describe('jobs API (real PostgreSQL + Redis)', () => {
  let c: TestCoordinator;

  beforeAll(async () => {
    c = await startTestCoordinator();
  });
  afterAll(async () => {
    await c?.close();
  });

  it('prices a matmul from its spec, reserves the cost and queues the job', async () => {
    const before = await api<AccountBody>(c.url, 'GET', '/v1/account', { key: c.devKey });
    const res = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(64, 32, 16, '7'),
    });
    expect(res.status).toBe(201);
    // 2·m·n·k FLOPs = 65,536 → 1 work unit (1 MFLOP, rounded up) × price 7
    expect(res.body.workUnits).toBe('1');
    expect(res.body.cost).toBe('7');
    expect(res.body.state).toBe('QUEUED');
    const after = await api<AccountBody>(c.url, 'GET', '/v1/account', { key: c.devKey });
    expect(BigInt(before.body.balance) - BigInt(after.body.balance)).toBe(7n);
    expect(BigInt(after.body.reserved) - BigInt(before.body.reserved)).toBe(7n);
    const got = await api<JobBody & { spec: unknown }>(c.url, 'GET', `/v1/jobs/${res.body.id}`, {
      key: c.devKey,
    });
    expect(got.status).toBe(200);
    expect(got.body.id).toBe(res.body.id);
  });

  it('returns the first job for a repeated Idempotency-Key and refuses it for a different spec', async () => {
    const headers = { 'idempotency-key': `k-${Date.now()}` };
    const first = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      headers,
      body: matmulSpec(8, 8, 8, '3'),
    });
    const again = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      headers,
      body: matmulSpec(8, 8, 8, '3'),
    });
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    const other = await api<ErrorBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      headers,
      body: matmulSpec(8, 8, 4, '3'),
    });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('IDEMPOTENCY_CONFLICT');
  });

  it('answers 402 when the balance cannot cover the cost, and reserves nothing', async () => {
    const before = await api<AccountBody>(c.url, 'GET', '/v1/account', { key: c.devKey });
    const huge = matmulSpec(64, 64, 64, '1000000000000000000');
    const res = await api<ErrorBody>(c.url, 'POST', '/v1/jobs', { key: c.devKey, body: huge });
    expect(res.status).toBe(402);
    expect(res.body.error.code).toBe('INSUFFICIENT_BALANCE');
    const after = await api<AccountBody>(c.url, 'GET', '/v1/account', { key: c.devKey });
    expect(after.body).toEqual(before.body);
  });

  it('submits a batch: every spec validated before any is stored, each job with its own outcome', async () => {
    const account = async (): Promise<AccountBody> =>
      (await api<AccountBody>(c.url, 'GET', '/v1/account', { key: c.devKey })).body;
    const before = await account();
    const invalid = await api<ErrorBody>(c.url, 'POST', '/v1/jobs/batch', {
      key: c.devKey,
      body: { jobs: [matmulSpec(4, 4, 4, '2'), { ...matmulSpec(4, 4, 4, '2'), kind: 'nope' }] },
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.message).toMatch(/^jobs\[1\]: /);
    for (const body of [{ jobs: [] }, { jobs: 'x' }, [matmulSpec(4, 4, 4, '2')]]) {
      const res = await api<ErrorBody>(c.url, 'POST', '/v1/jobs/batch', { key: c.devKey, body });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    expect(await account()).toEqual(before);

    interface BatchBody {
      items: { index: number; job?: JobBody; created?: boolean; error?: { code: string } }[];
      created: number;
      refused: number;
    }
    const headers = { 'idempotency-key': `batch-${Date.now()}` };
    const jobs = [
      matmulSpec(8, 8, 8, '2'),
      matmulSpec(64, 64, 64, '1000000000000000000'),
      matmulSpec(8, 8, 4, '3'),
    ];
    const first = await api<BatchBody>(c.url, 'POST', '/v1/jobs/batch', {
      key: c.devKey,
      headers,
      body: { jobs },
    });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ created: 2, refused: 1 });
    expect(first.body.items.map((i) => i.index)).toEqual([0, 1, 2]);
    expect(first.body.items[1].error?.code).toBe('INSUFFICIENT_BALANCE');
    expect(first.body.items[0].job?.state).toBe('QUEUED');
    const after = await account();
    expect(BigInt(before.balance) - BigInt(after.balance)).toBe(2n + 3n);

    // the same batch again: the stored jobs come back, nothing is stored or reserved twice
    const again = await api<BatchBody>(c.url, 'POST', '/v1/jobs/batch', {
      key: c.devKey,
      headers,
      body: { jobs },
    });
    expect(again.status).toBe(200);
    expect(again.body.items.map((i) => i.job?.id)).toEqual(first.body.items.map((i) => i.job?.id));
    expect(again.body.items.map((i) => i.created)).toEqual([false, undefined, false]);
    expect(await account()).toEqual(after);
  });

  it('cancels a queued job, releases its reservation, and refuses a second cancel', async () => {
    const before = await api<AccountBody>(c.url, 'GET', '/v1/account', { key: c.devKey });
    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(16, 16, 16, '5'),
    });
    const cancelled = await api<JobBody>(c.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, { key: c.devKey });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.state).toBe('CANCELLED');
    const after = await api<AccountBody>(c.url, 'GET', '/v1/account', { key: c.devKey });
    expect(after.body).toEqual(before.body);
    const twice = await api<ErrorBody>(c.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, { key: c.devKey });
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('ILLEGAL_TRANSITION');
    const result = await api<ErrorBody>(c.url, 'GET', `/v1/jobs/${job.body.id}/result`, { key: c.devKey });
    expect(result.status).toBe(409);
    expect(result.body.error.code).toBe('RESULT_NOT_READY');
  });

  it('records every transition as an event and streams them as server-sent events', async () => {
    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(4, 4, 4, '1'),
    });
    await api(c.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, { key: c.devKey });
    const response = await fetch(`${c.url}/v1/jobs/${job.body.id}/events`, {
      headers: { authorization: `Bearer ${c.devKey}` },
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const text = await response.text(); // the stream ends after the terminal event
    const events = text
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)) as { type: string; toState: string | null });
    expect(events.map((e) => e.type)).toEqual(['job.submitted', 'job.cancelled']);
    expect(events.map((e) => e.toState)).toEqual(['QUEUED', 'CANCELLED']);
  });

  it('streams a transition that happens while the client is connected', async () => {
    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(4, 4, 4, '1'),
    });
    const response = await fetch(`${c.url}/v1/jobs/${job.body.id}/events`, {
      headers: { authorization: `Bearer ${c.devKey}` },
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let received = '';
    try {
      // Read until the history has arrived (the stream may start with a bare newline).
      while (!received.includes('job.submitted')) {
        const chunk = await reader.read();
        if (chunk.done) break;
        received += decoder.decode(chunk.value, { stream: true });
      }
      expect(received).toContain('job.submitted');
      const started = Date.now();
      await api(c.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, { key: c.devKey });
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        received += decoder.decode(chunk.value, { stream: true });
      }
      expect(received).toContain('job.cancelled');
      expect(Date.now() - started).toBeLessThan(1_900); // pushed by the notice bus, not the 2 s poll
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  });

  it('pages through jobs with a cursor and filters by state', async () => {
    for (let i = 0; i < 5; i++) {
      await api(c.url, 'POST', '/v1/jobs', { key: c.devKey, body: matmulSpec(2, 2, 2 + i, '1') });
    }
    const seen = new Set<string>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { status: number; body: { items: JobBody[]; nextCursor: string | null } } = await api(
        c.url,
        'GET',
        `/v1/jobs?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
        { key: c.devKey },
      );
      expect(page.status).toBe(200);
      for (const item of page.body.items) {
        expect(seen.has(item.id)).toBe(false);
        seen.add(item.id);
      }
      cursor = page.body.nextCursor;
      pages += 1;
    } while (cursor && pages < 20);
    expect(seen.size).toBeGreaterThanOrEqual(5);
    const cancelled = await api<{ items: JobBody[] }>(c.url, 'GET', '/v1/jobs?state=CANCELLED', {
      key: c.devKey,
    });
    expect(cancelled.body.items.length).toBeGreaterThan(0);
    expect(cancelled.body.items.every((j) => j.state === 'CANCELLED')).toBe(true);
  });

  it('hides other accounts\u2019 jobs and lets admins see them', async () => {
    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2, '1'),
    });
    const asAdmin = await api<JobBody>(c.url, 'GET', `/v1/jobs/${job.body.id}`, { key: c.adminKey });
    expect(asAdmin.status).toBe(200);
  });

  it('admits concurrent submissions while the balance lasts, never overdrawing it', async () => {
    const key = await fundedKey(c, 100n);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        api<JobBody>(c.url, 'POST', '/v1/jobs', { key, body: matmulSpec(2, 2, 1 + (i % 3), '7') }),
      ),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(14); // 14 × 7 = 98 ≤ 100
    expect(statuses.filter((s) => s === 402)).toHaveLength(36);
    const account = await api<AccountBody>(c.url, 'GET', '/v1/account', { key });
    expect(account.body).toMatchObject({ balance: '2', reserved: '98' });
    const client = new pg.Client({ connectionString: c.databaseUrl });
    await client.connect();
    try {
      const sum = await client.query<{ total: string }>(
        'SELECT COALESCE(SUM(amount), 0)::text AS total FROM "LedgerEntry"',
      );
      expect(sum.rows[0].total).toBe('0'); // double entry: every transaction balances
    } finally {
      await client.end();
    }
  });
});

describe('shutdown', () => {
  it('stops promptly while a client holds a live event stream open', async () => {
    // A dispatch in flight finishes its wait for capacity (CAPACITY_WAIT_MS) before the worker stops.
    const c = await startTestCoordinator({ CAPACITY_WAIT_MS: '200' });
    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2, '1'),
    });
    const response = await fetch(`${c.url}/v1/jobs/${job.body.id}/events`, {
      headers: { authorization: `Bearer ${c.devKey}` },
    });
    const reader = response.body!.getReader();
    await reader.read();
    const started = Date.now();
    await c.close();
    expect(Date.now() - started).toBeLessThan(3_000);
    await reader.cancel().catch(() => undefined);
  });
});

/** A new developer account (signed in with a fresh wallet) with `credits` minted to it, and its API key. */
async function fundedKey(c: TestCoordinator, credits: bigint): Promise<string> {
  const wallet = Wallet.createRandom();
  const nonce = await api<{ nonce: string; domain: string; chainId: number; uri: string }>(
    c.url,
    'GET',
    '/v1/auth/nonce',
  );
  const message = new SiweMessage({
    domain: nonce.body.domain,
    address: wallet.address,
    uri: nonce.body.uri,
    version: '1',
    chainId: nonce.body.chainId,
    nonce: nonce.body.nonce,
  }).prepareMessage();
  const session = await api<{ token: string; accountId: string }>(c.url, 'POST', '/v1/auth/siwe', {
    body: { message, signature: await wallet.signMessage(message) },
  });
  const key = await api<{ secret: string }>(c.url, 'POST', '/v1/auth/api-keys', {
    key: session.body.token,
    body: { name: 'funded' },
  });
  const client = new pg.Client({ connectionString: c.databaseUrl });
  await client.connect();
  try {
    const account = `acct:${session.body.accountId}:available`;
    await client.query(
      `INSERT INTO "LedgerEntry" ("txId", account, amount, kind) VALUES
         ($4, 'system:mint', $1, 'mint'), ($4, $2, $3, 'mint')`,
      [(-credits).toString(), account, credits.toString(), randomUUID()],
    );
    await client.query(
      `INSERT INTO "LedgerBalance" (account, balance, "updatedAt") VALUES ($1, $2, now())
       ON CONFLICT (account) DO UPDATE SET balance = "LedgerBalance".balance + EXCLUDED.balance`,
      [account, credits.toString()],
    );
  } finally {
    await client.end();
  }
  return key.body.secret;
}
