import { randomUUID } from 'node:crypto';
import { keccak256, toUtf8Bytes } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANVIL_DEV_KEYS,
  ONE_TOKEN,
  attachComputeToken,
  attachJobEscrow,
  attachProviderStaking,
  deployAll,
  readSlashProposal,
  readStake,
  requestUnbond,
  slashTxKey,
  stakeTokens,
  withdrawUnbonded,
  type DeployedAddresses,
  type SlashStep,
  type TxAttempt,
} from '@gpumesh/rewards';
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
const DEV_A = 6;
const DEV_B = 8;
const OPERATOR_A = 3;
const OPERATOR_B = 4;
const NO_STAKE = 5;
const UNBONDING_SECONDS = 60;
/** ProviderStaking's own review delay (≤ the coordinator's window, here set per row). */
const CHAIN_REVIEW_SECONDS = 120;
const PEER = '12D3KooWSxashTestPeerA1111111111111111111111111111';

interface SlashBody {
  id: string;
  state: string;
  amount: string;
  txHash: string | null;
  proposeTxHash: string | null;
  cancelTxHash: string | null;
  error: string | null;
  reviewedBy: string | null;
  evidenceHash: string;
}

interface EvidenceBody {
  hash: string;
  bundle: string;
  slash: {
    state: string;
    amount: string;
    proposeTxHash: string | null;
    executeTxHash: string | null;
    beneficiaries: { account: string; weight: string }[];
  } | null;
}

/** Inserts an evidence row and its slash proposal as the verification flow does (state PROPOSED). */
async function propose(
  databaseUrl: string,
  operator: string,
  amount: bigint,
  executeAfter: Date,
  beneficiaries: { account: string; weight: bigint }[] = [],
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
    `INSERT INTO "SlashProposal" (id, "peerId", "operatorAddress", "evidenceId", "evidenceHash", amount, reason, beneficiaries, "executeAfter", "updatedAt")
     VALUES ($1, $2, $3, $4, $5, $6, 'wrong result in a redundant job', $7::jsonb, $8, now()) RETURNING id`,
    [
      randomUUID(),
      PEER,
      operator.toLowerCase(),
      evidenceId,
      evidenceHash,
      amount.toString(),
      JSON.stringify(
        beneficiaries.map((b) => ({ account: b.account.toLowerCase(), weight: b.weight.toString() })),
      ),
      executeAfter,
    ],
  );
  return { id: rows[0].id, evidenceHash };
}

async function row(databaseUrl: string, id: string): Promise<Record<string, string | null>> {
  const rows = await query<Record<string, string | null>>(
    databaseUrl,
    `SELECT state::text, amount::text, "txHash", nonce::text, "proposeTxHash",
            "cancelTxHash", compensated::text, burnt::text, error, "reviewedBy", "executedAt"::text, "frozenAt"::text
     FROM "SlashProposal" WHERE id = $1`,
    [id],
  );
  return rows[0];
}

/** The coordinator's journal entry (`ChainTx`) of one step of the slash for `evidenceHash`. */
async function journaled(
  databaseUrl: string,
  step: SlashStep,
  evidenceHash: string,
): Promise<{ nonce: number; attempts: TxAttempt[] } | undefined> {
  const rows = await query<{ nonce: number; attempts: TxAttempt[] }>(
    databaseUrl,
    `SELECT nonce, attempts FROM "ChainTx" WHERE key = $1`,
    [slashTxKey(step, evidenceHash)],
  );
  return rows[0];
}

/** Waits until the proposal reaches one of `states` (or a final state) and returns its row. */
function until(databaseUrl: string, id: string, ...states: string[]): Promise<Record<string, string | null>> {
  const final = ['EXECUTED', 'CANCELLED', 'EXPIRED', 'FAILED'];
  return waitFor(`slash ${id} in ${states.join('/')}`, async () => {
    const r = await row(databaseUrl, id);
    return states.includes(r.state!) || final.includes(r.state!) ? r : undefined;
  });
}

describe('slashing: a proposal freezes the stake on chain at once; execution compensates developers or burns (real anvil)', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let db: TestDatabase;
  let env: Record<string, string>;
  const running: OwnedCoordinator[] = [];
  const operator = (i: number): string => chain.anvil.accounts[i].address;
  const increaseTime = async (seconds: number): Promise<void> => {
    await chain.provider.send('evm_increaseTime', [seconds]);
    await chain.provider.send('evm_mine', []);
  };

  beforeAll(async () => {
    chain = await startTestChain(); // automine
    addresses = await deployAll(chain.wallets[0], {
      challengeWindowSeconds: 3600,
      maxEpochSeconds: 3600,
      fundingMarginSeconds: 60,
      unlockDelaySeconds: 3600 + 3600 + 60,
      unbondingDelaySeconds: UNBONDING_SECONDS,
      slashReviewDelaySeconds: CHAIN_REVIEW_SECONDS,
      settler: chain.anvil.accounts[SETTLER].address,
      slasher: chain.anvil.accounts[SLASHER].address,
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
      DEPOSIT_CONFIRMATIONS: '1',
    });
    running.push(await startOwnedCoordinator(db.url, env));
  }, 60_000);

  afterAll(async () => {
    for (const c of running) await c.close().catch(() => undefined);
    await db?.drop();
    await chain?.stop();
  });

  it('the measured attack fails: a convicted provider that unbonds cannot withdraw the frozen stake; execution compensates the developers', async () => {
    const c = running[0];
    const staking = attachProviderStaking(addresses.staking, chain.provider);
    const token = attachComputeToken(addresses.token, chain.provider);
    const escrow = attachJobEscrow(addresses.escrow, chain.provider);
    const devA = chain.anvil.accounts[DEV_A].address;
    const devB = chain.anvil.accounts[DEV_B].address;
    // Convicted: the review window (SLASH_REVIEW_SECONDS) is an hour away, but the stake freezes now.
    const p = await propose(db.url, operator(OPERATOR_A), 30n * ONE_TOKEN, new Date(Date.now() + 3_600_000), [
      { account: devA, weight: 3n },
      { account: devB, weight: 1n },
    ]);
    const frozen = await until(db.url, p.id, 'FROZEN');
    expect(frozen.state).toBe('FROZEN');
    expect(frozen.proposeTxHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(frozen.frozenAt).not.toBeNull();
    expect(await readStake(staking, operator(OPERATOR_A))).toMatchObject({
      bonded: 100n * ONE_TOKEN,
      frozen: 30n * ONE_TOKEN,
    });
    // The on-chain proposal cites the public evidence's hash.
    const proposed = await staking.queryFilter(staking.filters.SlashProposed(p.evidenceHash), 0);
    expect(proposed).toHaveLength(1);
    expect(proposed[0].transactionHash).toBe(frozen.proposeTxHash);

    // The attack: unbond everything, wait out the 60 s unbonding delay (inside the review window), withdraw.
    const signer = chain.wallets[OPERATOR_A];
    await requestUnbond({ staking: addresses.staking, signer });
    await increaseTime(UNBONDING_SECONDS + 1);
    const out = await withdrawUnbonded({ staking: addresses.staking, signer });
    expect(out.withdrawn).toBe(70n * ONE_TOKEN); // only the unfrozen part
    await expect(withdrawUnbonded({ staking: addresses.staking, signer })).rejects.toMatchObject({
      code: 'STAKE_FROZEN',
    });
    const direct = await attachProviderStaking(addresses.staking, signer)
      .withdraw.staticCall()
      .catch((err: { revert?: { name?: string } }) => err.revert?.name);
    expect(direct).toBe('StakeFrozen');
    expect(await readStake(staking, operator(OPERATOR_A))).toMatchObject({
      bonded: 0n,
      unbonding: 30n * ONE_TOKEN,
      frozen: 30n * ONE_TOKEN,
    });

    // The evidence, with the slash's state and transactions. This hand-made bundle is not a version 2
    // bundle (hashed whole), so it cannot be redacted: strangers are refused, an admin reads it.
    const stranger = await api(c.url, 'GET', `/v1/evidence/${p.evidenceHash}`);
    expect(stranger.status).toBe(403);
    const evidence = await api<EvidenceBody>(c.url, 'GET', `/v1/evidence/${p.evidenceHash}`, {
      key: c.adminKey,
    });
    expect(evidence.status).toBe(200);
    expect(keccak256(toUtf8Bytes(evidence.body.bundle))).toBe(p.evidenceHash);
    expect(evidence.body.slash).toMatchObject({
      state: 'FROZEN',
      amount: (30n * ONE_TOKEN).toString(),
      proposeTxHash: frozen.proposeTxHash,
      executeTxHash: null,
    });
    expect(evidence.body.slash?.beneficiaries).toEqual([
      { account: devA.toLowerCase(), weight: '3' },
      { account: devB.toLowerCase(), weight: '1' },
    ]);
    expect((await api(c.url, 'GET', '/v1/evidence/0x1234')).status).toBe(400);
    expect((await api(c.url, 'GET', `/v1/evidence/${keccak256(toUtf8Bytes('unknown'))}`)).status).toBe(404);

    // The review window passes (the chain's delay too): the executor slashes the frozen stake.
    const supply = await token.totalSupply();
    await increaseTime(CHAIN_REVIEW_SECONDS);
    await query(
      db.url,
      `UPDATE "SlashProposal" SET "executeAfter" = now() - interval '1 second' WHERE id = $1`,
      [p.id],
    );
    const done = await until(db.url, p.id, 'EXECUTED');
    expect(done).toMatchObject({
      state: 'EXECUTED',
      amount: (30n * ONE_TOKEN).toString(),
      compensated: (30n * ONE_TOKEN).toString(),
      burnt: '0',
    });
    expect(await readStake(staking, operator(OPERATOR_A))).toMatchObject({
      bonded: 0n,
      unbonding: 0n,
      frozen: 0n,
    });
    expect(await escrow.balanceOf(devA)).toBe((225n * ONE_TOKEN) / 10n);
    expect(await escrow.balanceOf(devB)).toBe((75n * ONE_TOKEN) / 10n);
    expect(await token.totalSupply()).toBe(supply);
    const events = await staking.queryFilter(staking.filters.Slashed(null, p.evidenceHash), 0);
    expect(events).toHaveLength(1);
    expect(events[0].transactionHash).toBe(done.txHash);
    console.log(
      `executeSlash gas used: ${(await chain.provider.getTransactionReceipt(done.txHash!))?.gasUsed}`,
    );

    // The deposit watcher credits the compensation off-chain as escrow deposits.
    await chain.provider.send('anvil_mine', ['0x2']);
    const credited = await waitFor('the compensation credited', async () => {
      const rows = await query<{ address: string; amount: string }>(
        db.url,
        `SELECT address, amount::text FROM "EscrowEvent" WHERE kind = 'deposit' AND "txHash" = $1 ORDER BY address`,
        [done.txHash],
      );
      return rows.length === 2 ? rows : undefined;
    });
    expect(Object.fromEntries(credited.map((r) => [r.address, r.amount]))).toEqual({
      [devA.toLowerCase()]: ((225n * ONE_TOKEN) / 10n).toString(),
      [devB.toLowerCase()]: ((75n * ONE_TOKEN) / 10n).toString(),
    });

    const after = await api<EvidenceBody>(c.url, 'GET', `/v1/evidence/${p.evidenceHash}`, {
      key: c.adminKey,
    });
    expect(after.body.slash).toMatchObject({ state: 'EXECUTED', executeTxHash: done.txHash });
    const listed = await api<SlashBody[]>(c.url, 'GET', `/v1/admin/slashes?peerId=${PEER}`, {
      key: c.adminKey,
    });
    expect(listed.status).toBe(200);
    expect(listed.body.find((s) => s.id === p.id)).toMatchObject({ state: 'EXECUTED', txHash: done.txHash });
  });

  it('freezes at most the stake and burns it when no developer is named; fails clearly without stake', async () => {
    const staking = attachProviderStaking(addresses.staking, chain.provider);
    const token = attachComputeToken(addresses.token, chain.provider);
    const capped = await propose(db.url, operator(OPERATOR_B), 500n * ONE_TOKEN, new Date(Date.now() - 1000));
    const none = await propose(db.url, operator(NO_STAKE), 5n * ONE_TOKEN, new Date(Date.now() - 1000));
    const frozen = await until(db.url, capped.id, 'FROZEN');
    expect(frozen.amount).toBe((40n * ONE_TOKEN).toString()); // what the chain froze
    const supply = await token.totalSupply();
    await increaseTime(CHAIN_REVIEW_SECONDS); // the chain's own review delay
    const [a, b] = await waitFor('both settled', async () => {
      const rows = [await row(db.url, capped.id), await row(db.url, none.id)];
      return rows.every((r) => r.state === 'EXECUTED' || r.state === 'FAILED') ? rows : undefined;
    });
    expect(a).toMatchObject({ state: 'EXECUTED', amount: (40n * ONE_TOKEN).toString(), compensated: '0' });
    expect(a.burnt).toBe((40n * ONE_TOKEN).toString());
    expect(await token.totalSupply()).toBe(supply - 40n * ONE_TOKEN);
    expect(await readStake(staking, operator(OPERATOR_B))).toMatchObject({
      bonded: 0n,
      unbonding: 0n,
      frozen: 0n,
    });
    expect(b.state).toBe('FAILED');
    expect(b.error).toMatch(/no stake/);
    expect(b.proposeTxHash).toBeNull(); // nothing was signed
  });

  it('an admin cancel unfreezes the stake on chain with the slasher key', async () => {
    const c = running[0];
    const staking = attachProviderStaking(addresses.staking, chain.provider);
    const signer = chain.wallets[OPERATOR_A];
    await stakeTokens({ staking: addresses.staking, signer, amount: 50n * ONE_TOKEN });
    const p = await propose(db.url, operator(OPERATOR_A), 10n * ONE_TOKEN, new Date(Date.now() + 3_600_000));
    await until(db.url, p.id, 'FROZEN');
    expect((await readStake(staking, operator(OPERATOR_A))).frozen).toBe(10n * ONE_TOKEN);
    // a developer key may not cancel
    const dev = await api(c.url, 'POST', `/v1/admin/slashes/${p.id}/cancel`, { key: c.devKey });
    expect(dev.status).toBe(403);
    const cancel = await api<SlashBody>(c.url, 'POST', `/v1/admin/slashes/${p.id}/cancel`, {
      key: c.adminKey,
      body: { reason: 'evidence reviewed: the reference was wrong' },
    });
    expect(cancel.status).toBe(200);
    expect(cancel.body).toMatchObject({
      state: 'CANCELLING',
      reviewedBy: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8',
    });
    const cancelled = await until(db.url, p.id, 'CANCELLED');
    expect(cancelled.state).toBe('CANCELLED');
    expect(cancelled.cancelTxHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect((await readSlashProposal(staking, p.evidenceHash)).state).toBe('CANCELLED');
    expect((await readStake(staking, operator(OPERATOR_A))).frozen).toBe(0n);
    const again = await api<{ error: { message: string } }>(
      c.url,
      'POST',
      `/v1/admin/slashes/${p.id}/cancel`,
      {
        key: c.adminKey,
        body: { reason: 'again' },
      },
    );
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/is CANCELLED/);
    // Unfrozen: the provider unbonds and withdraws everything.
    await requestUnbond({ staking: addresses.staking, signer });
    await increaseTime(UNBONDING_SECONDS + 1);
    expect((await withdrawUnbonded({ staking: addresses.staking, signer })).withdrawn).toBe(50n * ONE_TOKEN);
  });

  it('a coordinator killed after journaling a step re-broadcasts the same transaction: one proposal, one slash', async () => {
    await running[0].close();
    running.length = 0;
    let a = await startOwnedCoordinator(db.url, { ...env, SETTLEMENT_TICK_MS: '0' });
    running.push(a);
    const staking = attachProviderStaking(addresses.staking, chain.provider);
    await stakeTokens({
      staking: addresses.staking,
      signer: chain.wallets[OPERATOR_A],
      amount: 40n * ONE_TOKEN,
    });
    const p = await propose(db.url, operator(OPERATOR_A), 20n * ONE_TOKEN, new Date(Date.now() - 1000));

    // Propose: sign, journal, broadcast... and no block comes: the process gives up waiting and dies.
    await chain.provider.send('evm_setAutomine', [false]);
    let outcomes = await a.running.app.get(SlashExecutorService).executeDue({ timeoutMs: 1500 });
    expect(outcomes.find((o) => o.id === p.id)?.state).toBe('PENDING');
    const proposing = await row(db.url, p.id);
    expect(proposing.state).toBe('PROPOSED');
    const proposeEntry = await journaled(db.url, 'propose', p.evidenceHash);
    expect(proposeEntry?.attempts.map((a) => a.txHash)).toEqual([proposing.proposeTxHash]);
    expect(proposeEntry?.attempts[0].rawTransaction).toMatch(/^0x/);
    await a.close();
    running.length = 0;
    a = await startOwnedCoordinator(db.url, { ...env, SETTLEMENT_TICK_MS: '0' });
    running.push(a);
    await chain.provider.send('evm_setAutomine', [true]);
    await chain.provider.send('evm_mine', []);
    outcomes = await a.running.app.get(SlashExecutorService).executeDue({ timeoutMs: 5000 });
    expect(outcomes.find((o) => o.id === p.id)?.state).toBe('FROZEN');
    expect((await row(db.url, p.id)).proposeTxHash).toBe(proposing.proposeTxHash);
    expect(await staking.queryFilter(staking.filters.SlashProposed(p.evidenceHash), 0)).toHaveLength(1);

    // Execute: the same crash between SENT and confirmation.
    await increaseTime(CHAIN_REVIEW_SECONDS);
    await query(
      db.url,
      `UPDATE "SlashProposal" SET "executeAfter" = now() - interval '1 second' WHERE id = $1`,
      [p.id],
    );
    const before = await readStake(staking, operator(OPERATOR_A));
    await chain.provider.send('evm_setAutomine', [false]);
    outcomes = await a.running.app.get(SlashExecutorService).executeDue({ timeoutMs: 1500 });
    expect(outcomes.find((o) => o.id === p.id)?.state).toBe('PENDING');
    const sent = await row(db.url, p.id);
    expect(sent.state).toBe('SENT');
    const executeEntry = await journaled(db.url, 'execute', p.evidenceHash);
    expect(executeEntry?.attempts.map((a) => a.txHash)).toEqual([sent.txHash]);
    expect(executeEntry?.attempts[0].rawTransaction).toMatch(/^0x/);
    expect(sent.nonce).toBe(String(executeEntry?.nonce));
    await a.close();
    running.length = 0;

    // A new process on the same database: its tick re-broadcasts the journaled transaction.
    const b = await startOwnedCoordinator(db.url, env);
    running.push(b);
    await new Promise((r) => setTimeout(r, 1000));
    await chain.provider.send('evm_setAutomine', [true]);
    await chain.provider.send('evm_mine', []);
    const done = await until(db.url, p.id, 'EXECUTED');
    expect(done.state).toBe('EXECUTED');
    expect(done.txHash).toBe(sent.txHash);
    const events = await staking.queryFilter(staking.filters.Slashed(null, p.evidenceHash), 0);
    expect(events).toHaveLength(1);
    expect(events[0].transactionHash).toBe(sent.txHash);
    expect(await readStake(staking, operator(OPERATOR_A))).toMatchObject({
      bonded: before.bonded - 20n * ONE_TOKEN,
      frozen: 0n,
    });
    // Running it again is a no-op: nothing is due, the chain is unchanged.
    expect(await b.running.app.get(SlashExecutorService).executeDue()).toEqual([]);
    expect(await staking.queryFilter(staking.filters.Slashed(), 0)).toHaveLength(3);
  });
});
