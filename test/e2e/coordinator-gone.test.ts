// The coordinator-gone drill. Two provider agents (real processes) earn over several epochs settled
// on a real anvil by a real coordinator (PostgreSQL, Redis); each posted epoch's file is announced
// over p2p and kept by both agents. The last epoch is posted but the coordinator is stopped for good
// (and its database dropped) before it is final, so the settler never funds it. With nothing but the
// chain and each other, the first provider to claim funds that epoch from the escrow debits committed
// with its root, and every provider claims all it earned up to the last posted epoch (one from its
// kept file, one from its peer after losing its own); the developer takes every unspent token out of
// the escrow. What is lost: the unposted tail only.
import { createServer } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEther } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ONE_TOKEN,
  attachComputeToken,
  attachJobEscrow,
  attachRewardsDistributor,
  type DeployedAddresses,
} from '@gpumesh/rewards';
import { SettlementService } from '../../apps/coordinator/src/settlement/settlement.service.js';
import { api } from '../helpers/coordinator.js';
import {
  AGENT_MAIN,
  assertBuilt,
  runCli,
  runProcess,
  startProcess,
  type Started,
} from '../helpers/processes.js';
import { matmulSpec } from '../helpers/specs.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  balanceOf,
  deployForSettlement,
  depositIntoEscrow,
  epochs,
  increaseTime,
  query,
  settlementEnv,
  startOwnedCoordinator,
  startTestChain,
  waitFor,
  type OwnedCoordinator,
  type TestChain,
} from '../settlement/support.js';

const SETTLER = 9;
const DEVELOPER = 0;
const PASSPHRASE = 'coordinator-gone-drill';
const EPOCHS = 3;
/** Challenge window: long enough that the last root is still in it when the coordinator goes away. */
const WINDOW = 60;
const DEPOSIT = 10n * ONE_TOKEN;
/** Base units per work unit (1 MFLOP) both agents charge. */
const PRICE = '1000';

interface DrillAgent {
  name: string;
  dir: string;
  port: number;
  address: string;
  peerId: string;
  process?: Started;
}

const agentEnv = (): NodeJS.ProcessEnv => ({ ...process.env, GPUMESH_AGENT_PASSPHRASE: PASSPHRASE });

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

interface AgentStatusFile {
  epochFiles?: { distributor: string; epoch: number; fileHash: string }[];
}

async function keptEpochs(agent: DrillAgent): Promise<number[]> {
  try {
    const status = JSON.parse(await readFile(join(agent.dir, 'status.json'), 'utf8')) as AgentStatusFile;
    return (status.epochFiles ?? []).map((f) => f.epoch).sort((a, b) => a - b);
  } catch {
    return [];
  }
}

describe('the coordinator-gone drill', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let db: TestDatabase | undefined;
  let c: OwnedCoordinator | undefined;
  let settlement: SettlementService;
  const agents: DrillAgent[] = [];

  beforeAll(async () => {
    assertBuilt();
    chain = await startTestChain(1);
    addresses = await deployForSettlement(chain, SETTLER, WINDOW);
    db = await createTestDatabase();
    c = await startOwnedCoordinator(
      db.url,
      settlementEnv(chain, addresses, SETTLER, {
        PUBLIC_CHAIN_RPC_URL: chain.anvil.rpcUrl,
        EPOCH_SECONDS: '3600',
        SETTLEMENT_TICK_MS: '300',
        DEPOSIT_CONFIRMATIONS: '1',
        MIN_PROVIDER_STAKE: '0',
      }),
    );
    settlement = c.running.app.get(SettlementService);
    await depositIntoEscrow(chain, addresses, DEVELOPER, DEPOSIT);
    const coordinator = c;
    await waitFor('the deposit credited', async () => {
      const res = await api<{ balance: string }>(coordinator.url, 'GET', '/v1/account', {
        key: coordinator.devKey,
      });
      return BigInt(res.body.balance) > 0n ? true : undefined;
    });

    // Two agents that listen for each other (epochPeers) and check announcements against the chain.
    for (const name of ['agent-a', 'agent-b']) {
      const dir = await mkdtemp(join(tmpdir(), `gpumesh-drill-${name}-`));
      await runProcess(
        AGENT_MAIN,
        [
          'init',
          '--coordinator',
          c.url,
          '--data-dir',
          dir,
          '--light-kdf',
          '--slots',
          '1',
          '--backend',
          'cpu',
          '--price',
          PRICE,
        ],
        agentEnv(),
      );
      const keystore = JSON.parse(await readFile(join(dir, 'keystore.json'), 'utf8')) as {
        address: string;
        peerId: string;
      };
      agents.push({ name, dir, port: await freePort(), address: keystore.address, peerId: keystore.peerId });
    }
    for (const agent of agents) {
      const configPath = join(agent.dir, 'agent.json');
      const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
      const others = agents.filter((a) => a !== agent);
      await writeFile(
        configPath,
        JSON.stringify({
          ...config,
          listen: [`/ip4/127.0.0.1/tcp/${agent.port}`],
          epochPeers: others.map((o) => `/ip4/127.0.0.1/tcp/${o.port}/p2p/${o.peerId}`),
          chainRpcUrl: chain.anvil.rpcUrl,
        }),
      );
      // gas for the claim
      await (
        await chain.wallets[DEVELOPER].sendTransaction({ to: agent.address, value: parseEther('1') })
      ).wait();
    }
    for (const agent of agents) {
      agent.process = await startProcess(
        AGENT_MAIN,
        ['start', '--data-dir', agent.dir, '--log-level', 'warn'],
        agentEnv(),
        /gpumesh-agent ready: peer (\S+)/,
      );
    }
    await waitFor('both providers listed', async () => {
      const res = await api<{ peerId: string }[]>(coordinator.url, 'GET', '/v1/providers');
      return agents.every((a) => res.body.some((p) => p.peerId === a.peerId)) ? true : undefined;
    });
  }, 180_000);

  afterAll(async () => {
    for (const agent of agents) await agent.process?.stop('SIGKILL');
    await c?.close();
    await db?.drop();
    await chain?.stop();
    for (const agent of agents) await rm(agent.dir, { recursive: true, force: true });
  });

  /** Runs one job on both providers (redundancy 2) and waits until both earnings vested. */
  async function runJob(n: number): Promise<void> {
    const coordinator = c!;
    const url = db!.url;
    const before = await Promise.all(agents.map((a) => balanceOf(url, `provider:${a.peerId}:earned`)));
    const job = await api<{ id: string }>(coordinator.url, 'POST', '/v1/jobs', {
      key: coordinator.devKey,
      body: { ...matmulSpec(n, n, n, PRICE), redundancy: 2 },
    });
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    await waitFor(
      `job ${job.body.id}`,
      async () => {
        const res = await api<{ state: string }>(coordinator.url, 'GET', `/v1/jobs/${job.body.id}`, {
          key: coordinator.devKey,
        });
        if (res.body.state === 'FAILED') throw new Error(`job failed: ${JSON.stringify(res.body)}`);
        return res.body.state === 'COMPLETED' ? true : undefined;
      },
      60_000,
    );
    await waitFor('both earnings vested', async () => {
      const earned = await Promise.all(agents.map((a) => balanceOf(url, `provider:${a.peerId}:earned`)));
      const held = await Promise.all(agents.map((a) => balanceOf(url, `provider:${a.peerId}:held`)));
      return earned.every((e, i) => e > before[i]) && held.every((h) => h === 0n) ? true : undefined;
    });
  }

  it('providers claim every posted epoch from peer-held files and the developer withdraws the rest', async () => {
    const url = db!.url;
    const distributor = attachRewardsDistributor(addresses.distributor, chain.provider);
    const token = attachComputeToken(addresses.token, chain.provider);
    const escrow = attachJobEscrow(addresses.escrow, chain.provider);

    // Several epochs, each closed and posted; all but the last past their window and funded from
    // the escrow by the coordinator: FINALIZED. The last stays POSTED, in its window.
    const posted: number[] = [];
    for (let i = 0; i < EPOCHS; i++) {
      await runJob(96 + 16 * i);
      const closed = await settlement.closeNow();
      if (!closed.closed) throw new Error(`epoch ${closed.epoch} did not close: ${closed.reason}`);
      const state = async (): Promise<string | undefined> =>
        (await epochs(url)).find((e) => e.id === closed.epoch)?.state;
      await waitFor(`epoch ${closed.epoch} POSTED`, async () =>
        (await state()) === 'POSTED' ? true : undefined,
      );
      posted.push(closed.epoch);
      if (i === EPOCHS - 1) break;
      await increaseTime(chain, WINDOW + 1);
      await waitFor(
        `epoch ${closed.epoch} FINALIZED`,
        async () => ((await state()) === 'FINALIZED' ? true : undefined),
        60_000,
      );
    }
    const final = (await epochs(url)).filter((e) => e.state === 'FINALIZED').map((e) => e.id);
    expect(final).toHaveLength(EPOCHS - 1);
    const last = Math.max(...posted);
    expect(await distributor.isFinal(last)).toBe(false);
    // Every posted epoch's file reached both agents over p2p, checked against the chain.
    for (const agent of agents) {
      await waitFor(`${agent.name} keeps every epoch file`, async () => {
        const kept = await keptEpochs(agent);
        return posted.every((e) => kept.includes(e)) ? true : undefined;
      });
    }

    // What each provider is owed by the posted epochs: its cumulative amount in the last posted file.
    const [lastFile] = await query<{ json: string }>(
      url,
      'SELECT json FROM "EpochFile" WHERE "epochId" = $1',
      [last],
    );
    const leaves = (JSON.parse(lastFile.json) as { leaves: { account: string; cumulativeAmount: string }[] })
      .leaves;
    const owed = agents.map((a) =>
      BigInt(leaves.find((l) => l.account === a.address)?.cumulativeAmount ?? '0'),
    );
    expect(owed.every((o) => o > 0n)).toBe(true);

    // The unposted tail: a job after the last close that no epoch will ever carry.
    await runJob(80);
    const tail = await Promise.all(agents.map((a) => balanceOf(url, `provider:${a.peerId}:earned`)));
    expect(tail.every((t) => t > 0n)).toBe(true);

    // The coordinator goes away for good, with its database.
    const goneUrl = c!.url;
    await c!.close();
    c = undefined;
    await db!.drop();
    db = undefined;
    await expect(fetch(`${goneUrl}/v1/rewards/epochs`)).rejects.toThrow();
    // The last root's window passes with nobody left to fund it.
    await increaseTime(chain, WINDOW + 1);
    expect(await distributor.isFinal(last)).toBe(true);
    expect(await distributor.isFunded(last)).toBe(false);

    // Agent A claims from the file it kept; agent B lost its disk and gets the file from A.
    const [a, b] = agents;
    await b.process?.stop('SIGKILL');
    b.process = undefined;
    await rm(join(b.dir, 'epochs'), { recursive: true, force: true });
    const claims = [];
    for (const agent of [a, b]) {
      // A knows the distributor from the files it kept; B, with none left, is told it.
      const pin = agent === b ? ['--distributor', addresses.distributor] : [];
      const run = await runCli(AGENT_MAIN, ['claim', '--json', '--data-dir', agent.dir, ...pin], agentEnv());
      expect(run.code, `${agent.name}: ${run.stderr}${run.stdout}`).toBe(0);
      claims.push(
        JSON.parse(run.stdout) as {
          epoch: number;
          paid: string;
          fileSource: string;
          funded: { epoch: number; txHashes: string[] }[];
        },
      );
    }
    // A funded the unfunded epoch from the escrow's committed debits before claiming; B had nothing to fund.
    expect(claims[0].funded.map((f) => f.epoch)).toEqual([last]);
    expect(claims[0].funded[0].txHashes.length).toBeGreaterThan(0);
    expect(claims[1].funded).toEqual([]);
    expect(await distributor.isFunded(last)).toBe(true);
    expect(await distributor.fundedIn(last)).toBe(await distributor.epochTotal(last));
    expect(claims[0]).toMatchObject({ epoch: last, paid: owed[0].toString(), fileSource: 'kept' });
    expect(claims[1]).toMatchObject({ epoch: last, paid: owed[1].toString() });
    expect(claims[1].fileSource).toContain(`/p2p/${a.peerId}`);
    const claimed = await Promise.all(agents.map((agent) => token.balanceOf(agent.address)));
    expect(claimed).toEqual(owed);

    // The developer: unlock, wait out the delay on the chain's clock, withdraw every unspent token.
    const dev = chain.wallets[DEVELOPER];
    const devAddress = chain.anvil.accounts[DEVELOPER].address;
    const escrowLeft = await escrow.balanceOf(devAddress);
    const devEscrow = attachJobEscrow(addresses.escrow, dev);
    await (await devEscrow.requestUnlock()).wait();
    await increaseTime(chain, Number(await escrow.unlockDelay()) + 1);
    const walletBefore = await token.balanceOf(devAddress);
    await (await devEscrow.withdraw(escrowLeft)).wait();
    expect(await escrow.balanceOf(devAddress)).toBe(0n);
    expect((await token.balanceOf(devAddress)) - walletBefore).toBe(escrowLeft);
    // Every deposited token is accounted for: debited into the posted epochs, or withdrawn.
    let debited = 0n;
    for (const e of posted) debited += await distributor.epochTotal(e);
    expect(debited + escrowLeft).toBe(DEPOSIT);

    const owedTotal = owed.reduce((s, x) => s + x, 0n);
    const claimedTotal = claimed.reduce((s, x) => s + x, 0n);
    const tailTotal = tail.reduce((s, x) => s + x, 0n);
    const share = (x: bigint, of: bigint): string => ((Number(x) / Number(of)) * 100).toFixed(2);
    console.info(
      `[drill] coordinator gone after ${EPOCHS} posted epochs (the last unfunded, funded by a provider): providers recovered ${claimedTotal} of ${owedTotal} base units owed by posted epochs (${share(claimedTotal, owedTotal)} %); ` +
        `the unposted tail of ${tailTotal} base units (${share(claimedTotal, owedTotal + tailTotal)} % recovered counting it) went back to the developer, who withdrew ${escrowLeft} of ${escrowLeft} unspent`,
    );
    // `npm run bench -- --only settlement` runs this drill and reports these figures.
    const figuresFile = process.env.GPUMESH_DRILL_FIGURES;
    if (figuresFile) {
      await writeFile(
        figuresFile,
        JSON.stringify({
          epochs: EPOCHS,
          postedUnfundedEpochsFundedByProviders: 1,
          owedByPostedEpochs: owedTotal.toString(),
          recovered: claimedTotal.toString(),
          recoveredPercentOfPosted: Number(share(claimedTotal, owedTotal)),
          unpostedTail: tailTotal.toString(),
          unspentEscrowWithdrawn: escrowLeft.toString(),
        }),
      );
    }
    expect(claimedTotal).toBe(owedTotal);
  }, 300_000);
});
