import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonRpcProvider } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ONE_TOKEN,
  attachComputeToken,
  attachJobEscrow,
  attachRewardsDistributor,
  auditEpoch,
  claimRewards,
  parseEpochFile,
  type DeployedAddresses,
} from '@gpumesh/rewards';
import { api } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { runAuditCli } from '../../apps/cli/src/audit.js';
import { EscrowWatcherService } from '../../apps/coordinator/src/settlement/escrow-watcher.service.js';
import {
  balanceOf,
  depositIntoEscrow,
  deployForSettlement,
  query,
  settlementEnv,
  startOwnedCoordinator,
  startTestChain,
  waitFor,
  type OwnedCoordinator,
  type TestChain,
  startListedAgent,
} from './support.js';
import { isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';

interface EpochBody {
  epoch: number;
  state: string;
  root: string | null;
  fileHash: string | null;
  txHash: string | null;
  total: string | null;
}

interface TicketBody {
  epoch: number;
  index: number;
  account: string;
  cumulativeAmount: string;
  proof: string[];
  distributor: string | null;
}

const DEV = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
const SETTLER = 9;

async function runJob(c: OwnedCoordinator, n: number): Promise<void> {
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
}

async function devAccountId(databaseUrl: string): Promise<string> {
  const rows = await query<{ id: string }>(databaseUrl, 'SELECT id FROM "Account" WHERE address = $1', [DEV]);
  return rows[0].id;
}

describe('settlement: deposit → jobs → epoch → root → claim, on anvil', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let db: TestDatabase;
  let c: OwnedCoordinator;
  let agent: FakeAgent | undefined;
  let tmp: string;

  beforeAll(async () => {
    chain = await startTestChain(1);
    addresses = await deployForSettlement(chain, SETTLER, 2);
    db = await createTestDatabase();
    tmp = await mkdtemp(join(tmpdir(), 'gpumesh-audit-'));
    c = await startOwnedCoordinator(
      db.url,
      settlementEnv(chain, addresses, SETTLER, {
        EPOCH_SECONDS: '2',
        SETTLEMENT_TICK_MS: '300',
        DEPOSIT_CONFIRMATIONS: '2',
      }),
    );
  });

  afterAll(async () => {
    await agent?.stop();
    await c?.close();
    await db?.drop();
    await chain?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('credits a deposit, pays the provider through an epoch root it can claim, and the tokens match the ledger', async () => {
    const accountId = await devAccountId(db.url);
    const available = `acct:${accountId}:available`;
    const before = await balanceOf(db.url, available);
    const deposit = 5n * ONE_TOKEN;
    const token = attachComputeToken(addresses.token, chain.wallets[0]);
    const escrow = attachJobEscrow(addresses.escrow, chain.wallets[0]);
    await (await token.approve(addresses.escrow, 100n * ONE_TOKEN)).wait();
    await (await escrow.setSpendingCap(100n * ONE_TOKEN)).wait();
    await (await escrow.deposit(deposit)).wait();
    await waitFor('the deposit credit', async () =>
      (await balanceOf(db.url, available)) === before + deposit ? true : undefined,
    );

    agent = await startListedAgent(c, '300');
    await runJob(c, 40);
    await runJob(c, 60);
    const earnedAccount = `provider:${agent.peerId}:earned`;
    // What the jobs paid the provider (an epoch may close between the two jobs).
    const credited = await query<{ total: string }>(
      db.url,
      `SELECT COALESCE(SUM(amount),0)::text AS total FROM "LedgerEntry" WHERE account = $1 AND kind = 'settle'`,
      [earnedAccount],
    );
    const earned = BigInt(credited[0].total);
    expect(earned).toBeGreaterThan(0n);
    // The platform fee on that work: charged to the developer too, paid to the fee recipient's leaf.
    const feeRows = await query<{ total: string }>(
      db.url,
      `SELECT COALESCE(SUM(amount),0)::text AS total FROM "LedgerEntry" WHERE account = 'system:fees' AND kind = 'settle'`,
    );
    const fees = BigInt(feeRows[0].total);
    expect(fees).toBeGreaterThan(0n);

    // The tick closes due epochs, posts their roots, waits out the window, funds them from the escrow.
    const epochs = await waitFor('every earning in a FINALIZED epoch', async () => {
      if ((await balanceOf(db.url, earnedAccount)) !== 0n) return undefined;
      if ((await balanceOf(db.url, 'system:fees')) !== 0n) return undefined;
      const res = await api<EpochBody[]>(c.url, 'GET', '/v1/rewards/epochs');
      const closed = res.body.filter((e) => e.total !== null);
      return closed.length > 0 && closed.every((e) => e.state === 'FINALIZED') ? closed : undefined;
    });
    const final = epochs[0]; // newest first
    expect(epochs.reduce((s, e) => s + BigInt(e.total ?? '0'), 0n)).toBe(earned + fees);
    expect(final.txHash).toMatch(/^0x[0-9a-f]{64}$/);
    const distributor = attachRewardsDistributor(addresses.distributor, chain.provider);
    const [root, fileHash] = await distributor.epochRoot(final.epoch);
    expect([root, fileHash]).toEqual([final.root, final.fileHash]);
    let settled = 0n;
    let debited = 0n;
    for (const e of epochs) {
      settled += await balanceOf(db.url, `provider:${agent.address}:settled:${e.epoch}`);
      debited += await escrow.debitedIn(e.epoch);
    }
    expect(settled).toBe(earned);
    expect(debited).toBe(earned + fees);

    // The provider's address claims with the served proof (anyone may send it; tokens go to the leaf).
    const proof = await api<TicketBody>(c.url, 'GET', `/v1/rewards/proof/${agent.address}`);
    expect(proof.status).toBe(200);
    expect(proof.body.cumulativeAmount).toBe(earned.toString());
    const claimed = await claimRewards({
      distributor: addresses.distributor,
      signer: chain.wallets[5],
      ticket: { ...proof.body, cumulativeAmount: BigInt(proof.body.cumulativeAmount) },
    });
    expect(claimed.paid).toBe(earned);
    expect(await token.balanceOf(agent.address)).toBe(earned);
    expect(await token.balanceOf(addresses.distributor)).toBe(fees); // the fee recipient has not claimed
    expect(await escrow.balanceOf(DEV)).toBe(deposit - earned - fees);
    expect(await balanceOf(db.url, available)).toBe(before + deposit - earned - fees);
    const total = await query<{ total: string }>(
      db.url,
      'SELECT COALESCE(SUM(amount),0)::text AS total FROM "LedgerEntry"',
    );
    expect(total[0].total).toBe('0');

    // Audit: the served file recomputes the chain's root and hash; a tampered copy fails.
    const res = await fetch(`${c.url}/v1/rewards/epochs/${final.epoch}/file`);
    const text = await res.text();
    expect(auditEpoch(text, root, fileHash).ok).toBe(true);
    const good = join(tmp, 'epoch.json');
    await writeFile(good, text);
    const out: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(l) };
    expect(
      await runAuditCli([good, '--rpc', chain.anvil.rpcUrl, '--distributor', addresses.distributor], io),
    ).toBe(0);
    const file = parseEpochFile(text);
    const tampered = {
      ...file,
      leaves: file.leaves.map((l, i) =>
        i === 0 ? { ...l, cumulativeAmount: (BigInt(l.cumulativeAmount) + 1n).toString() } : l,
      ),
    };
    const bad = join(tmp, 'tampered.json');
    await writeFile(bad, JSON.stringify(tampered));
    expect(
      await runAuditCli([bad, '--rpc', chain.anvil.rpcUrl, '--distributor', addresses.distributor], io),
    ).toBe(1);
    expect(auditEpoch(JSON.stringify(tampered), root, fileHash).ok).toBe(false);
  });

  it('credits a deposit exactly once when the watcher restarts and loses its cursor', async () => {
    const accountId = await devAccountId(db.url);
    const available = `acct:${accountId}:available`;
    const watcher = c.running.app.get(EscrowWatcherService);
    const deposits = async (): Promise<number> =>
      Number(
        (
          await query<{ n: string }>(
            db.url,
            `SELECT count(*)::text AS n FROM "EscrowEvent" WHERE kind = 'deposit'`,
          )
        )[0].n,
      );
    const countBefore = await deposits();
    await watcher.stop();
    await query(db.url, 'DELETE FROM "DepositCursor"'); // as if it crashed before saving any cursor
    const before = await balanceOf(db.url, available);
    const amount = 1_234_567n;
    await (await attachJobEscrow(addresses.escrow, chain.wallets[0]).deposit(amount)).wait();
    await watcher.start();
    await waitFor('the second deposit', async () =>
      (await deposits()) === countBefore + 1 ? true : undefined,
    );
    // Let it scan past the head again: the first deposit is seen again and not credited again.
    const head = await chain.provider.getBlockNumber();
    await waitFor('the cursor past the head', async () => {
      const rows = await query<{ blockNumber: number }>(db.url, 'SELECT "blockNumber" FROM "DepositCursor"');
      return rows[0] && rows[0].blockNumber >= head ? true : undefined;
    });
    expect(await deposits()).toBe(countBefore + 1);
    expect(await balanceOf(db.url, available)).toBe(before + amount);
  });
});

describe('settlement: a coordinator killed between sending and confirming posts the root once', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let db: TestDatabase;
  const running: OwnedCoordinator[] = [];
  let agent: FakeAgent | undefined;

  beforeAll(async () => {
    chain = await startTestChain(); // automine: the test decides when blocks come
    addresses = await deployForSettlement(chain, SETTLER, 3600);
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await agent?.stop();
    for (const c of running) await c.close().catch(() => undefined);
    await db?.drop();
    await chain?.stop();
  });

  it('re-broadcasts the journaled transaction after a restart instead of signing another', async () => {
    const { SettlementService } = await import('../../apps/coordinator/src/settlement/settlement.service.js');
    const env = settlementEnv(chain, addresses, SETTLER, {
      EPOCH_SECONDS: '3600',
      SETTLEMENT_TICK_MS: '0',
      DEPOSIT_CONFIRMATIONS: '1', // automine: no block comes unless a transaction does
    });
    const a = await startOwnedCoordinator(db.url, env);
    running.push(a);
    await depositIntoEscrow(chain, addresses, 0, 10n * ONE_TOKEN);
    await waitFor('the deposit credited', async () =>
      (await balanceOf(db.url, `acct:${await devAccountId(db.url)}:available`)) > 0n ? true : undefined,
    );
    agent = await startFakeAgent(a.url, { pricePerUnit: '2' });
    await waitFor('the provider', async () => {
      const res = await api<unknown[]>(a.url, 'GET', '/v1/providers');
      return res.body.length > 0 ? true : undefined;
    });
    await runJob(a, 30);
    await agent.stop();
    agent = undefined;
    const settlement = a.running.app.get(SettlementService);
    const closed = await settlement.closeNow();
    expect(closed.closed).toBe(true);

    // Sign, journal, broadcast... and no block comes: the process gives up waiting and dies.
    await chain.provider.send('evm_setAutomine', [false]);
    await expect(settlement.post(closed.epoch, { timeoutMs: 1500 })).rejects.toThrow(/no receipt/);
    const journal = await query<{ txHash: string }>(
      db.url,
      `SELECT attempts -> -1 ->> 'txHash' AS "txHash" FROM "ChainTx" WHERE key LIKE 'postRoot:%'`,
    );
    expect(journal).toHaveLength(1);
    await a.close();
    running.splice(running.indexOf(a), 1);

    // A new process on the same database: its tick re-broadcasts the same signed transaction.
    const b = await startOwnedCoordinator(db.url, { ...env, SETTLEMENT_TICK_MS: '200' });
    running.push(b);
    await new Promise((r) => setTimeout(r, 1000));
    await chain.provider.send('evm_setAutomine', [true]);
    await chain.provider.send('evm_mine', []);
    const posted = await waitFor('the epoch POSTED', async () => {
      const rows = await query<{ state: string; txHash: string | null }>(
        db.url,
        'SELECT state::text, "txHash" FROM "Epoch" WHERE id = $1',
        [closed.epoch],
      );
      return rows[0]?.state === 'POSTED' ? rows[0] : undefined;
    });
    expect(posted.txHash).toBe(journal[0].txHash);
    const distributor = attachRewardsDistributor(addresses.distributor, chain.provider);
    expect(Number(await distributor.lastEpoch())).toBe(closed.epoch);
    const events = await distributor.queryFilter(distributor.filters.RootPosted(), 0);
    expect(events).toHaveLength(1);
    expect(events[0].transactionHash).toBe(journal[0].txHash);
    // Posting again is a no-op.
    expect(await b.running.app.get(SettlementService).post(closed.epoch)).toBeNull();
  });
});

describe('settlement: the dev chain (SETTLEMENT_ENABLED without CHAIN_RPC_URL)', () => {
  let db: TestDatabase;
  let c: OwnedCoordinator | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await c?.close();
    await db?.drop();
  });

  it('starts anvil, deploys the contracts, deposits for the dev developer (credited, never minted) and opens an epoch; a restart resumes the same chain', async () => {
    c = await startOwnedCoordinator(db.url, { SETTLEMENT_ENABLED: 'true', SETTLEMENT_TICK_MS: '200' });
    const chain = c.running.chain;
    expect(chain?.dev).toBe(true);
    const saved = JSON.parse(await readFile(join(c.config.DATA_DIR, 'chain', 'contracts.json'), 'utf8')) as {
      distributor: string;
      escrow: string;
      token: string;
    };
    expect(saved.distributor).toBe(chain?.contracts.distributor);
    const provider = new JsonRpcProvider(chain!.rpcUrl, undefined, { staticNetwork: true });
    try {
      expect(await attachComputeToken(saved.token, provider).balanceOf(DEV)).toBeGreaterThan(0n);
      // The dev credits are the escrow deposit, credited off chain: both sides hold the same.
      const escrowed = await attachJobEscrow(saved.escrow, provider).balanceOf(DEV);
      expect(escrowed).toBe(c.config.DEV_CREDITS);
      const accountId = await devAccountId(db.url);
      expect(await balanceOf(db.url, `acct:${accountId}:available`)).toBe(escrowed);
      const mints = await query<{ n: string }>(
        db.url,
        `SELECT count(*)::text AS n FROM "LedgerEntry" WHERE kind = 'mint'`,
      );
      expect(mints[0].n).toBe('0');
      // The dev developer signed a spending cap at boot: its deposit can be spent.
      const account = await api<{ spendingCap: { cap: string; authorisedRemaining: string } | null }>(
        c.url,
        'GET',
        '/v1/account',
        { key: c.devKey },
      );
      expect(BigInt(account.body.spendingCap?.authorisedRemaining ?? '0')).toBeGreaterThanOrEqual(escrowed);
    } finally {
      provider.destroy();
    }
    const epochs = await waitFor('the open epoch', async () => {
      const res = await api<EpochBody[]>(c!.url, 'GET', '/v1/rewards/epochs');
      return res.body.length > 0 ? res.body : undefined;
    });
    expect(epochs[0]).toMatchObject({ epoch: 1, state: 'OPEN' });
    const proof = await api<{ error: { code: string } }>(c.url, 'GET', `/v1/rewards/proof/${DEV}`);
    expect(proof.status).toBe(404);

    // A restart on the same data dir continues the same chain: same genesis, nothing credited twice.
    const genesis = async (rpcUrl: string): Promise<string> => {
      const p = new JsonRpcProvider(rpcUrl, undefined, { staticNetwork: true });
      try {
        return (await p.getBlock(0))!.hash!;
      } finally {
        p.destroy();
      }
    };
    const firstGenesis = await genesis(chain!.rpcUrl);
    const accountId = await devAccountId(db.url);
    const before = await balanceOf(db.url, `acct:${accountId}:available`);
    await c.running.close();
    c = await startOwnedCoordinator(db.url, {
      SETTLEMENT_ENABLED: 'true',
      SETTLEMENT_TICK_MS: '200',
      DATA_DIR: c.config.DATA_DIR,
    });
    expect(await genesis(c.running.chain!.rpcUrl)).toBe(firstGenesis);
    await new Promise((r) => setTimeout(r, 4_000)); // a few blocks: a re-credit would show by now
    expect(await balanceOf(db.url, `acct:${accountId}:available`)).toBe(before);
    const deposits = await query<{ n: string }>(
      db.url,
      `SELECT count(*)::text AS n FROM "EscrowEvent" WHERE kind = 'deposit'`,
    );
    expect(deposits[0].n).toBe('2'); // the developer's and the platform account's
  });
});
