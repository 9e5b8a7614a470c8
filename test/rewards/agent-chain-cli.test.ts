// `gpumesh-agent stake | unstake | claim` as real processes (from dist/: build first) against a real
// coordinator settling on a real anvil.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Wallet, id, parseEther } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANVIL_DEV_KEYS,
  ONE_TOKEN,
  attachComputeToken,
  attachJobEscrow,
  attachProviderStaking,
  readStake,
  stakeTokens,
  type DeployedAddresses,
} from '@gpumesh/rewards';
import { api } from '../helpers/coordinator.js';
import { runCli, type CliRun } from '../helpers/processes.js';
import { matmulSpec } from '../helpers/specs.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SettlementService } from '../../apps/coordinator/src/settlement/settlement.service.js';
import {
  deployForSettlement,
  query,
  settlementEnv,
  startOwnedCoordinator,
  startTestChain,
  waitFor,
  type OwnedCoordinator,
  type TestChain,
} from '../settlement/support.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const AGENT_MAIN = join(root, 'apps', 'provider-agent', 'dist', 'main.js');
const PASSPHRASE = 'agent-chain-cli-test-passphrase';
const SETTLER = 9;

function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(AGENT_MAIN, args, { ...process.env, GPUMESH_AGENT_PASSPHRASE: PASSPHRASE, ...env });
}

// `npm test` builds first, so dist/ is there; its absence is a failure, never a silent skip.
if (!existsSync(AGENT_MAIN)) {
  throw new Error(`${AGENT_MAIN} is missing: run npm run build before these tests`);
}

describe('gpumesh-agent stake, unstake and claim on anvil', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let db: TestDatabase;
  let c: OwnedCoordinator;
  let agent: FakeAgent | undefined;
  let dir: string;
  let address: string;
  const inDir = (...args: string[]): string[] => [...args, '--data-dir', dir];

  beforeAll(async () => {
    chain = await startTestChain(1);
    addresses = await deployForSettlement(chain, SETTLER, 2);
    db = await createTestDatabase();
    c = await startOwnedCoordinator(
      db.url,
      settlementEnv(chain, addresses, SETTLER, {
        STAKING_ADDRESS: addresses.staking,
        PUBLIC_CHAIN_RPC_URL: chain.anvil.rpcUrl,
        EPOCH_SECONDS: '3600',
        SETTLEMENT_TICK_MS: '300',
      }),
    );
    dir = await mkdtemp(join(tmpdir(), 'gpumesh-agent-cli-'));
    const init = await cli(['init', '--coordinator', c.url, '--light-kdf', '--json', '--data-dir', dir]);
    expect(init.code, init.stderr).toBe(0);
    address = (JSON.parse(await readFile(join(dir, 'keystore.json'), 'utf8')) as { address: string }).address;
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    await c?.close();
    await db?.drop();
    await chain?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('explains itself, and says what is wrong before anything is claimable or funded', async () => {
    const help = await cli(['claim', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: gpumesh-agent claim');
    const nothing = await cli(inDir('claim'));
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/nothing claimable yet: no epoch is claimable yet/);
    const noGas = await cli(inDir('stake', '10'));
    expect(noGas.code).toBe(1);
    expect(noGas.stderr.toLowerCase()).toContain(`the wallet ${address} has no eth to pay for gas`);
    // No faucet off the dev chain: dev-fund refuses and says where gas and tokens come from.
    const noFaucet = await cli(inDir('dev-fund'));
    expect(noFaucet.code).toBe(1);
    expect(noFaucet.stderr).toMatch(/is not a local dev chain: there is no faucet/);
    const down = await cli(inDir('claim', '--rpc', 'http://127.0.0.1:1'));
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach the chain at http:\/\/127\.0\.0\.1:1/);
  });

  it('stakes from the keystore wallet (approve + stake) and starts unbonding', async () => {
    const funder = chain.wallets[0];
    await (await funder.sendTransaction({ to: address, value: parseEther('1') })).wait();
    await (await attachComputeToken(addresses.token, funder).transfer(address, 50n * ONE_TOKEN)).wait();
    const tooMuch = await cli(inDir('stake', '51'));
    expect(tooMuch.code).toBe(1);
    expect(tooMuch.stderr).toMatch(/cannot stake 51 GPUC: .* holds 50000000 base units/);

    const staked = await cli(inDir('stake', '10', '--json'));
    expect(staked.code, staked.stderr).toBe(0);
    const body = JSON.parse(staked.stdout) as { staked: string; bonded: string; txHash: string };
    expect(body).toMatchObject({
      staked: (10n * ONE_TOKEN).toString(),
      bonded: (10n * ONE_TOKEN).toString(),
    });
    const staking = attachProviderStaking(addresses.staking, chain.provider);
    expect((await readStake(staking, address)).bonded).toBe(10n * ONE_TOKEN);

    const unstaked = await cli(inDir('unstake', '4'));
    expect(unstaked.code, unstaked.stderr).toBe(0);
    expect(unstaked.stdout).toMatch(/bonded +6 GPUC/);
    expect(unstaked.stdout).toMatch(/unbonding +4 GPUC/);
    expect(await readStake(staking, address)).toMatchObject({
      bonded: 6n * ONE_TOKEN,
      unbonding: 4n * ONE_TOKEN,
    });

    // A slash proposal freezes 9 of the 10: after the unbonding delay only 1 can be withdrawn.
    const slasher = attachProviderStaking(addresses.staking, chain.wallets[0]);
    const evidence = id('agent cli: frozen stake');
    await (await slasher.proposeSlash(address, 9n * ONE_TOKEN, evidence, [], [])).wait();
    await chain.provider.send('evm_increaseTime', [61]);
    await chain.provider.send('evm_mine', []);
    const shown = await cli(inDir('stake'));
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/frozen +9 GPUC/);
    const partial = await cli(inDir('unstake', '--withdraw', '--json'));
    expect(partial.code, partial.stderr).toBe(0);
    expect(JSON.parse(partial.stdout)).toMatchObject({
      withdrawn: ONE_TOKEN.toString(),
      unbonding: (3n * ONE_TOKEN).toString(),
      frozen: (9n * ONE_TOKEN).toString(),
    });
    const blocked = await cli(inDir('unstake', '--withdraw'));
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toMatch(/frozen by pending slash proposals/);
    await (await slasher.cancelSlash(evidence)).wait();
    expect((await readStake(staking, address)).frozen).toBe(0n);
  });

  it("claims the wallet's earnings with the coordinator's proof, once", async () => {
    // The developer's escrow deposit is what funds the epoch on chain.
    const escrow = attachJobEscrow(addresses.escrow, chain.wallets[0]);
    await (
      await attachComputeToken(addresses.token, chain.wallets[0]).approve(addresses.escrow, 5n * ONE_TOKEN)
    ).wait();
    await (await escrow.setSpendingCap(5n * ONE_TOKEN)).wait();
    await (await escrow.deposit(5n * ONE_TOKEN)).wait();
    await waitFor('the deposit credited', async () => {
      const res = await api<{ balance: string }>(c.url, 'GET', '/v1/account', { key: c.devKey });
      return BigInt(res.body.balance) > 0n ? true : undefined;
    });
    // Stake gates placement here (STAKING_ADDRESS): the fake provider signs with anvil account 5,
    // which stakes the minimum plus room for the job before it comes online.
    const stake = 11n * ONE_TOKEN;
    await (
      await attachComputeToken(addresses.token, chain.wallets[0]).transfer(
        chain.anvil.accounts[5].address,
        stake,
      )
    ).wait();
    await stakeTokens({ staking: addresses.staking, signer: chain.wallets[5], amount: stake });
    agent = await startFakeAgent(c.url, { pricePerUnit: '7', wallet: new Wallet(ANVIL_DEV_KEYS[5]) });
    await waitFor('the provider', async () => {
      const res = await api<unknown[]>(c.url, 'GET', '/v1/providers');
      return res.body.length > 0 ? true : undefined;
    });
    // The leaf of an epoch goes to the address of the provider's advert; this fake provider signs
    // with its own throwaway wallet, so it is pointed at the keystore's wallet before the epoch closes.
    await query(db.url, 'UPDATE "Provider" SET address = $1 WHERE "peerId" = $2', [address, agent.peerId]);
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(50, 50, 50, '10'),
    });
    expect(job.status).toBe(201);
    await waitFor('the job', async () => {
      const res = await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${job.body.id}`, { key: c.devKey });
      return res.body.state === 'COMPLETED' ? true : undefined;
    });
    const earned = BigInt(
      (
        await query<{ total: string }>(
          db.url,
          `SELECT COALESCE(SUM(amount),0)::text AS total FROM "LedgerEntry" WHERE account = $1 AND kind = 'settle'`,
          [`provider:${agent.peerId}:earned`],
        )
      )[0].total,
    );
    expect(earned).toBeGreaterThan(0n);
    const closed = await c.running.app.get(SettlementService).closeNow();
    expect(closed.closed).toBe(true);
    await waitFor('the epoch FINALIZED', async () => {
      const res = await api<{ epoch: number; state: string }[]>(c.url, 'GET', '/v1/rewards/epochs');
      return res.body.find((e) => e.epoch === closed.epoch)?.state === 'FINALIZED' ? true : undefined;
    });

    const token = attachComputeToken(addresses.token, chain.provider);
    const before = await token.balanceOf(address);
    // A coordinator serving a file the chain does not commit to (here: this wallet's leaf doubled)
    // gets a refusal, not a transaction.
    const [stored] = await query<{ json: string }>(
      db.url,
      'SELECT json FROM "EpochFile" WHERE "epochId" = $1',
      [closed.epoch],
    );
    const forged = JSON.parse(stored.json) as { leaves: { account: string; cumulativeAmount: string }[] };
    for (const leaf of forged.leaves) {
      if (leaf.account === address.toLowerCase()) leaf.cumulativeAmount = (2n * earned).toString();
    }
    await query(db.url, 'UPDATE "EpochFile" SET json = $1 WHERE "epochId" = $2', [
      JSON.stringify(forged),
      closed.epoch,
    ]);
    const refused = await cli(inDir('claim'));
    expect(refused.code, refused.stdout).toBe(1);
    expect(refused.stderr).toMatch(
      new RegExp(
        `refusing to claim: the coordinator's file of epoch ${closed.epoch} does not match the chain`,
      ),
    );
    expect(refused.stderr).toMatch(/AMOUNT_MISMATCH/);
    expect(await token.balanceOf(address)).toBe(before);
    await query(db.url, 'UPDATE "EpochFile" SET json = $1 WHERE "epochId" = $2', [stored.json, closed.epoch]);

    const claimed = await cli(inDir('claim', '--json'));
    expect(claimed.code, claimed.stderr).toBe(0);
    const body = JSON.parse(claimed.stdout) as {
      paid: string;
      txHash: string;
      epoch: number;
      gasUsed: string;
      verified: { root: string; leaves: number };
    };
    expect(body.paid).toBe(earned.toString());
    expect(body.verified.leaves).toBeGreaterThan(0);
    expect(body.verified.root).toMatch(/^0x[0-9a-f]{64}$/);
    expect(body.epoch).toBe(closed.epoch);
    expect(body.txHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(await token.balanceOf(address)).toBe(before + earned);

    const again = await cli(inDir('claim'));
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already claimed: .* paid to /);
    expect(await token.balanceOf(address)).toBe(before + earned);

    // With the coordinator gone: a kept epoch file, the chain and the distributor are enough. The
    // file is checked against the chain and the proof built from it (here it finds the claim made).
    const kept = join(dir, `epoch-${closed.epoch}.json`);
    await writeFile(kept, stored.json);
    const offline = ['--file', kept, '--rpc', chain.anvil.rpcUrl, '--distributor', addresses.distributor];
    const gone = ['--coordinator', 'http://127.0.0.1:1'];
    const fromFile = await cli(inDir('claim', ...offline, ...gone));
    expect(fromFile.code, fromFile.stdout).toBe(1);
    expect(fromFile.stderr).toMatch(/already claimed: .* paid to /);
    await writeFile(kept, JSON.stringify(forged));
    const forgedFile = await cli(inDir('claim', ...offline, ...gone));
    expect(forgedFile.stderr).toMatch(/refusing to claim: the file of epoch \d+ does not match the chain/);
    expect((await cli(inDir('claim', '--file', kept, ...gone))).stderr).toMatch(
      /needs --rpc <url> and --distributor/,
    );
    // A pinned distributor the coordinator does not settle on is refused before anything is sent.
    const pinned = await cli(inDir('claim', '--distributor', `0x${'11'.repeat(20)}`));
    expect(pinned.stderr).toMatch(/refusing: the coordinator settles on the distributor/);

    // `earnings`, the provider's own check: the agent that ran the job (its peer id, the keystore's
    // address, since the leaf was pointed there) matches each receipt with the net it journaled.
    const mine = await mkdtemp(join(tmpdir(), 'gpumesh-agent-earnings-'));
    try {
      const keystore = JSON.parse(await readFile(join(dir, 'keystore.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      await writeFile(join(mine, 'keystore.json'), JSON.stringify({ ...keystore, peerId: agent.peerId }));
      await writeFile(join(mine, 'agent.json'), await readFile(join(dir, 'agent.json'), 'utf8'));
      const journal = (net: bigint): Promise<void> =>
        writeFile(
          join(mine, 'journal.jsonl'),
          `${JSON.stringify({ jobId: job.body.id, attempt: 1, net: net.toString() })}\n`,
        );
      const earnings = (...args: string[]): Promise<CliRun> =>
        cli(['earnings', '--json', '--data-dir', mine, ...args]);
      await journal(earned);
      const ok = await earnings();
      expect(ok.code, ok.stderr).toBe(0);
      const report = JSON.parse(ok.stdout) as {
        epochs: { epoch: number; status: string; paid: string }[];
        counts: { matched: number; short: number };
        claimed: string;
        unpaid: unknown[];
      };
      expect(report.epochs.find((e) => e.epoch === closed.epoch)).toMatchObject({
        status: 'ok',
        paid: earned.toString(),
      });
      expect(report.counts).toMatchObject({ matched: 1, short: 0 });
      expect(report.claimed).toBe(earned.toString());
      expect(report.unpaid).toEqual([]);
      // The agent accepted one base unit more than the file pays: paid short, exit 3.
      await journal(earned + 1n);
      const short = await earnings();
      expect(short.code, short.stderr).toBe(3);
      expect(JSON.parse(short.stdout)).toMatchObject({ owedShort: '1', counts: { short: 1 } });
      // Offline from kept files: a forged file fails its audit against the chain (exit 3).
      await journal(earned);
      const keptDir = join(mine, 'kept');
      await mkdir(keptDir);
      await writeFile(join(keptDir, `epoch-${closed.epoch}.json`), JSON.stringify(forged));
      const offlineEarnings = await earnings(
        '--files',
        keptDir,
        '--rpc',
        chain.anvil.rpcUrl,
        '--distributor',
        addresses.distributor,
      );
      expect(offlineEarnings.code, offlineEarnings.stderr).toBe(3);
      const offlineReport = JSON.parse(offlineEarnings.stdout) as {
        epochs: { epoch: number; status: string; why?: string }[];
      };
      expect(offlineReport.epochs.find((e) => e.epoch === closed.epoch)).toMatchObject({
        status: 'unaudited',
      });
      await writeFile(join(keptDir, `epoch-${closed.epoch}.json`), stored.json);
      const offlineGood = await earnings(
        '--files',
        keptDir,
        '--rpc',
        chain.anvil.rpcUrl,
        '--distributor',
        addresses.distributor,
      );
      expect(offlineGood.code, offlineGood.stderr).toBe(0);
    } finally {
      await rm(mine, { recursive: true, force: true });
    }
  });
});
