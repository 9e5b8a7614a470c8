// The operator of a provider is the EVM address that signs its adverts (its staking address), not the
// operatorId it declares: two peers of one wallet are one operator, so they never both run copies of
// one redundant job, whatever names they give themselves.
import { Wallet } from 'ethers';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { matmulSpec } from '../helpers/specs.js';

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function attemptsOf(
  c: TestCoordinator,
  jobId: string,
): Promise<{ providerId: string; state: string }[]> {
  const client = new pg.Client({ connectionString: c.databaseUrl });
  await client.connect();
  try {
    const res = await client.query<{ providerId: string; state: string }>(
      'SELECT "providerId", state::text FROM "JobAttempt" WHERE "jobId" = $1 ORDER BY attempt',
      [jobId],
    );
    return res.rows;
  } finally {
    await client.end();
  }
}

interface ProviderBody {
  peerId: string;
  operatorId: string;
  usableStake: string | null;
  inFlightValue: string;
}

describe('operator identity is the signing (staking) address', () => {
  let c: TestCoordinator;
  const agents: FakeAgent[] = [];

  beforeAll(async () => {
    // No chain here: placement is not stake-gated; the subject is who counts as one operator.
    c = await startTestCoordinator({
      DISPATCH_BACKOFF_MS: '50',
      DISPATCH_ATTEMPTS: '30',
      CAPACITY_WAIT_MS: '300',
      // Canaries would mirror the job onto the same peers: not the subject here.
      CANARY_RATE: '0',
      PROBATION_CANARY_RATE: '0',
    });
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await c?.close();
  });

  it('two peers advertising one wallet never run the same redundant job', async () => {
    const shared = Wallet.createRandom();
    const twinA = await startFakeAgent(c.url, { wallet: shared, operatorId: 'op-twin-a', pricePerUnit: '1' });
    const twinB = await startFakeAgent(c.url, { wallet: shared, operatorId: 'op-twin-b', pricePerUnit: '1' });
    agents.push(twinA, twinB);
    const providers = await waitFor('both twins online', async () => {
      const res = await api<ProviderBody[]>(c.url, 'GET', '/v1/providers');
      const twins = res.body.filter((p) => p.peerId === twinA.peerId || p.peerId === twinB.peerId);
      return twins.length === 2 ? twins : undefined;
    });
    // The declared names are ignored: both are the wallet's address, and nothing gates by stake here.
    for (const p of providers) {
      expect(p.operatorId).toBe(shared.address.toLowerCase());
      expect(p.usableStake).toBeNull();
      expect(p.inFlightValue).toBe('0');
    }
    const redundant = { ...matmulSpec(3, 3, 3, '5'), redundancy: 2 };
    await new Promise((r) => setTimeout(r, 2_100)); // the what-if index is rebuilt every 2 s
    const dry = await api<{
      placeable: boolean;
      explanation: { eligible: number; eligibleOperators: number };
    }>(c.url, 'POST', '/v1/jobs/dry-run', { key: c.devKey, body: redundant });
    expect(dry.status).toBe(200);
    expect(dry.body.placeable).toBe(false);
    expect(dry.body.explanation).toMatchObject({ eligible: 2, eligibleOperators: 1 });

    // A job of redundancy 2 waits until a second operator appears, then runs on one twin and it.
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', { key: c.devKey, body: redundant });
    expect(job.status).toBe(201);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(twinA.offers + twinB.offers).toBe(0);
    const other = await startFakeAgent(c.url, { pricePerUnit: '2' });
    agents.push(other);
    await waitFor('the job completed', async () => {
      const res = await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${job.body.id}`, { key: c.devKey });
      return res.body.state === 'COMPLETED' ? true : undefined;
    });
    const ran = (await attemptsOf(c, job.body.id))
      .filter((a) => a.state === 'SUCCEEDED')
      .map((a) => a.providerId);
    expect(ran).toHaveLength(2);
    expect(ran).toContain(other.peerId);
    expect(ran.filter((p) => p === twinA.peerId || p === twinB.peerId)).toHaveLength(1);
    expect(twinA.offers + twinB.offers).toBe(1);
  }, 60_000);
});
