// Sound money, against a real anvil, PostgreSQL, Redis and coordinator: each attack measured on the
// old code is a regression test here, and every test ends on the money invariants (off-chain balance
// of every developer == its escrow balance; every final epoch fully debited; tokens conserved).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ONE_TOKEN,
  attachComputeToken,
  attachJobEscrow,
  attachRewardsDistributor,
  committedBatches,
  parseEpochFile,
  type ComputeTokenContract,
  type DeployedAddresses,
  type JobEscrowContract,
  type RewardsDistributorContract,
} from '@gpumesh/rewards';
import { api } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import type { FakeAgent } from '../helpers/fake-agent.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SettlementService } from '../../apps/coordinator/src/settlement/settlement.service.js';
import {
  balanceOf,
  deployForSettlement,
  epochs,
  increaseTime,
  query,
  settlementEnv,
  startOwnedCoordinator,
  startTestChain,
  waitFor,
  type OwnedCoordinator,
  type TestChain,
  startListedAgent,
} from './support.js';
import { TERMINAL_STATES, isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';

const DEV = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
const SETTLER = 9;
const PLATFORM = 7;

async function accountId(url: string, address: string): Promise<string> {
  const rows = await query<{ id: string }>(url, 'SELECT id FROM "Account" WHERE address = $1', [address]);
  return rows[0].id;
}

/** The developer's off-chain money: what it may spend plus what running jobs hold. */
async function offChain(url: string, address: string): Promise<bigint> {
  const id = await accountId(url, address);
  return (await balanceOf(url, `acct:${id}:available`)) + (await balanceOf(url, `acct:${id}:reserved`));
}

async function runJob(c: OwnedCoordinator, n: number): Promise<string> {
  const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
    key: c.devKey,
    body: matmulSpec(n, n, n, '500'),
  });
  expect(job.status).toBe(201);
  await waitFor(`job ${job.body.id}`, async () => {
    const res = await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${job.body.id}`, { key: c.devKey });
    if (res.body.state === 'COMPLETED') return true;
    if (isTerminal(res.body.state)) throw new Error(`job ${res.body.state}`);
    return undefined;
  });
  return job.body.id;
}

describe('sound money on anvil', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let db: TestDatabase;
  let c: OwnedCoordinator;
  let agent: FakeAgent | undefined;
  let token: ComputeTokenContract;
  let escrow: JobEscrowContract;
  let distributor: RewardsDistributorContract;

  beforeAll(async () => {
    chain = await startTestChain(1);
    addresses = await deployForSettlement(chain, SETTLER, 2);
    token = attachComputeToken(addresses.token, chain.wallets[0]);
    escrow = attachJobEscrow(addresses.escrow, chain.wallets[0]);
    distributor = attachRewardsDistributor(addresses.distributor, chain.provider);
    db = await createTestDatabase();
    c = await startOwnedCoordinator(
      db.url,
      settlementEnv(chain, addresses, SETTLER, {
        EPOCH_SECONDS: '2',
        SETTLEMENT_TICK_MS: '300',
        DEPOSIT_CONFIRMATIONS: '1',
        PLATFORM_ACCOUNT_ADDRESS: chain.anvil.accounts[PLATFORM].address,
        CANARY_RATE: '0.5',
        // Stake is not the subject here (test/settlement/stake*.test.ts covers it).
        MIN_PROVIDER_STAKE: '0',
      }),
    );
    // The developer and the platform account deposit, as real users would; nothing is minted off chain.
    await (await token.transfer(chain.anvil.accounts[PLATFORM].address, 50n * ONE_TOKEN)).wait();
    const platformWallet = chain.wallets[PLATFORM];
    await (
      await attachComputeToken(addresses.token, platformWallet).approve(addresses.escrow, 50n * ONE_TOKEN)
    ).wait();
    // Each signs a spending cap first (on chain here; the watcher records it before the deposit).
    await (await attachJobEscrow(addresses.escrow, platformWallet).setSpendingCap(50n * ONE_TOKEN)).wait();
    await (await attachJobEscrow(addresses.escrow, platformWallet).deposit(50n * ONE_TOKEN)).wait();
    await (await token.approve(addresses.escrow, 100n * ONE_TOKEN)).wait();
    await (await escrow.setSpendingCap(40n * ONE_TOKEN)).wait();
    await (await escrow.deposit(20n * ONE_TOKEN)).wait();
    await waitFor('both deposits credited', async () =>
      (await offChain(db.url, DEV).catch(() => 0n)) === 20n * ONE_TOKEN &&
      (await offChain(db.url, chain.anvil.accounts[PLATFORM].address.toLowerCase()).catch(() => 0n)) ===
        50n * ONE_TOKEN
        ? true
        : undefined,
    );
    agent = await startListedAgent(c, '300');
  });

  afterAll(async () => {
    await agent?.stop();
    await c?.close();
    await db?.drop();
    await chain?.stop();
  });

  it('debits every base unit charged on chain, fees and canaries included, and nothing is minted', async () => {
    // Canaries follow dispatches at random (rate 0.5): run jobs until at least one canary was made.
    const canaryCount = async (): Promise<number> =>
      Number((await query<{ n: string }>(db.url, `SELECT count(*)::text AS n FROM "Job" WHERE canary`))[0].n);
    for (let i = 0; i < 4 || ((await canaryCount()) === 0 && i < 20); i++) {
      await runJob(c, 24 + (i % 4) * 8);
      if (i >= 3) await new Promise((r) => setTimeout(r, 500)); // a canary is made once its job ends
    }
    const platform = chain.anvil.accounts[PLATFORM].address.toLowerCase();
    await waitFor(
      'every charge in a FINALIZED epoch',
      async () => {
        const open = await query<{ n: string }>(
          db.url,
          `SELECT count(*)::text AS n FROM "Job" WHERE state::text <> ALL($1::text[])`,
          [TERMINAL_STATES],
        );
        if (open[0].n !== '0') return undefined;
        if ((await balanceOf(db.url, 'system:fees')) !== 0n) return undefined;
        const rows = (await epochs(db.url)).filter((e) => e.total !== null);
        return rows.length > 0 && rows.every((e) => e.state === 'FINALIZED') ? rows : undefined;
      },
      90_000,
    );
    const rows = (await epochs(db.url)).filter((e) => e.total !== null);
    let total = 0n;
    for (const e of rows) {
      // Fully debited: the escrow moved exactly the epoch's total, and the distributor holds it.
      expect(await escrow.debitedIn(e.id)).toBe(BigInt(e.total!));
      expect(await distributor.fundedIn(e.id)).toBe(BigInt(e.total!));
      total += BigInt(e.total!);
    }
    // The fee recipient (the platform account by default) has a leaf, paid like a provider.
    const last = rows[rows.length - 1];
    const file = parseEpochFile(
      (
        await query<{ json: string }>(db.url, 'SELECT json FROM "EpochFile" WHERE "epochId" = $1', [last.id])
      )[0].json,
    );
    const feeLeaf = file.leaves.find((l) => l.account === platform);
    expect(feeLeaf && BigInt(feeLeaf.cumulativeAmount)).toBeGreaterThan(0n);
    // Canaries ran, owned by the platform account, and its escrow paid them.
    const canaries = await query<{ n: string }>(db.url, `SELECT count(*)::text AS n FROM "Job" WHERE canary`);
    expect(Number(canaries[0].n)).toBeGreaterThan(0);
    // No mint anywhere: not in the ledger, not on chain after the deploy.
    const mints = await query<{ n: string }>(
      db.url,
      `SELECT count(*)::text AS n FROM "LedgerEntry" WHERE kind = 'mint'`,
    );
    expect(mints[0].n).toBe('0');
    expect(await token.balanceOf(addresses.distributor)).toBe(total);
    // Off chain == on chain for every developer.
    expect(await offChain(db.url, DEV)).toBe(await escrow.balanceOf(DEV));
    expect(await offChain(db.url, platform)).toBe(await escrow.balanceOf(platform));
    const sum = await query<{ total: string }>(
      db.url,
      'SELECT COALESCE(SUM(amount),0)::text AS total FROM "LedgerEntry"',
    );
    expect(sum[0].total).toBe('0');
  });

  it('stops new spending from an unlock request on, resumes on cancel, and mirrors a withdrawal exactly', async () => {
    await (await escrow.requestUnlock()).wait();
    await waitFor('the unlock seen', async () => {
      const res = await api<{ escrowUnlockAt: string | null }>(c.url, 'GET', '/v1/account', {
        key: c.devKey,
      });
      return res.body.escrowUnlockAt ? true : undefined;
    });
    const refused = await api<{ error: { code: string; message: string } }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(8, 8, 8, '500'),
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('ESCROW_UNLOCK_PENDING');
    expect(refused.body.error.message).toMatch(/cancelUnlock/);

    await (await escrow.cancelUnlock()).wait();
    await waitFor('the cancel seen', async () => {
      const res = await api<{ escrowUnlockAt: string | null }>(c.url, 'GET', '/v1/account', {
        key: c.devKey,
      });
      return res.body.escrowUnlockAt === null ? true : undefined;
    });
    await runJob(c, 16);

    // Unlock for real: wait out the delay (moved on chain), withdraw part; off chain follows exactly.
    await waitFor('the job settled', async () =>
      (await balanceOf(db.url, `acct:${await accountId(db.url, DEV)}:reserved`)) === 0n ? true : undefined,
    );
    await (await escrow.requestUnlock()).wait();
    await increaseTime(chain, Number(await escrow.unlockDelay()) + 1);
    const before = await offChain(db.url, DEV);
    await (await escrow.withdraw(ONE_TOKEN)).wait();
    await waitFor('the withdrawal mirrored', async () =>
      (await offChain(db.url, DEV)) === before - ONE_TOKEN ? true : undefined,
    );
    const res = await api<{ escrowUnlockAt: string | null }>(c.url, 'GET', '/v1/account', { key: c.devKey });
    expect(res.body.escrowUnlockAt).toBeNull(); // a withdrawal spends the unlock
    // At quiescence (every charge debited) both sides agree.
    await waitFor(
      'quiescence',
      async () => {
        if ((await balanceOf(db.url, 'system:fees')) !== 0n) return undefined;
        const rows = (await epochs(db.url)).filter((e) => e.total !== null);
        return rows.every((e) => e.state === 'FINALIZED') ? true : undefined;
      },
      60_000,
    );
    expect(await offChain(db.url, DEV)).toBe(await escrow.balanceOf(DEV));
  });
});

/** Settlement driven step by step (no tick), so each step of an attack lands where the test puts it. */
describe('sound money on anvil: shortfalls and vetoes, step by step', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let db: TestDatabase;
  let c: OwnedCoordinator;
  let agent: FakeAgent | undefined;
  let token: ComputeTokenContract;
  let escrow: JobEscrowContract;
  let distributor: RewardsDistributorContract;
  let settlement: SettlementService;
  let window: number;

  beforeAll(async () => {
    chain = await startTestChain(1);
    addresses = await deployForSettlement(chain, SETTLER, 30);
    token = attachComputeToken(addresses.token, chain.wallets[0]);
    escrow = attachJobEscrow(addresses.escrow, chain.wallets[0]);
    distributor = attachRewardsDistributor(addresses.distributor, chain.provider);
    window = Number(await distributor.challengeWindow());
    db = await createTestDatabase();
    c = await startOwnedCoordinator(
      db.url,
      settlementEnv(chain, addresses, SETTLER, {
        SETTLEMENT_TICK_MS: '0',
        DEPOSIT_CONFIRMATIONS: '1',
        PLATFORM_ACCOUNT_ADDRESS: chain.anvil.accounts[PLATFORM].address,
        MIN_PROVIDER_STAKE: '0',
      }),
    );
    settlement = c.running.app.get(SettlementService);
    await (await token.approve(addresses.escrow, 100n * ONE_TOKEN)).wait();
    await (await escrow.setSpendingCap(100n * ONE_TOKEN)).wait();
    await (await escrow.deposit(10n * ONE_TOKEN)).wait();
    await waitFor('the deposit credited', async () =>
      (await offChain(db.url, DEV).catch(() => 0n)) === 10n * ONE_TOKEN ? true : undefined,
    );
    agent = await startListedAgent(c, '300');
  });

  afterAll(async () => {
    await agent?.stop();
    await c?.close();
    await db?.drop();
    await chain?.stop();
  });

  /** Runs a job and closes and posts the epoch that charged it; returns the epoch. */
  async function chargeAndPost(n: number): Promise<number> {
    await runJob(c, n);
    await waitFor('the charge vested', async () =>
      (await balanceOf(db.url, 'system:fees')) > 0n ? true : undefined,
    );
    const closed = await settlement.closeNow();
    if (!closed.closed) throw new Error(`epoch ${closed.epoch} did not close: ${closed.reason}`);
    await settlement.post(closed.epoch);
    return closed.epoch;
  }

  it('keeps an epoch the escrow cannot cover FUNDING (never FINALIZED, nothing minted) until someone funds the rest', async () => {
    const epoch = await chargeAndPost(32);
    // A settler that fell behind: the developer unlocks and withdraws everything before the debit.
    await (await escrow.requestUnlock()).wait();
    await increaseTime(chain, Number(await escrow.unlockDelay()) + 1);
    await (await escrow.withdraw(await escrow.balanceOf(DEV))).wait();
    await waitFor('the withdrawal seen', async () =>
      (await balanceOf(db.url, 'system:escrow-shortfall')) < 0n ? true : undefined,
    );
    await settlement.advance();
    const short = (await epochs(db.url)).find((e) => e.id === epoch)!;
    expect(short.state).toBe('FUNDING');
    expect(short.blockedReason).toMatch(/must be funded/);
    const missing = BigInt(short.total!) - BigInt(short.funded ?? '0');
    expect(missing).toBeGreaterThan(0n);
    expect(await distributor.isFunded(epoch)).toBe(false);
    const supply = await token.totalSupply();
    await settlement.advance(); // retried: still short, still nothing minted
    expect((await epochs(db.url)).find((e) => e.id === epoch)!.state).toBe('FUNDING');
    expect(await token.totalSupply()).toBe(supply);
    // Anyone may fund the rest (here the deployer); the next pass finalizes it.
    await (await token.approve(addresses.distributor, missing)).wait();
    await (
      await attachRewardsDistributor(addresses.distributor, chain.wallets[0]).fund(epoch, missing)
    ).wait();
    await settlement.advance();
    expect((await epochs(db.url)).find((e) => e.id === epoch)!.state).toBe('FINALIZED');
    // Deposit again for the next test (the unlock was spent by the withdrawal).
    await (await escrow.deposit(10n * ONE_TOKEN)).wait();
    await waitFor('the new deposit credited', async () =>
      (await offChain(db.url, DEV)) > 0n ? true : undefined,
    );
  });

  it('never debits twice when a settler crashed between sending a funding batch and recording it', async () => {
    const epoch = await chargeAndPost(28);
    await increaseTime(chain, window + 1);
    // The previous process sent batch 0 of the epoch's funding and died before recording anything.
    const file = parseEpochFile(
      (await query<{ json: string }>(db.url, 'SELECT json FROM "EpochFile" WHERE "epochId" = $1', [epoch]))[0]
        .json,
    );
    const settler = attachJobEscrow(addresses.escrow, chain.wallets[SETTLER]);
    const [batch] = committedBatches(file);
    await (await settler.debit(epoch, batch.index, batch.accounts, batch.amounts, batch.proof)).wait();
    const escrowBefore = await escrow.balanceOf(DEV);
    await settlement.advance();
    expect((await epochs(db.url)).find((e) => e.id === epoch)!.state).toBe('FINALIZED');
    expect(await escrow.debitedIn(epoch)).toBe(BigInt(file.total));
    expect(await escrow.balanceOf(DEV)).toBe(escrowBefore); // not debited a second time
    expect(await offChain(db.url, DEV)).toBe(await escrow.balanceOf(DEV));
  });

  it('posts a root again when a reorg dropped it after its confirmation', async () => {
    const epoch = await chargeAndPost(26);
    const row = (await epochs(db.url)).find((e) => e.id === epoch)!;
    expect(row.state).toBe('POSTED');
    const posted = await distributor.queryFilter(distributor.filters.RootPosted(epoch));
    const postedAt = posted[posted.length - 1].blockNumber;
    const head = await chain.provider.getBlockNumber();
    // The blocks from the posting one on are replaced by empty ones: the root is gone.
    await chain.provider.send('anvil_reorg', [head - postedAt + 1, []]);
    expect(Number(await distributor.lastEpoch())).toBe(epoch - 1);
    const outcome = await settlement.advance();
    expect(outcome.reposting).toEqual([epoch]);
    expect((await epochs(db.url)).find((e) => e.id === epoch)!.state).toBe('CLOSED');
    await settlement.post(epoch);
    expect((await distributor.epochRoot(epoch))[0]).toBe(row.root);
    await increaseTime(chain, window + 1);
    await settlement.advance();
    expect((await epochs(db.url)).find((e) => e.id === epoch)!.state).toBe('FINALIZED');
  });

  it('recovers from a guardian veto of a tampered root: rebuilds from the ledger, re-posts, finalizes; a veto of the honest root waits for an operator', async () => {
    await runJob(c, 24);
    await waitFor('the charge vested', async () =>
      (await balanceOf(db.url, 'system:fees')) > 0n ? true : undefined,
    );
    const closed = await settlement.closeNow();
    if (!closed.closed) throw new Error('the epoch did not close');
    const epoch = closed.epoch;
    const honestRoot = closed.file.root;
    // A compromised coordinator database: the stored root is not the file's.
    const forged = `0x${'ab'.repeat(32)}`;
    await query(db.url, 'UPDATE "Epoch" SET root = $2 WHERE id = $1', [epoch, forged]);
    await settlement.post(epoch);
    expect((await distributor.epochRoot(epoch))[0]).toBe(forged);
    // The guardian (the deployer here) vetoes it inside the window.
    const guardian = attachRewardsDistributor(addresses.distributor, chain.wallets[0]);
    await (await guardian.vetoRoot(epoch, `0x${'01'.repeat(32)}`)).wait();
    const outcome = await settlement.advance();
    expect(outcome.reposting).toContain(epoch);
    const rebuilt = (await epochs(db.url)).find((e) => e.id === epoch)!;
    expect(rebuilt).toMatchObject({ state: 'CLOSED', root: honestRoot });
    expect(await settlement.nextToPost()).toBe(epoch);
    await settlement.post(epoch);
    expect((await distributor.epochRoot(epoch))[0]).toBe(honestRoot);
    await increaseTime(chain, window + 1);
    await settlement.advance();
    expect((await epochs(db.url)).find((e) => e.id === epoch)!.state).toBe('FINALIZED');
    const vetoes = await query<{ vetoes: number }>(db.url, 'SELECT vetoes FROM "Epoch" WHERE id = $1', [
      epoch,
    ]);
    expect(vetoes[0].vetoes).toBe(1);

    // The guardian vetoes an honest root: the ledger rebuilds the same root, so it is not re-posted
    // into a loop of vetoes; the epoch waits for an operator, and says why.
    const next = await chargeAndPost(20);
    await (await guardian.vetoRoot(next, `0x${'02'.repeat(32)}`)).wait();
    await settlement.advance();
    const waiting = (await epochs(db.url)).find((e) => e.id === next)!;
    expect(waiting.state).toBe('CLOSED');
    expect(waiting.blockedReason).toMatch(/operator/);
    expect(await settlement.nextToPost()).toBeNull();
  });
});
