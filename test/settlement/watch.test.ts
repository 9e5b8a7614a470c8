// `gpumesh watch` against a real anvil, PostgreSQL, Redis and coordinator: it checks every posted
// root against the epoch's file, vetoes a tampered one as guardian inside its window, the
// coordinator rebuilds and re-posts, and the watcher then finds every root right. A watcher that
// cannot get a file says so (nobody could build a proof from a withheld file).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANVIL_DEV_KEYS,
  ONE_TOKEN,
  attachRewardsDistributor,
  keccak256Hex,
  type DeployedAddresses,
  type RewardsDistributorContract,
} from '@gpumesh/rewards';
import { createGpumeshNode, handleEpochFileRequests, type GpumeshNode } from '@gpumesh/p2p';
import { runWatchCli } from '../../apps/cli/src/watch.js';
import { SettlementService } from '../../apps/coordinator/src/settlement/settlement.service.js';
import { api } from '../helpers/coordinator.js';
import type { FakeAgent } from '../helpers/fake-agent.js';
import { matmulSpec } from '../helpers/specs.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  balanceOf,
  deployForSettlement,
  depositIntoEscrow,
  epochs,
  query,
  settlementEnv,
  startOwnedCoordinator,
  startTestChain,
  waitFor,
  type OwnedCoordinator,
  type TestChain,
  startListedAgent,
} from './support.js';

const SETTLER = 9;
const PLATFORM = 7;
/** deployForSettlement's deployer holds GUARDIAN_ROLE. */
const GUARDIAN = 0;

describe('gpumesh watch', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let db: TestDatabase;
  let c: OwnedCoordinator;
  let agent: FakeAgent | undefined;
  let distributor: RewardsDistributorContract;
  let settlement: SettlementService;

  /** Runs `gpumesh watch --once` in this process; resolves with its exit code and output. */
  async function watchOnce(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runWatchCli(
      ['--once', ...args],
      { out: (l) => out.push(l), err: (l) => err.push(l) },
      new AbortController().signal,
      { GPUMESH_GUARDIAN_KEY: ANVIL_DEV_KEYS[GUARDIAN] },
    );
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  async function chargeAndClose(n: number): Promise<number> {
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(n, n, n, '500'),
    });
    expect(job.status).toBe(201);
    await waitFor(`job ${job.body.id}`, async () => {
      const res = await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${job.body.id}`, { key: c.devKey });
      return res.body.state === 'COMPLETED' ? true : undefined;
    });
    await waitFor('the charge vested', async () =>
      (await balanceOf(db.url, 'system:fees')) > 0n ? true : undefined,
    );
    const closed = await settlement.closeNow();
    if (!closed.closed) throw new Error(`epoch ${closed.epoch} did not close: ${closed.reason}`);
    return closed.epoch;
  }

  beforeAll(async () => {
    chain = await startTestChain(1);
    addresses = await deployForSettlement(chain, SETTLER, 60);
    distributor = attachRewardsDistributor(addresses.distributor, chain.provider);
    db = await createTestDatabase();
    c = await startOwnedCoordinator(
      db.url,
      settlementEnv(chain, addresses, SETTLER, {
        SETTLEMENT_TICK_MS: '0',
        DEPOSIT_CONFIRMATIONS: '1',
        PLATFORM_ACCOUNT_ADDRESS: chain.anvil.accounts[PLATFORM].address,
        PUBLIC_CHAIN_RPC_URL: chain.anvil.rpcUrl,
        MIN_PROVIDER_STAKE: '0',
      }),
    );
    settlement = c.running.app.get(SettlementService);
    await depositIntoEscrow(chain, addresses, 0, 10n * ONE_TOKEN);
    await waitFor('the deposit credited', async () => {
      const res = await api<{ balance: string }>(c.url, 'GET', '/v1/account', { key: c.devKey });
      return BigInt(res.body.balance) > 0n ? true : undefined;
    });
    agent = await startListedAgent(c, '300');
  });

  afterAll(async () => {
    await agent?.stop();
    await c?.close();
    await db?.drop();
    await chain?.stop();
  });

  it('vetoes a tampered root inside its window; the coordinator re-posts and every root checks out', async () => {
    const first = await chargeAndClose(24);
    await settlement.post(first);
    const honest = await watchOnce('--coordinator', c.url);
    expect(honest.code, honest.out + honest.err).toBe(0);
    expect(honest.out, honest.out).toMatch(new RegExp(`epoch ${first}: OK \\(\\d+ leaves`));

    // A compromised coordinator database: the root it posts is not its file's.
    const second = await chargeAndClose(20);
    const honestRoot = (await epochs(db.url)).find((e) => e.id === second)!.root;
    await query(db.url, 'UPDATE "Epoch" SET root = $2 WHERE id = $1', [second, `0x${'ab'.repeat(32)}`]);
    await settlement.post(second);
    expect(Number(await distributor.lastEpoch())).toBe(second);
    const caught = await watchOnce('--coordinator', c.url, '--json');
    expect(caught.code).toBe(1);
    const events = caught.out.split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const wrong = events.find((e) => e.kind === 'wrong');
    expect(wrong).toMatchObject({ epoch: second, veto: { sent: true } });
    expect(JSON.stringify(wrong)).toMatch(/CHAIN_ROOT_MISMATCH/);
    expect(Number(await distributor.lastEpoch())).toBe(second - 1);

    // The coordinator rebuilds the epoch from its ledger and re-posts the honest root.
    const outcome = await settlement.advance();
    expect(outcome.reposting).toContain(second);
    await settlement.post(second);
    expect((await distributor.epochRoot(second))[0]).toBe(honestRoot);
    const keep = await mkdtemp(join(tmpdir(), 'gpumesh-watch-'));
    try {
      const recovered = await watchOnce('--coordinator', c.url, '--save-dir', keep);
      expect(recovered.code, recovered.out + recovered.err).toBe(0);
      expect(recovered.out).toMatch(new RegExp(`epoch ${second}: OK`));
      // Every file that checked out is kept, byte for byte what the chain's file hash commits to.
      const served = await fetch(`${c.url}/v1/rewards/epochs/${second}/file`).then((r) => r.text());
      expect(await readFile(join(keep, `epoch-${second}.json`), 'utf8')).toBe(served);
      expect(await readFile(join(keep, `epoch-${first}.json`), 'utf8')).toContain(`"epoch":${first}`);
    } finally {
      await rm(keep, { recursive: true, force: true });
    }
  });

  it('reports a file it cannot get, and refuses bad options', async () => {
    const blind = await watchOnce(
      '--coordinator',
      'http://127.0.0.1:1',
      '--rpc',
      chain.anvil.rpcUrl,
      '--distributor',
      addresses.distributor,
    );
    expect(blind.code).toBe(1);
    expect(blind.out).toMatch(/epoch 1: file unavailable/);
    expect((await watchOnce()).err).toMatch(/--coordinator or --peer is required/);
    expect((await watchOnce('--peer', '/ip4/127.0.0.1/tcp/1')).err).toMatch(/pass --rpc and --distributor/);
    expect((await watchOnce('--coordinator', c.url, '--peer', '/ip4/127.0.0.1/tcp/1')).err).toMatch(
      /ending in \/p2p\/<peer id>/,
    );
    expect((await watchOnce('--coordinator', c.url, '--poll-ms', '0')).code).toBe(2);
    expect((await watchOnce('--coordinator', c.url, '--distributor', 'nope')).err).toMatch(/0x address/);
  });

  it('fetches the files from a peer that keeps them when the coordinator is gone', async () => {
    // What an agent or another watcher keeps: the bytes the chain's file hashes commit to.
    const last = Number(await distributor.lastEpoch());
    const kept = new Map<string, Uint8Array>();
    for (let epoch = 1; epoch <= last; epoch++) {
      const res = await fetch(`${c.url}/v1/rewards/epochs/${epoch}/file`);
      const bytes = new Uint8Array(await res.arrayBuffer());
      kept.set(keccak256Hex(bytes), bytes);
    }
    const keeper = await createGpumeshNode({ listen: ['/ip4/127.0.0.1/tcp/0'] });
    const empty = await createGpumeshNode({ listen: ['/ip4/127.0.0.1/tcp/0'] });
    try {
      await handleEpochFileRequests(keeper, { getFile: async (fileHash) => kept.get(fileHash) });
      await handleEpochFileRequests(empty, { getFile: async () => undefined });
      const gone = ['--coordinator', 'http://127.0.0.1:1', '--rpc', chain.anvil.rpcUrl];
      const at = (node: GpumeshNode): string => node.getMultiaddrs()[0].toString();
      // The first peer has nothing; the second serves every file, checked against the chain's hash.
      const fromPeers = await watchOnce(
        ...gone,
        '--distributor',
        addresses.distributor,
        '--peer',
        at(empty),
        '--peer',
        at(keeper),
      );
      expect(fromPeers.code, fromPeers.out + fromPeers.err).toBe(0);
      for (let epoch = 1; epoch <= last; epoch++)
        expect(fromPeers.out).toMatch(new RegExp(`epoch ${epoch}: OK`));
      // Nobody has it: said with each source's reason.
      const nobody = await watchOnce(...gone, '--distributor', addresses.distributor, '--peer', at(empty));
      expect(nobody.code).toBe(1);
      expect(nobody.out).toMatch(/epoch 1: file unavailable \(coordinator: .*; peers: .*not/i);
    } finally {
      await Promise.all([keeper.stop(), empty.stop()]);
    }
  });

  it('serves the files it keeps (--listen) to a watcher that has no coordinator', async () => {
    const keep = await mkdtemp(join(tmpdir(), 'gpumesh-watch-serve-'));
    const stop = new AbortController();
    const lines: string[] = [];
    const serving = runWatchCli(
      [
        '--coordinator',
        c.url,
        '--save-dir',
        keep,
        '--listen',
        '/ip4/127.0.0.1/tcp/0',
        '--poll-ms',
        '200',
        '--json',
      ],
      { out: (l) => lines.push(l), err: (l) => lines.push(l) },
      stop.signal,
      {},
    );
    try {
      const last = Number(await distributor.lastEpoch());
      await waitFor('the serving watcher kept every file', async () =>
        lines.some((l) => l.includes(`"kind":"ok","epoch":${last}`)) ? true : undefined,
      );
      const announced = lines.map((l) => JSON.parse(l) as { kind: string; addresses?: string[] });
      const address = announced.find((e) => e.kind === 'serving')?.addresses?.[0];
      expect(address).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3Koo/);
      const fromWatcher = await watchOnce(
        '--rpc',
        chain.anvil.rpcUrl,
        '--distributor',
        addresses.distributor,
        '--peer',
        address!,
      );
      expect(fromWatcher.code, fromWatcher.out + fromWatcher.err).toBe(0);
      for (let epoch = 1; epoch <= last; epoch++)
        expect(fromWatcher.out).toMatch(new RegExp(`epoch ${epoch}: OK`));
    } finally {
      stop.abort();
      expect(await serving).toBe(0);
    }
    // Its identity is kept beside the files, so its address stays the same across restarts.
    expect((await readFile(join(keep, 'peer-key'), 'utf8')).trim()).toMatch(/^[0-9a-f]+$/);
    expect((await watchOnce('--coordinator', c.url, '--listen', '/ip4/127.0.0.1/tcp/0')).err).toMatch(
      /needs --save-dir/,
    );
    await rm(keep, { recursive: true, force: true });
  });
});
