// Spending caps, against a real anvil, PostgreSQL, Redis and coordinator: what a developer signed
// bounds what it may commit off chain and what the settler can ever debit on chain. The settler
// alone cannot take more (a debit past the cap reverts, even for an epoch of its own making); a
// submission past the cap reserves nothing; a higher cap lets work resume and the epoch is funded
// in full; an epoch whose debit lacks a cap on chain waits (FUNDING, blockedReason), losing nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZeroHash } from 'ethers';
import {
  ONE_TOKEN,
  attachComputeToken,
  attachJobEscrow,
  attachRewardsDistributor,
  fundingTree,
  parseEpochFile,
  type DeployedAddresses,
  type JobEscrowContract,
  type RewardsDistributorContract,
} from '@gpumesh/rewards';
import { api } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import type { FakeAgent } from '../helpers/fake-agent.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SettlementService } from '../../apps/coordinator/src/settlement/settlement.service.js';
import { isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';
import { runSpendingCapCli } from '../../apps/cli/src/spending-cap.js';
import {
  balanceOf,
  deployForSettlement,
  epochs,
  increaseTime,
  query,
  settlementEnv,
  signSpendingCapOf,
  startListedAgent,
  startOwnedCoordinator,
  startTestChain,
  waitFor,
  type OwnedCoordinator,
  type TestChain,
} from './support.js';

const DEV = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
const DEV_INDEX = 0;
const SETTLER = 9;
const PLATFORM = 7;
const DEPOSIT = 20n * ONE_TOKEN;

interface AccountView {
  balance: string;
  reserved: string;
  spendingCap: {
    cap: string;
    spent: string;
    authorisedRemaining: string;
    typedData: {
      domain: { name: string; version: string; chainId: number; verifyingContract: string };
      types: Record<string, { name: string; type: string }[]>;
      primaryType: string;
      message: { account: string; cap: string };
    };
  } | null;
}

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, string> };
}

describe('spending caps on anvil', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let db: TestDatabase;
  let c: OwnedCoordinator;
  let agent: FakeAgent | undefined;
  let escrow: JobEscrowContract;
  let distributor: RewardsDistributorContract;
  let settlement: SettlementService;
  let window: number;

  beforeAll(async () => {
    chain = await startTestChain(1);
    addresses = await deployForSettlement(chain, SETTLER, 30);
    escrow = attachJobEscrow(addresses.escrow, chain.wallets[DEV_INDEX]);
    distributor = attachRewardsDistributor(addresses.distributor, chain.provider);
    window = Number(await distributor.challengeWindow());
    db = await createTestDatabase();
    c = await startOwnedCoordinator(
      db.url,
      settlementEnv(chain, addresses, SETTLER, {
        SETTLEMENT_TICK_MS: '0',
        DEPOSIT_CONFIRMATIONS: '1',
        PLATFORM_ACCOUNT_ADDRESS: chain.anvil.accounts[PLATFORM].address,
        CANARY_RATE: '0',
        MIN_PROVIDER_STAKE: '0',
      }),
    );
    settlement = c.running.app.get(SettlementService);
    // A deposit without any cap: the coordinator credits it, but nothing may be spent from it yet.
    const token = attachComputeToken(addresses.token, chain.wallets[DEV_INDEX]);
    await (await token.approve(addresses.escrow, DEPOSIT)).wait();
    await (await escrow.deposit(DEPOSIT)).wait();
    await waitFor('the deposit credited', async () => {
      const res = await account();
      return BigInt(res.balance) === DEPOSIT ? true : undefined;
    });
    agent = await startListedAgent(c, '300');
  });

  afterAll(async () => {
    await agent?.stop();
    await c?.close();
    await db?.drop();
    await chain?.stop();
  });

  async function account(): Promise<AccountView> {
    const res = await api<AccountView>(c.url, 'GET', '/v1/account', { key: c.devKey });
    expect(res.status).toBe(200);
    return res.body;
  }

  async function putCap(
    cap: bigint,
    signer = DEV_INDEX,
  ): Promise<{ status: number; body: NonNullable<AccountView['spendingCap']> & ErrorBody }> {
    const signature = await signSpendingCapOf(chain, addresses, signer, cap);
    return api<NonNullable<AccountView['spendingCap']> & ErrorBody>(
      c.url,
      'PUT',
      '/v1/account/spending-cap',
      {
        key: c.devKey,
        body: { cap: cap.toString(), signature },
      },
    );
  }

  async function jobCount(): Promise<number> {
    return Number((await query<{ n: string }>(db.url, 'SELECT count(*)::text AS n FROM "Job"'))[0].n);
  }

  async function submit(n: number): Promise<{ status: number; body: { id: string } & ErrorBody }> {
    return api<{ id: string } & ErrorBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(n, n, n, '500'),
    });
  }

  async function completed(id: string): Promise<void> {
    await waitFor(`job ${id}`, async () => {
      const res = await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${id}`, { key: c.devKey });
      if (res.body.state === 'COMPLETED') return true;
      if (isTerminal(res.body.state)) throw new Error(`job ${res.body.state}`);
      return undefined;
    });
    await waitFor('its charge settled', async () =>
      BigInt((await account()).reserved) === 0n && (await balanceOf(db.url, 'system:fees')) > 0n
        ? true
        : undefined,
    );
  }

  let jobCost = 0n;

  it('shows the typed data to sign, and refuses a submission past the cap without reserving anything', async () => {
    const before = await account();
    expect(before.spendingCap).toMatchObject({ cap: '0', spent: '0', authorisedRemaining: '0' });
    expect(before.spendingCap!.typedData).toMatchObject({
      domain: {
        name: 'gpumesh JobEscrow',
        version: '1',
        chainId: chain.anvil.chainId,
        verifyingContract: addresses.escrow,
      },
      primaryType: 'SpendingCap',
      types: {
        SpendingCap: [
          { name: 'account', type: 'address' },
          { name: 'cap', type: 'uint256' },
        ],
      },
      message: { cap: '0' },
    });
    expect(before.spendingCap!.typedData.message.account.toLowerCase()).toBe(DEV);

    const jobs = await jobCount();
    const refused = await submit(16);
    expect(refused.status).toBe(402);
    expect(refused.body.error.code).toBe('SPENDING_CAP_EXCEEDED');
    expect(refused.body.error.message).toMatch(/PUT it to \/v1\/account\/spending-cap/);
    jobCost = BigInt(refused.body.error.details!.required);
    expect(jobCost).toBeGreaterThan(0n);
    // Nothing was reserved or stored.
    const after = await account();
    expect(after.balance).toBe(before.balance);
    expect(after.reserved).toBe('0');
    expect(await jobCount()).toBe(jobs);
  });

  it('verifies a signed cap: wrong signer, bad input and stale caps are 400s', async () => {
    const forged = await putCap(jobCost, 1);
    expect(forged.status).toBe(400);
    expect(forged.body.error.code).toBe('SPENDING_CAP_SIGNATURE_INVALID');
    for (const body of [
      { cap: '-1', signature: '0x' },
      { cap: '12', signature: '0x1234' },
      { cap: 'lots', signature: `0x${'11'.repeat(65)}` },
      { cap: '1', signature: `0x${'11'.repeat(65)}`, extra: true },
    ]) {
      const res = await api<ErrorBody>(c.url, 'PUT', '/v1/account/spending-cap', { key: c.devKey, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    // A cap for exactly one job.
    const ok = await putCap(jobCost);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      cap: jobCost.toString(),
      authorisedRemaining: jobCost.toString(),
    });
    expect((await putCap(jobCost)).status).toBe(200); // the same again: idempotent
    const stale = await putCap(jobCost - 1n);
    expect(stale.status).toBe(400);
    expect(stale.body.error.code).toBe('SPENDING_CAP_STALE');
    expect((await account()).spendingCap!.cap).toBe(jobCost.toString());
  });

  it('admits work up to the cap, refuses more, and resumes once the developer signs a higher cap', async () => {
    const first = await submit(16);
    expect(first.status).toBe(201);
    await completed(first.body.id);
    const spent = BigInt((await account()).spendingCap!.spent);
    expect(spent).toBeGreaterThan(0n);
    expect(spent).toBeLessThanOrEqual(jobCost);

    const before = await account();
    const jobs = await jobCount();
    const refused = await submit(16);
    expect(refused.status).toBe(402);
    expect(refused.body.error.code).toBe('SPENDING_CAP_EXCEEDED');
    expect((await account()).balance).toBe(before.balance);
    expect(await jobCount()).toBe(jobs);

    // The developer raises it with the CLI, which reads the domain from the coordinator and PUTs it.
    const out: string[] = [];
    const err: string[] = [];
    const code = await runSpendingCapCli(
      [
        '--cap',
        (10n * ONE_TOKEN).toString(),
        '--key-env',
        'DEV_KEY',
        '--coordinator',
        c.url,
        '--api-key-env',
        'API_KEY',
      ],
      { out: (l) => out.push(l), err: (l) => err.push(l) },
      { DEV_KEY: chain.anvil.accounts[DEV_INDEX].privateKey, API_KEY: c.devKey },
    );
    expect(code, err.join('\n')).toBe(0);
    expect(JSON.parse(out.join('\n'))).toMatchObject({ coordinator: { cap: (10n * ONE_TOKEN).toString() } });
    const second = await submit(16);
    expect(second.status).toBe(201);
    await completed(second.body.id);
  });

  it('funds an epoch in full once the caps are on chain; without one it waits FUNDING and loses nothing', async () => {
    // The coordinator lost the stored cap (as if it was never given): the settler cannot authorize it.
    await query(db.url, 'DELETE FROM "SpendingCap"');
    const closed = await settlement.closeNow();
    expect(closed.closed).toBe(true);
    const epoch = closed.epoch;
    await settlement.post(epoch);
    await increaseTime(chain, window + 1);
    expect(await escrow.spendingCapOf(DEV)).toBe(0n);
    await settlement.advance();
    const waiting = (await epochs(db.url)).find((e) => e.id === epoch)!;
    expect(waiting.state).toBe('FUNDING');
    expect(waiting.blockedReason).toMatch(/waiting for spending caps/);
    expect(waiting.blockedReason).toContain(DEV);
    expect(await escrow.spentBy(DEV)).toBe(0n);
    expect(await distributor.fundedIn(epoch)).toBe(0n);
    expect(await escrow.balanceOf(DEV)).toBe(DEPOSIT);

    // The developer signs again: the settler submits it, then debits the epoch in full.
    expect((await putCap(10n * ONE_TOKEN)).status).toBe(200);
    await settlement.advance();
    const funded = (await epochs(db.url)).find((e) => e.id === epoch)!;
    expect(funded.state).toBe('FINALIZED');
    expect(funded.blockedReason).toBeNull();
    expect(await escrow.spendingCapOf(DEV)).toBe(10n * ONE_TOKEN);
    const file = parseEpochFile(
      (await query<{ json: string }>(db.url, 'SELECT json FROM "EpochFile" WHERE "epochId" = $1', [epoch]))[0]
        .json,
    );
    const owed = file.debits.reduce((s, d) => s + BigInt(d.amount), 0n);
    // Σ debits == the epoch total, and the developer's cumulative debits are exactly what it owed.
    expect(owed).toBe(BigInt(funded.total!));
    expect(await escrow.debitedIn(epoch)).toBe(BigInt(funded.total!));
    expect(await distributor.fundedIn(epoch)).toBe(BigInt(funded.total!));
    expect(await escrow.spentBy(DEV)).toBe(owed);
    expect(await escrow.spentBy(DEV)).toBeLessThanOrEqual(await escrow.spendingCapOf(DEV));
    // Off chain and on chain agree.
    const view = await account();
    expect(BigInt(view.balance) + BigInt(view.reserved)).toBe(await escrow.balanceOf(DEV));
  });

  it('the settler alone cannot debit past the cap, even for an epoch of its own making', async () => {
    const anyone = attachJobEscrow(addresses.escrow, chain.wallets[SETTLER]);
    const settlerDistributor = attachRewardsDistributor(addresses.distributor, chain.wallets[SETTLER]);
    const cap = await escrow.spendingCapOf(DEV);
    const spent = await escrow.spentBy(DEV);
    const balance = await escrow.balanceOf(DEV);
    const take = cap - spent + 1n; // one base unit past the cap, well within the balance
    expect(take).toBeLessThan(balance);
    const forged = Number(await distributor.lastEpoch()) + 1;
    // The settler commits a debit of `take` with a root of its own making; once final, it is sent.
    const batch = { index: 0, accounts: [DEV], amounts: [take] };
    const tree = fundingTree({ chainId: chain.anvil.chainId, escrow: addresses.escrow }, forged, [batch])!;
    await (
      await settlerDistributor.postRoot(forged, `0x${'66'.repeat(32)}`, ZeroHash, take, tree.root)
    ).wait();
    await increaseTime(chain, window + 1);
    expect(await distributor.isFinal(forged)).toBe(true);
    const receipt = await (
      await anyone.debit(forged, 0, batch.accounts, batch.amounts, tree.proof(0))
    ).wait();
    const short = receipt!.logs
      .map((l) => escrow.interface.parseLog(l))
      .find((l) => l?.name === 'DebitShort');
    expect([short?.args[2], short?.args[3]]).toEqual([take, take - 1n]);
    // Taken up to the cap the developer signed, not one base unit more.
    expect(await escrow.spentBy(DEV)).toBe(cap);
    expect(await escrow.balanceOf(DEV)).toBe(balance - (take - 1n));
  });
});
