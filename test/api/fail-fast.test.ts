// Fail fast, with the reason (issue 21): what no provider can run is refused at submit, fails within
// seconds on the agents' own error, or fails after a short grace period with the placement
// explanation; every failure releases its reservation and says why in `job.error` and the events.
// Real PostgreSQL, Redis and libp2p; the agents are fake only in how they compute.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Wallet } from 'ethers';
import { encodeTensor } from '@gpumesh/protocol';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { fundedDeveloper, type TestDeveloper } from '../helpers/accounts.js';
import { matmulSpec } from '../helpers/specs.js';
import { pollUntil, query } from '../helpers/poll.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';

interface JobBody {
  id: string;
  state: string;
  cost: string;
  error: { code: string; message: string } | null;
}

interface Account {
  balance: string;
  reserved: string;
}

const GRACE_SECONDS = 2;
const CREDITS = 50_000_000n;

function int32Matmul(): Record<string, unknown> {
  const values = new Int32Array([1, 2, 3, 4]);
  return {
    ...matmulSpec(2, 2, 2, '10'),
    inputs: [encodeTensor('a', 'int32', [2, 2], values), encodeTensor('b', 'int32', [2, 2], values)],
  };
}

describe('fail fast, with the reason', () => {
  let c: TestCoordinator;
  let dev: TestDeveloper;
  const agents: FakeAgent[] = [];

  beforeAll(async () => {
    c = await startTestCoordinator({
      DISPATCH_BACKOFF_MS: '50',
      CAPACITY_WAIT_MS: '200',
      OFFER_ACCEPT_TIMEOUT_MS: '3000',
      UNPLACEABLE_GRACE_SECONDS: String(GRACE_SECONDS),
    });
    dev = await fundedDeveloper(c, CREDITS);
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop();
  });
  afterAll(async () => {
    await c?.close();
  });

  const account = async (): Promise<Account> =>
    (await api<Account>(c.url, 'GET', '/v1/account', { key: dev.key })).body;

  const submit = async (body: Record<string, unknown>): Promise<JobBody> => {
    const res = await api<JobBody>(c.url, 'POST', '/v1/jobs', { key: dev.key, body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };

  const finished = (id: string, timeoutMs = 15_000): Promise<JobBody> =>
    pollUntil(
      `job ${id} to finish`,
      async () => {
        const res = await api<JobBody>(c.url, 'GET', `/v1/jobs/${id}`, { key: dev.key });
        return ['COMPLETED', 'FAILED', 'EXPIRED', 'CANCELLED'].includes(res.body.state)
          ? res.body
          : undefined;
      },
      timeoutMs,
    );

  const startAgents = async (n: number, options: Parameters<typeof startFakeAgent>[1]): Promise<void> => {
    for (let i = 0; i < n; i++) agents.push(await startFakeAgent(c.url, options));
    await pollUntil(
      `${agents.length} providers`,
      async () =>
        (await api<unknown[]>(c.url, 'GET', '/v1/providers')).body.length >= agents.length ? true : undefined,
      10_000,
    );
  };

  /** The job's failure event carries the same structured error as the job. */
  const failureEvent = async (jobId: string): Promise<{ error: { code: string; message: string } }> => {
    const rows = await query<{ data: { error: { code: string; message: string } } }>(
      c.databaseUrl,
      `SELECT data FROM "JobEvent" WHERE "jobId" = $1 AND type IN ('job.failed', 'job.expired')`,
      [jobId],
    );
    expect(rows).toHaveLength(1);
    return rows[0].data;
  };

  /** Every base unit the job reserved went back: nothing of it left reserved, nothing charged. */
  const expectReleased = async (jobId: string): Promise<void> => {
    const rows = await query<{ kind: string; account: string; amount: string }>(
      c.databaseUrl,
      'SELECT kind, account, amount::text FROM "LedgerEntry" WHERE "jobId" = $1 ORDER BY id',
      [jobId],
    );
    const net = new Map<string, bigint>();
    for (const r of rows) net.set(r.account, (net.get(r.account) ?? 0n) + BigInt(r.amount));
    expect(rows.map((r) => r.kind)).toEqual(['reserve', 'reserve', 'release', 'release']);
    expect([...net.values()].every((v) => v === 0n)).toBe(true);
  };

  it('refuses at submit what no provider could ever run, naming the field', async () => {
    const free = await api<{ error: { code: string; message: string } }>(c.url, 'POST', '/v1/jobs', {
      key: dev.key,
      body: matmulSpec(2, 2, 2, '0'),
    });
    expect(free.status).toBe(400);
    expect(free.body.error.message).toMatch(/^maxPricePerUnit: /);
    const wasmInt32 = await api<{ error: { code: string; message: string } }>(c.url, 'POST', '/v1/jobs', {
      key: dev.key,
      body: { ...int32Matmul(), requirements: { backends: ['wasm'] } },
    });
    expect(wasmInt32.status).toBe(400);
    expect(wasmInt32.body.error.message).toMatch(/^requirements\.backends: .*inputs\[0\]\.dtype int32/);
    const mismatched = matmulSpec(2, 3, 2, '10');
    mismatched.inputs = [
      (matmulSpec(2, 3, 2).inputs as unknown[])[0],
      (matmulSpec(2, 2, 2).inputs as unknown[])[1],
    ];
    const shapes = await api<{ error: { message: string } }>(c.url, 'POST', '/v1/jobs', {
      key: dev.key,
      body: mismatched,
    });
    expect(shapes.status).toBe(400);
    expect(shapes.body.error.message).toContain('inputs[1].shape');
    expect((await account()).reserved).toBe('0');
  });

  it('fails a job its providers cannot run within seconds, with their error, and releases the reservation', async () => {
    await startAgents(3, { behaviour: 'bad-input' });
    const before = await account();
    const started = Date.now();
    const job = await submit(matmulSpec(2, 2, 2, '10'));
    expect((await account()).reserved).toBe(job.cost);
    const done = await finished(job.id, 10_000);
    const ms = Date.now() - started;
    console.info(`[fail-fast] input fault failed the job in ${ms} ms`);
    expect(done.state).toBe('FAILED');
    expect(done.error?.code).toBe('INPUT_REJECTED');
    expect(done.error?.message).toContain('providers of 2 distinct operators could not run this job');
    expect(done.error?.message).toContain('BAD_INPUT: matmul inputs cannot run here (test agent)');
    expect((await failureEvent(job.id)).error).toMatchObject({ code: 'INPUT_REJECTED' });
    // Two distinct providers were asked, not every provider.
    expect(agents.map((a) => a.offers).sort()).toEqual([0, 1, 1]);
    expect(ms).toBeLessThan(5_000);
    expect(await account()).toEqual(before);
    await expectReleased(job.id);
  });

  it('does not let one operator fail a job alone, however many peers it runs', async () => {
    const liar = Wallet.createRandom();
    await startAgents(2, { behaviour: 'bad-input', wallet: liar, pricePerUnit: '1' });
    // The honest provider is full until both of the liar's peers have failed the job.
    await startAgents(1, { behaviour: 'full', pricePerUnit: '5' });
    const [liarA, liarB, honest] = agents;
    const job = await submit(matmulSpec(2, 2, 2, '10'));
    await pollUntil(
      'both peers of the liar to fail the job',
      async () => (liarA.offers + liarB.offers >= 2 ? true : undefined),
      10_000,
    );
    expect((await api<JobBody>(c.url, 'GET', `/v1/jobs/${job.id}`, { key: dev.key })).body.state).not.toBe(
      'FAILED',
    );
    honest.setBehaviour('honest');
    const done = await finished(job.id);
    expect(done.state).toBe('COMPLETED');
    expect(done.error).toBeNull();
    expect([liarA.offers, liarB.offers]).toEqual([1, 1]);
  });

  it('fails a job nothing can place after the grace period, with the dry run’s reasons', async () => {
    // Two operators, both on wasm: no int32 matmul can go to them, and three operators do not exist.
    await startAgents(2, { backend: 'wasm' });
    const before = await account();
    const dry = await api<{ placeable: boolean; reasons: string[] }>(c.url, 'POST', '/v1/jobs/dry-run', {
      key: dev.key,
      body: int32Matmul(),
    });
    expect(dry.body.placeable).toBe(false);
    expect(dry.body.reasons.join()).toContain('excluded by backend 2');
    const started = Date.now();
    const int32 = await submit(int32Matmul());
    const triple = await submit({ ...matmulSpec(2, 2, 2, '10'), redundancy: 3 });
    const [a, b] = [await finished(int32.id), await finished(triple.id)];
    const ms = Date.now() - started;
    console.info(`[fail-fast] unplaceable jobs failed ${ms} ms after submission (grace ${GRACE_SECONDS} s)`);
    expect(ms).toBeGreaterThanOrEqual(GRACE_SECONDS * 1000);
    expect(ms).toBeLessThan(GRACE_SECONDS * 1000 + 8_000);
    expect(a.state).toBe('FAILED');
    expect(a.error?.code).toBe('UNPLACEABLE');
    expect(a.error?.message).toContain(`no provider could take this job for ${GRACE_SECONDS} s`);
    expect(a.error?.message).toContain('excluded by backend 2');
    expect(b.error?.code).toBe('UNPLACEABLE');
    expect(b.error?.message).toContain('reduce redundancy from 3 to 2');
    expect((await failureEvent(triple.id)).error.message).toBe(b.error?.message);
    expect(agents.map((x) => x.offers)).toEqual([0, 0]);
    expect(await account()).toEqual(before);
    await expectReleased(int32.id);
    await expectReleased(triple.id);
  });

  it('says why an expired job expired', async () => {
    const before = await account();
    const job = await submit({ ...matmulSpec(2, 2, 2, '10'), deadlineSeconds: 1 });
    const done = await finished(job.id);
    expect(done.state).toBe('EXPIRED');
    expect(done.error).toEqual({
      code: 'DEADLINE_PASSED',
      message: 'the deadline passed before a provider finished the job',
    });
    expect((await failureEvent(job.id)).error.code).toBe('DEADLINE_PASSED');
    expect(await account()).toEqual(before);
    await expectReleased(job.id);
  });

  it('dry-runs the balance: a job costing 10^12 against 5×10^7 is not placeable, and says why', async () => {
    await startAgents(1, {});
    const dear = await api<{
      placeable: boolean;
      cost: string;
      funds: { required: string; available: string; sufficient: boolean };
      reasons: string[];
    }>(c.url, 'POST', '/v1/jobs/dry-run', { key: dev.key, body: matmulSpec(2, 2, 2, '1000000000000') });
    expect(dear.status).toBe(200);
    expect(BigInt(dear.body.cost)).toBeGreaterThanOrEqual(10n ** 12n);
    expect(dear.body.placeable).toBe(false);
    const { balance } = await account();
    expect(dear.body.funds).toEqual({ required: dear.body.cost, available: balance, sufficient: false });
    expect(dear.body.reasons).toEqual([
      `INSUFFICIENT_BALANCE: this job costs ${dear.body.cost} base units but the available balance is ${balance}`,
    ]);
  });
});
