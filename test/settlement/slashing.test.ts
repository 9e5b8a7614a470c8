import { randomUUID } from 'node:crypto';
import { keccak256, toUtf8Bytes } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANVIL_DEV_KEYS,
  ONE_TOKEN,
  attachComputeToken,
  attachProviderStaking,
  deployAll,
  readStake,
  stakeTokens,
  type DeployedAddresses,
} from '#rewards';
import { api } from '../helpers/coordinator.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SlashExecutorService } from '../../apps/coordinator/src/settlement/slash-executor.service.js';
import {
  query,
  settlementEnv,
  startOwnedCoordinator,
  startTestChain,
  waitFor,
  type OwnedCoordinator,
  type TestChain,
} from './support.js';

const SETTLER = 9;
const SLASHER = 7;
const TREASURY = 6;
const OPERATOR_A = 3;
const OPERATOR_B = 4;
const NO_STAKE = 5;
const PEER = '12D3KooWSxashTestPeerA1111111111111111111111111111';

interface SlashBody {
  id: string;
  state: string;
  amount: string;
  txHash: string | null;
  error: string | null;
  reviewedBy: string | null;
  evidenceHash: string;
}

/** Inserts an evidence row and its slash proposal as the verification flow does (state PROPOSED). */
async function propose(
  databaseUrl: string,
  operator: string,
  amount: bigint,
  executeAfter: Date,
): Promise<{ id: string; evidenceHash: string }> {
  const evidenceId = randomUUID();
  const bundle = JSON.stringify({ test: 'slashing', nonce: randomUUID() });
  const evidenceHash = keccak256(toUtf8Bytes(bundle));
  await query(
    databaseUrl,
    `INSERT INTO "Evidence" (id, "jobId", "attemptId", "peerId", bundle, "bundleHash") VALUES ($1, $2, $3, $4, $5, $6)`,
    [evidenceId, randomUUID(), randomUUID(), PEER, bundle, evidenceHash],
  );
  const rows = await query<{ id: string }>(
    databaseUrl,
    `INSERT INTO "SlashProposal" (id, "peerId", "operatorAddress", "evidenceId", "evidenceHash", amount, reason, "executeAfter", "updatedAt")
     VALUES ($1, $2, $3, $4, $5, $6, 'wrong result in a redundant job', $7, now()) RETURNING id`,
    [randomUUID(), PEER, operator.toLowerCase(), evidenceId, evidenceHash, amount.toString(), executeAfter],
  );
  return { id: rows[0].id, evidenceHash };
}

async function row(databaseUrl: string, id: string): Promise<Record<string, string | null>> {
  const rows = await query<Record<string, string | null>>(
    databaseUrl,
    `SELECT state::text, amount::text, "txHash", "rawTransaction", nonce::text, error, "reviewedBy", "executedAt"::text
     FROM "SlashProposal" WHERE id = $1`,
    [id],
  );
  return rows[0];
}

describe('slashing: proposals become on-chain slashes on ProviderStaking (real anvil)', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let db: TestDatabase;
  let env: Record<string, string>;
  const running: OwnedCoordinator[] = [];
  const operator = (i: number): string => chain.anvil.accounts[i].address;

  beforeAll(async () => {
    chain = await startTestChain(); // automine
    addresses = await deployAll(chain.wallets[0], {
      challengeWindowSeconds: 3600,
      maxEpochSeconds: 3600,
      fundingMarginSeconds: 60,
      unlockDelaySeconds: 3600 + 3600 + 60,
      unbondingDelaySeconds: 60,
      settler: chain.anvil.accounts[SETTLER].address,
      slasher: chain.anvil.accounts[SLASHER].address,
      treasury: chain.anvil.accounts[TREASURY].address,
      mint: [OPERATOR_A, OPERATOR_B].map((i) => ({
        to: chain.anvil.accounts[i].address,
        amount: 1000n * ONE_TOKEN,
      })),
    });
    await stakeTokens({
      staking: addresses.staking,
      signer: chain.wallets[OPERATOR_A],
      amount: 100n * ONE_TOKEN,
    });
    await stakeTokens({
      staking: addresses.staking,
      signer: chain.wallets[OPERATOR_B],
      amount: 40n * ONE_TOKEN,
    });
    db = await createTestDatabase();
    env = settlementEnv(chain, addresses, SETTLER, {
      STAKING_ADDRESS: addresses.staking,
      SLASHER_KEY: ANVIL_DEV_KEYS[SLASHER],
      EPOCH_SECONDS: '3600',
      SETTLEMENT_TICK_MS: '200',
    });
    running.push(await startOwnedCoordinator(db.url, env));
  }, 60_000);

  afterAll(async () => {
    for (const c of running) await c.close().catch(() => undefined);
    await db?.drop();
    await chain?.stop();
  });

  it('executes a due proposal: the stake shrinks, the treasury gets it, the event cites the evidence', async () => {
    const c = running[0];
    const staking = attachProviderStaking(addresses.staking, chain.provider);
    const token = attachComputeToken(addresses.token, chain.provider);
    const treasuryBefore = await token.balanceOf(chain.anvil.accounts[TREASURY].address);
    const p = await propose(db.url, operator(OPERATOR_A), 30n * ONE_TOKEN, new Date(Date.now() - 1000));
    const done = await waitFor('the slash EXECUTED', async () => {
      const r = await row(db.url, p.id);
      return r.state === 'EXECUTED' || r.state === 'FAILED' ? r : undefined;
    });
    expect(done.state).toBe('EXECUTED');
    expect(done.txHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(done.executedAt).not.toBeNull();
    expect((await readStake(staking, operator(OPERATOR_A))).bonded).toBe(70n * ONE_TOKEN);
    expect(await token.balanceOf(chain.anvil.accounts[TREASURY].address)).toBe(
      treasuryBefore + 30n * ONE_TOKEN,
    );
    expect(await staking.isEvidenceUsed(p.evidenceHash)).toBe(true);
    const events = await staking.queryFilter(staking.filters.Slashed(null, p.evidenceHash), 0);
    expect(events).toHaveLength(1);
    expect(events[0].transactionHash).toBe(done.txHash);
    const receipt = await chain.provider.getTransactionReceipt(done.txHash!);
    console.log(`slash gas used: ${receipt?.gasUsed} (tx ${done.txHash})`);

    const listed = await api<SlashBody[]>(c.url, 'GET', `/v1/admin/slashes?peerId=${PEER}`, {
      key: c.adminKey,
    });
    expect(listed.status).toBe(200);
    expect(listed.body.find((s) => s.id === p.id)).toMatchObject({ state: 'EXECUTED', txHash: done.txHash });
  });

  it('caps the amount at the stake, and fails clearly when there is no stake', async () => {
    const staking = attachProviderStaking(addresses.staking, chain.provider);
    const capped = await propose(db.url, operator(OPERATOR_B), 500n * ONE_TOKEN, new Date(Date.now() - 1000));
    const none = await propose(db.url, operator(NO_STAKE), 5n * ONE_TOKEN, new Date(Date.now() - 1000));
    const [a, b] = await waitFor('both settled', async () => {
      const rows = [await row(db.url, capped.id), await row(db.url, none.id)];
      return rows.every((r) => r.state === 'EXECUTED' || r.state === 'FAILED') ? rows : undefined;
    });
    expect(a.state).toBe('EXECUTED');
    expect(a.amount).toBe((40n * ONE_TOKEN).toString()); // what was really slashed
    expect(await readStake(staking, operator(OPERATOR_B))).toMatchObject({ bonded: 0n, unbonding: 0n });
    expect(b.state).toBe('FAILED');
    expect(b.error).toMatch(/no stake/);
    expect(b.txHash).toBeNull(); // nothing was signed
  });

  it('never executes a proposal an admin cancelled during its review window', async () => {
    const c = running[0];
    const staking = attachProviderStaking(addresses.staking, chain.provider);
    const before = await readStake(staking, operator(OPERATOR_A));
    const p = await propose(db.url, operator(OPERATOR_A), 10n * ONE_TOKEN, new Date(Date.now() + 1500));
    const cancel = await api<SlashBody>(c.url, 'POST', `/v1/admin/slashes/${p.id}/cancel`, {
      key: c.adminKey,
    });
    expect(cancel.status).toBe(200);
    expect(cancel.body).toMatchObject({
      state: 'CANCELLED',
      reviewedBy: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8',
    });
    const again = await api<{ error: { message: string } }>(
      c.url,
      'POST',
      `/v1/admin/slashes/${p.id}/cancel`,
      {
        key: c.adminKey,
      },
    );
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/is CANCELLED/);
    // a developer key may not cancel
    const dev = await api(c.url, 'POST', `/v1/admin/slashes/${p.id}/cancel`, { key: c.devKey });
    expect(dev.status).toBe(403);
    await new Promise((r) => setTimeout(r, 2500)); // past executeAfter, several ticks
    expect((await row(db.url, p.id)).state).toBe('CANCELLED');
    expect(await staking.isEvidenceUsed(p.evidenceHash)).toBe(false);
    expect(await readStake(staking, operator(OPERATOR_A))).toEqual(before);
  });

  it('a coordinator killed between SENT and confirmation re-broadcasts the same transaction: one slash', async () => {
    await running[0].close();
    running.length = 0;
    const a = await startOwnedCoordinator(db.url, { ...env, SETTLEMENT_TICK_MS: '0' });
    running.push(a);
    const staking = attachProviderStaking(addresses.staking, chain.provider);
    const before = await readStake(staking, operator(OPERATOR_A));
    const p = await propose(db.url, operator(OPERATOR_A), 20n * ONE_TOKEN, new Date(Date.now() - 1000));

    // Sign, journal (SENT), broadcast... and no block comes: the process gives up waiting and dies.
    await chain.provider.send('evm_setAutomine', [false]);
    const outcomes = await a.running.app.get(SlashExecutorService).executeDue({ timeoutMs: 1500 });
    expect(outcomes.find((o) => o.id === p.id)?.state).toBe('PENDING');
    const sent = await row(db.url, p.id);
    expect(sent.state).toBe('SENT');
    expect(sent.rawTransaction).toMatch(/^0x/);
    expect(sent.nonce).not.toBeNull();
    await a.close();
    running.length = 0;

    // A new process on the same database: its tick re-broadcasts the journaled transaction.
    const b = await startOwnedCoordinator(db.url, env);
    running.push(b);
    await new Promise((r) => setTimeout(r, 1000));
    await chain.provider.send('evm_setAutomine', [true]);
    await chain.provider.send('evm_mine', []);
    const done = await waitFor('the slash EXECUTED after the restart', async () => {
      const r = await row(db.url, p.id);
      return r.state === 'EXECUTED' || r.state === 'FAILED' ? r : undefined;
    });
    expect(done.state).toBe('EXECUTED');
    expect(done.txHash).toBe(sent.txHash);
    const events = await staking.queryFilter(staking.filters.Slashed(null, p.evidenceHash), 0);
    expect(events).toHaveLength(1);
    expect(events[0].transactionHash).toBe(sent.txHash);
    expect((await readStake(staking, operator(OPERATOR_A))).bonded).toBe(before.bonded - 20n * ONE_TOKEN);
    // Running it again is a no-op: nothing is due, the chain is unchanged.
    expect(await b.running.app.get(SlashExecutorService).executeDue()).toEqual([]);
    expect(await staking.queryFilter(staking.filters.Slashed(), 0)).toHaveLength(3);
  });
});
