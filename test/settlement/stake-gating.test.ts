// Stake gates placement, against a real anvil, ProviderStaking and coordinator: a provider with no
// stake gets no offers (the dry run says `stake` and how much more is needed); staking enough makes it
// eligible (the coordinator sees the Staked event); and a provider whose in-flight value would then
// exceed its collateral is skipped for the next job.
import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANVIL_DEV_KEYS,
  ONE_TOKEN,
  attachComputeToken,
  stakeTokens,
  type DeployedAddresses,
} from '@gpumesh/rewards';
import { api } from '../helpers/coordinator.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { matmulSpec } from '../helpers/specs.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  depositIntoEscrow,
  deployForSettlement,
  query,
  settlementEnv,
  startOwnedCoordinator,
  startTestChain,
  waitFor,
  type OwnedCoordinator,
  type TestChain,
} from './support.js';
import { isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';

const SETTLER = 9;
const AGENT_A = 3;
const AGENT_B = 4;
const MIN_STAKE = 10n * ONE_TOKEN;
/** A 2×2×2 matmul is 1 work unit: its value on a provider is that provider's price. */
const PRICE_A = 2n * ONE_TOKEN;
const PRICE_B = 3n * ONE_TOKEN;
const JOB = matmulSpec(2, 2, 2, PRICE_B.toString());

interface ProviderBody {
  peerId: string;
  operatorId: string;
  usableStake: string | null;
  inFlightValue: string;
}

interface DryRunBody {
  placeable: boolean;
  explanation: {
    excluded: Record<string, number>;
    cheapest?: { kind: string; additionalStake?: string; peerIds?: string[] };
    message: string;
  };
}

describe('stake gates placement (real anvil + ProviderStaking + coordinator)', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let db: TestDatabase;
  let c: OwnedCoordinator;
  const agents: FakeAgent[] = [];

  const provider = async (peerId: string): Promise<ProviderBody | undefined> =>
    (await api<ProviderBody[]>(c.url, 'GET', '/v1/providers')).body.find((p) => p.peerId === peerId);

  const attemptsOf = async (jobId: string): Promise<{ providerId: string; state: string }[]> =>
    query(
      c.databaseUrl,
      'SELECT "providerId", state::text FROM "JobAttempt" WHERE "jobId" = $1 ORDER BY attempt',
      [jobId],
    );

  const submit = async (): Promise<string> => {
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', { key: c.devKey, body: JOB });
    expect(job.status).toBe(201);
    return job.body.id;
  };

  const completed = (jobId: string): Promise<boolean> =>
    waitFor(`job ${jobId} completed`, async () => {
      const res = await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${jobId}`, { key: c.devKey });
      if (res.body.state === 'COMPLETED') return true;
      if (isTerminal(res.body.state)) throw new Error(`job ${res.body.state}`);
      return undefined;
    });

  /** Gives an anvil account tokens from account 0 (which the deploy minted to) and stakes them. */
  const stake = async (account: number, amount: bigint): Promise<void> => {
    const token = attachComputeToken(addresses.token, chain.wallets[0]);
    await (await token.transfer(chain.anvil.accounts[account].address, amount)).wait();
    await stakeTokens({ staking: addresses.staking, signer: chain.wallets[account], amount });
  };

  beforeAll(async () => {
    chain = await startTestChain(1);
    addresses = await deployForSettlement(chain, SETTLER, 3600);
    db = await createTestDatabase();
    c = await startOwnedCoordinator(
      db.url,
      settlementEnv(chain, addresses, SETTLER, {
        STAKING_ADDRESS: addresses.staking,
        MIN_PROVIDER_STAKE: MIN_STAKE.toString(),
        STAKE_PER_INFLIGHT_VALUE: '1',
        STAKE_REFRESH_SECONDS: '30', // longer than the test: changes must arrive through the events
        EPOCH_SECONDS: '3600',
        CAPACITY_WAIT_MS: '300',
        DISPATCH_ATTEMPTS: '40',
        DEPOSIT_CONFIRMATIONS: '1',
      }),
    );
    // The developer pays from an escrow deposit (account 0 holds the deploy's mint).
    await depositIntoEscrow(chain, addresses, 0, 100n * ONE_TOKEN);
    await waitFor('the deposit credited', async () => {
      const res = await api<{ balance: string }>(c.url, 'GET', '/v1/account', { key: c.devKey });
      return BigInt(res.body.balance) > 0n ? true : undefined;
    });
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) await a.stop();
    await c?.close();
    await db?.drop();
    await chain?.stop();
  });

  it('offers nothing to a provider without stake, says why, and places on it once it stakes enough', async () => {
    const a = await startFakeAgent(c.url, {
      wallet: new Wallet(ANVIL_DEV_KEYS[AGENT_A]),
      pricePerUnit: PRICE_A.toString(),
    });
    agents.push(a);
    const seen = await waitFor('agent A with its stake read', async () => {
      const p = await provider(a.peerId);
      return p?.usableStake === '0' ? p : undefined;
    });
    expect(seen.operatorId).toBe(chain.anvil.accounts[AGENT_A].address.toLowerCase());

    await new Promise((r) => setTimeout(r, 2_100)); // the what-if index is rebuilt every 2 s
    const dry = await api<DryRunBody>(c.url, 'POST', '/v1/jobs/dry-run', { key: c.devKey, body: JOB });
    expect(dry.status).toBe(200);
    expect(dry.body.placeable).toBe(false);
    expect(dry.body.explanation.excluded.stake).toBe(1);
    // The minimum plus this job's value on A (1 unit × its price).
    expect(dry.body.explanation.cheapest).toMatchObject({
      kind: 'add-stake',
      additionalStake: (MIN_STAKE + PRICE_A).toString(),
      peerIds: [a.peerId],
    });
    expect(dry.body.explanation.message).toContain(
      `must stake at least ${MIN_STAKE + PRICE_A} more base units`,
    );

    const jobId = await submit();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(a.offers).toBe(0);
    expect(await attemptsOf(jobId)).toEqual([]);

    // 13 tokens: enough for the minimum and one job in flight (12), not two (14).
    await stake(AGENT_A, MIN_STAKE + PRICE_A + ONE_TOKEN);
    await completed(jobId);
    expect(a.offers).toBe(1);
    expect((await provider(a.peerId))?.usableStake).toBe((MIN_STAKE + PRICE_A + ONE_TOKEN).toString());
  }, 60_000);

  it('skips a provider whose in-flight value would exceed its collateral', async () => {
    const a = agents[0];
    a.setRunDelay(10_000);
    const first = await submit();
    await waitFor('the first job running on A', async () =>
      (await attemptsOf(first)).some((x) => x.providerId === a.peerId) ? true : undefined,
    );
    expect((await provider(a.peerId))?.inFlightValue).toBe(PRICE_A.toString());

    // B comes online with plenty of stake (so it is not chosen for the first job by exploration).
    await stake(AGENT_B, 100n * ONE_TOKEN);
    const b = await startFakeAgent(c.url, {
      wallet: new Wallet(ANVIL_DEV_KEYS[AGENT_B]),
      pricePerUnit: PRICE_B.toString(),
    });
    agents.push(b);
    await waitFor('agent B with its stake read', async () =>
      (await provider(b.peerId))?.usableStake === (100n * ONE_TOKEN).toString() ? true : undefined,
    );

    // A is cheaper and has free slots, but a second job would need 10 + 2 × 2 = 14 tokens; it has 13.
    await new Promise((r) => setTimeout(r, 2_100)); // the what-if index is rebuilt every 2 s
    const dry = await api<DryRunBody>(c.url, 'POST', '/v1/jobs/dry-run', { key: c.devKey, body: JOB });
    expect(dry.body.placeable).toBe(true);
    expect(dry.body.explanation.excluded.stake).toBe(1);
    const second = await submit();
    await completed(second);
    expect((await attemptsOf(second)).map((x) => x.providerId)).toEqual([b.peerId]);
    expect(a.offers).toBe(2);

    await completed(first);
    // The value falls when the attempt finishes.
    expect((await provider(a.peerId))?.inFlightValue).toBe('0');
    a.setRunDelay(0);
  }, 60_000);

  it('counts what other workers have in flight on a provider (their open attempts in the database)', async () => {
    const a = agents[0];
    // Another worker's offer to A, as its attempt row: 1 work unit at A's price.
    const [job] = await query<{ id: string }>(
      c.databaseUrl,
      `SELECT id::text AS id FROM "Job" WHERE state = 'COMPLETED' ORDER BY "createdAt" LIMIT 1`,
    );
    await query(
      c.databaseUrl,
      `INSERT INTO "JobAttempt" (id, "jobId", attempt, "providerId", state, "offeredAt")
       VALUES (gen_random_uuid(), $1::uuid, 90, $2, 'OFFERED', now())`,
      [job.id, a.peerId],
    );
    await waitFor("the other worker's offer counted", async () =>
      (await provider(a.peerId))?.inFlightValue === PRICE_A.toString() ? true : undefined,
    );
    // With it, A's 13 tokens cover the minimum and that job (12) but not one more (14).
    await new Promise((r) => setTimeout(r, 2_100)); // the what-if index is rebuilt every 2 s
    const dry = await api<DryRunBody>(c.url, 'POST', '/v1/jobs/dry-run', { key: c.devKey, body: JOB });
    expect(dry.body.explanation.excluded.stake).toBe(1);

    await query(
      c.databaseUrl,
      `UPDATE "JobAttempt" SET state = 'LOST' WHERE "jobId" = $1::uuid AND attempt = 90`,
      [job.id],
    );
    await waitFor('the offer gone', async () =>
      (await provider(a.peerId))?.inFlightValue === '0' ? true : undefined,
    );
  }, 60_000);
});
