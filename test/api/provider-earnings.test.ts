// GET /v1/providers/:peerId/earnings on a real coordinator (PostgreSQL, Redis, libp2p) with a real
// libp2p provider: what a GPU owner's `status` shows, per job id it can look up — gross, fee, net,
// held / earned / in a closed epoch / reversed — and GET /v1/market, the price range `init` shows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '#prisma';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { VerificationRepository } from '../../apps/coordinator/src/verification/verification.repository.js';
import { SettlementRepository } from '../../apps/coordinator/src/settlement/settlement.repository.js';
import { PrismaService } from '../../apps/coordinator/src/database/prisma.service.js';

const PRICE = 300n;
const FEE_BPS = 500n; // the default PLATFORM_FEE_BPS
const FEE_RECIPIENT = '0x00000000000000000000000000000000000000fe';

interface EarningsBody {
  peerId: string;
  address: string | null;
  feeBps: number;
  totals: { net: string; held: string; pendingEpoch: string; inEpochs: string; reversed: string };
  openEpoch: number | null;
  jobs: {
    jobId: string;
    attempts: number[];
    gross: string;
    fee: string;
    net: string;
    reversed: string;
    state: string;
    epoch: number | null;
    epochState: string | null;
    finishedAt: string | null;
  }[];
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

describe('provider earnings and market price range', () => {
  let c: TestCoordinator;
  let agent: FakeAgent;
  const jobs: { id: string; workUnits: bigint }[] = [];

  beforeAll(async () => {
    // A verification hold: payments go to `held` first, as on a real network.
    c = await startTestCoordinator({ VERIFICATION_HOLD_SECONDS: '3600' });
    agent = await startFakeAgent(c.url, { pricePerUnit: PRICE.toString() });
    await waitFor('the provider', async () => {
      const res = await api<{ peerId: string }[]>(c.url, 'GET', '/v1/providers');
      return res.body.some((p) => p.peerId === agent.peerId) ? true : undefined;
    });
    for (const n of [4, 6, 8]) {
      const res = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
        key: c.devKey,
        body: matmulSpec(n, n, n, PRICE.toString()),
      });
      expect(res.status).toBe(201);
      await waitFor(`job ${res.body.id}`, async () => {
        const j = await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${res.body.id}`, { key: c.devKey });
        return j.body.state === 'COMPLETED' ? true : undefined;
      });
      const row = await c.running.app
        .get(PrismaService)
        .job.findUniqueOrThrow({ where: { id: res.body.id } });
      jobs.push({ id: res.body.id, workUnits: row.workUnits });
    }
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await c?.close();
  });

  const earnings = (peerId = agent.peerId, query = '') =>
    api<EarningsBody>(c.url, 'GET', `/v1/providers/${peerId}/earnings${query}`);

  it('lists each paid job with gross, fee and net, held until verified', async () => {
    const res = await earnings();
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ peerId: agent.peerId, address: agent.address, feeBps: Number(FEE_BPS) });
    expect(res.body.jobs.map((j) => j.jobId).sort()).toEqual(jobs.map((j) => j.id).sort());
    let net = 0n;
    for (const j of jobs) {
      const row = res.body.jobs.find((r) => r.jobId === j.id)!;
      const gross = PRICE * j.workUnits;
      const fee = (gross * FEE_BPS) / 10_000n;
      expect(row).toMatchObject({
        attempts: [1],
        gross: gross.toString(),
        fee: fee.toString(),
        net: (gross - fee).toString(),
        state: 'held',
        epoch: null,
      });
      expect(row.finishedAt).not.toBeNull();
      net += gross - fee;
    }
    expect(res.body.totals).toMatchObject({ net: net.toString(), held: net.toString(), pendingEpoch: '0' });
    // Most recent first, and ?limit bounds the list.
    expect(res.body.jobs[0].jobId).toBe(jobs[2].id);
    expect((await earnings(agent.peerId, '?limit=1')).body.jobs.map((j) => j.jobId)).toEqual([jobs[2].id]);
  });

  it('follows a credit as it vests, lands in a closed epoch, or is reversed', async () => {
    const verification = c.running.app.get(VerificationRepository);
    const prisma = c.running.app.get(PrismaService);
    const [vested, reversed] = jobs;
    expect(await verification.vest({ peerId: agent.peerId, jobId: vested.id, amount: 0n })).toBe(true);
    const job = (await prisma.job.findUniqueOrThrow({ where: { id: reversed.id } })) as Job;
    expect(
      await verification.reverse({ peerId: agent.peerId, jobId: reversed.id, amount: 0n }, job),
    ).toBeGreaterThan(0n);

    let res = await earnings();
    const row = (id: string) => res.body.jobs.find((r) => r.jobId === id)!;
    expect(row(vested.id)).toMatchObject({ state: 'earned', epoch: null });
    expect(row(reversed.id)).toMatchObject({ state: 'reversed', net: '0' });

    const settlement = c.running.app.get(SettlementRepository, { strict: false });
    const open = await settlement.ensureOpenEpoch(async () => 1);
    const closed = await settlement.closeEpoch(open.id, FEE_RECIPIENT, {
      chainId: 31337,
      distributor: `0x${'d1'.repeat(20)}`,
      escrow: `0x${'e5'.repeat(20)}`,
    });
    expect(closed.closed).toBe(true);
    res = await earnings();
    expect(row(vested.id)).toMatchObject({ state: 'in-epoch', epoch: open.id, epochState: 'CLOSED' });
    expect(row(jobs[2].id)).toMatchObject({ state: 'held', epoch: null });
    const vestedNet = BigInt(row(vested.id).net);
    expect(res.body.totals).toMatchObject({
      inEpochs: vestedNet.toString(),
      pendingEpoch: '0',
      held: row(jobs[2].id).net,
      reversed: row(reversed.id).reversed,
    });
    expect(res.body.openEpoch).toBe(open.id + 1);
  });

  it('answers 404 for an unknown provider and 400 for a malformed id', async () => {
    expect((await earnings('12D3KooWGRUVh6ZDMb7ZZ6J2FCVhV8u3yyfgR3Ls5FdKojxUrZpV')).status).toBe(404);
    expect((await earnings('not-a-peer-id')).status).toBe(400);
    expect((await earnings(agent.peerId, '?limit=100000')).status).toBe(400);
  });

  it('GET /v1/market: the price range of live providers and the fee', async () => {
    const res = await api<Record<string, unknown>>(c.url, 'GET', '/v1/market');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      providers: 1,
      min: PRICE.toString(),
      median: PRICE.toString(),
      max: PRICE.toString(),
      feeBps: Number(FEE_BPS),
    });
  });

  it('stops the work on the provider when the developer cancels a running job, and pays nothing', async () => {
    agent.setRunDelay(20_000);
    const offered = agent.offeredFees.length;
    const before = await api<{ balance: string }>(c.url, 'GET', '/v1/account', { key: c.devKey });
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(7, 7, 7, PRICE.toString()),
    });
    expect(job.status).toBe(201);
    try {
      await waitFor('the offer', async () => (agent.offeredFees.length > offered ? true : undefined));
      const stopped = agent.cancelledRuns;
      const cancel = await api<{ state: string }>(c.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, {
        key: c.devKey,
      });
      expect(cancel.body.state).toBe('CANCELLED');
      await waitFor(
        'the provider to stop',
        async () => (agent.cancelledRuns > stopped ? true : undefined),
        5_000,
      );
      const attempt = await waitFor('the attempt closed', async () => {
        const rows = await c.running.app
          .get(PrismaService)
          .jobAttempt.findMany({ where: { jobId: job.body.id } });
        return rows.length === 1 && rows[0].state === 'FAILED' ? rows[0] : undefined;
      });
      expect(attempt.error).toMatch(/CANCELLED/);
      const after = await api<{ balance: string }>(c.url, 'GET', '/v1/account', { key: c.devKey });
      expect(after.body.balance).toBe(before.body.balance);
      expect((await earnings()).body.jobs.some((j) => j.jobId === job.body.id)).toBe(false);
    } finally {
      agent.setRunDelay(0);
    }
  });

  it('keeps the fee signed into the offer when the fee is raised while the job runs', async () => {
    agent.setRunDelay(1_500);
    const offered = agent.offeredFees.length;
    const job = await api<{ id: string; workUnits: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(9, 9, 9, PRICE.toString()),
    });
    expect(job.status).toBe(201);
    await waitFor('the offer', async () => (agent.offeredFees.length > offered ? true : undefined));
    expect(agent.offeredFees[offered]).toBe(Number(FEE_BPS));
    // The admin raises the fee to 100 % after the provider accepted at 5 %.
    const put = await api(c.url, 'PUT', '/v1/admin/settings/platformFeeBps', {
      key: c.adminKey,
      body: { value: 10_000, reason: 'fee raised after acceptance (test)' },
    });
    expect(put.status).toBe(200);
    try {
      await waitFor('the job', async () => {
        const res = await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${job.body.id}`, { key: c.devKey });
        return res.body.state === 'COMPLETED' ? true : undefined;
      });
      const row = (await earnings()).body.jobs.find((j) => j.jobId === job.body.id);
      const gross = PRICE * BigInt(job.body.workUnits);
      expect(row).toMatchObject({ gross: gross.toString(), fee: ((gross * FEE_BPS) / 10_000n).toString() });
      expect((await api<{ feeBps: number }>(c.url, 'GET', '/v1/market')).body.feeBps).toBe(10_000);
    } finally {
      agent.setRunDelay(0);
      await api(c.url, 'PUT', '/v1/admin/settings/platformFeeBps', {
        key: c.adminKey,
        body: { value: Number(FEE_BPS), reason: 'back to the test fee' },
      });
    }
  });
});
