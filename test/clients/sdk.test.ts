// The TypeScript SDK (libs/sdk) as a developer uses it, against a real coordinator settling on a real
// anvil (PostgreSQL, Redis) and a fake provider over libp2p: a fresh wallet gets gas and tokens,
// deposits into the JobEscrow, signs in with the SDK (SIWE), signs a spending cap with it, submits a
// matmul, follows its events through a proxy that cuts the stream after the first event (the SDK
// resumes with Last-Event-ID: nothing lost, nothing twice), waits, and checks the result against a
// float64 reference, also through a .npy round trip.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { HDNodeWallet, NonceManager, Wallet, parseEther } from 'ethers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ONE_TOKEN, attachComputeToken, depositIntoEscrow, type DeployedAddresses } from '@gpumesh/rewards';
import {
  GpumeshApiError,
  GpumeshClient,
  decodeTensor,
  fromNpy,
  signIn,
  tensor,
  toNpy,
  type JobEventDto,
} from '@gpumesh/sdk';
import type { FakeAgent } from '../helpers/fake-agent.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  deployForSettlement,
  settlementEnv,
  startListedAgent,
  startOwnedCoordinator,
  startTestChain,
  waitFor,
  type OwnedCoordinator,
  type TestChain,
} from '../settlement/support.js';

const SETTLER = 9;
const DEPOSIT = 50n * ONE_TOKEN;
const M = 6;
const K = 5;
const N = 4;

/**
 * A TCP proxy to `port` that cuts the first event stream (GET …/events) right after the first
 * `job-event` it forwards, as a flaky network would; counts the event-stream connections.
 */
async function startCuttingProxy(
  port: number,
): Promise<{ url: string; streams: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { streams: 0, cut: false };
  const server: Server = createServer((client) => {
    const upstream = new (client.constructor as typeof Socket)();
    upstream.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let streaming = false;
    client.on('data', (chunk: Buffer) => {
      if (/^GET \/v1\/jobs\/[^ ]+\/events /m.test(chunk.toString('latin1'))) {
        streaming = true;
        state.streams++;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      client.write(chunk);
      if (streaming && !state.cut && chunk.toString('utf8').includes('event: job-event')) {
        state.cut = true;
        client.destroy();
        upstream.destroy();
      }
    });
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    get streams() {
      return state.streams;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** a (m×k) · b (k×n) in float64. */
function reference(a: Float32Array, b: Float32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let x = 0; x < K; x++) s += a[i * K + x] * b[x * N + j];
      out.push(s);
    }
  return out;
}

describe('the TypeScript SDK against a coordinator on a chain', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let db: TestDatabase;
  let c: OwnedCoordinator;
  let agent: FakeAgent | undefined;
  let wallet: HDNodeWallet;

  beforeAll(async () => {
    chain = await startTestChain(1);
    addresses = await deployForSettlement(chain, SETTLER, 30);
    db = await createTestDatabase();
    c = await startOwnedCoordinator(
      db.url,
      settlementEnv(chain, addresses, SETTLER, {
        SETTLEMENT_TICK_MS: '0',
        DEPOSIT_CONFIRMATIONS: '1',
        CANARY_RATE: '0',
        MIN_PROVIDER_STAKE: '0',
      }),
    );
    agent = await startListedAgent(c, '300');
    // A fresh wallet with gas and tokens (from anvil account 0, the deployer and minter).
    wallet = Wallet.createRandom().connect(chain.provider);
    await (await chain.wallets[0].sendTransaction({ to: wallet.address, value: parseEther('1') })).wait();
    await (
      await attachComputeToken(addresses.token, chain.wallets[0]).transfer(wallet.address, DEPOSIT)
    ).wait();
  });

  afterAll(async () => {
    await agent?.stop();
    await c?.close();
    await db?.drop();
    await chain?.stop();
  });

  it('signs in, deposits, signs a cap, submits, streams through a dropped connection, waits and reads the result', async () => {
    // Sign in with the wallet: a client holding a new API key.
    const { client, session } = await signIn(c.url, wallet, { keyName: 'sdk test' });
    expect(session.address.toLowerCase()).toBe(wallet.address.toLowerCase());
    expect(client.apiKey).not.toBe(session.token);

    // Deposit on chain; the coordinator credits it. Nothing may be spent before a cap is signed.
    await depositIntoEscrow(
      new NonceManager(wallet),
      { token: addresses.token, escrow: addresses.escrow },
      DEPOSIT,
    );
    await waitFor('the deposit credited', async () =>
      BigInt((await client.account()).balance) === DEPOSIT ? true : undefined,
    );
    const before = await client.account();
    expect(before.spendingCap?.cap).toBe('0');

    // The cap, signed with the SDK from the typed data GET /v1/account shows.
    const cap = await client.authorizeSpending(wallet, DEPOSIT);
    expect(cap.cap).toBe(DEPOSIT.toString());
    expect((await client.account()).spendingCap?.authorisedRemaining).toBe(DEPOSIT.toString());
    // A signature by another wallet is refused before anything is sent.
    await expect(client.authorizeSpending(Wallet.createRandom(), DEPOSIT + 1n)).rejects.toThrow(
      /account's wallet/,
    );

    // Submit a matmul built from typed arrays; the provider takes 1.5 s, so the stream is live.
    agent!.setRunDelay(1_500);
    const a = Float32Array.from({ length: M * K }, (_, i) => ((i % 7) - 3) / 4);
    const b = Float32Array.from({ length: K * N }, (_, i) => ((i % 5) - 2) / 3);
    const job = await client.submit({
      kind: 'matmul',
      version: 1,
      inputs: [tensor('a', a, [M, K]), fromNpy('b', toNpy(tensor('b', b, [K, N])))],
      maxPricePerUnit: '1000',
      deadlineSeconds: 60,
    });
    expect(job.state).toBe('QUEUED');

    // The events, through a proxy that cuts the stream after its first event.
    const proxy = await startCuttingProxy(Number(new URL(c.url).port));
    const flaky = new GpumeshClient({ baseUrl: proxy.url, apiKey: client.apiKey });
    const reconnects: number[] = [];
    const seen: JobEventDto[] = [];
    try {
      for await (const event of flaky.events(job.id, { onReconnect: (n) => reconnects.push(n) })) {
        seen.push(event);
      }
    } finally {
      await proxy.close();
    }
    expect(proxy.streams).toBeGreaterThanOrEqual(2);
    expect(reconnects.length).toBeGreaterThanOrEqual(1);
    expect(seen.at(-1)?.toState).toBe('COMPLETED');
    // Nothing lost and nothing twice: the same events as an uninterrupted replay of the history.
    const replay: JobEventDto[] = [];
    for await (const event of client.events(job.id)) replay.push(event);
    expect(seen.map((e) => e.id)).toEqual(replay.map((e) => e.id));
    expect(new Set(seen.map((e) => e.id)).size).toBe(seen.length);
    // Resuming after the terminal event ends at once (204).
    const after: JobEventDto[] = [];
    for await (const event of client.events(job.id, { lastEventId: seen.at(-1)!.id })) after.push(event);
    expect(after).toEqual([]);

    const done = await client.wait(job.id, { timeoutMs: 30_000 });
    expect(done.state).toBe('COMPLETED');
    expect(BigInt(done.charged)).toBeGreaterThan(0n);

    const result = await client.result(job.id);
    const c0 = result.result.outputs[0];
    expect(c0.shape).toEqual([M, N]);
    // a small product comes back inline (large ones by ref, see test/e2e/large-outputs.test.ts)
    if ('ref' in c0) throw new Error('expected an inline output');
    const values = [...decodeTensor(fromNpy('c', toNpy(c0)))];
    const expected = reference(a, b);
    values.forEach((v, i) => expect(Math.abs(v - expected[i])).toBeLessThan(1e-5));

    // The account shows what was charged; the ledger lists the reservation and the settlement.
    const account = await client.account();
    expect(BigInt(account.balance)).toBe(DEPOSIT - BigInt(done.charged));
    const ledger = await client.ledger();
    expect(ledger.items.filter((e) => e.jobId === job.id).map((e) => e.kind)).toContain('settle');
    const listed = await client.jobs({ state: 'COMPLETED' });
    expect(listed.items.map((j) => j.id)).toContain(job.id);
  });

  it('throws API errors with their code and status', async () => {
    const { client } = await signIn(c.url, Wallet.createRandom());
    const missing = await client.job('00000000-0000-4000-8000-000000000000').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(GpumeshApiError);
    expect((missing as GpumeshApiError).code).toBe('JOB_NOT_FOUND');
    const unfunded = await client
      .submit({
        kind: 'matmul',
        version: 1,
        inputs: [tensor('a', new Float32Array(4), [2, 2]), tensor('b', new Float32Array(4), [2, 2])],
        maxPricePerUnit: '1000',
      })
      .catch((e: unknown) => e);
    expect(unfunded).toBeInstanceOf(GpumeshApiError);
    expect((unfunded as GpumeshApiError).statusCode).toBe(402);
  });

  it('runs the docs/sdk.md example as written (with this coordinator and a funded wallet)', async () => {
    const docs = await readFile(join(process.cwd(), 'docs/sdk.md'), 'utf8');
    const example = /```ts\n([\s\S]*?)```/.exec(docs)?.[1];
    if (!example) throw new Error('docs/sdk.md has no ts example');
    // A wallet with a deposit credited, as after `gpumesh deposit`.
    const dev = Wallet.createRandom().connect(chain.provider);
    await (await chain.wallets[0].sendTransaction({ to: dev.address, value: parseEther('1') })).wait();
    await (await attachComputeToken(addresses.token, chain.wallets[0]).transfer(dev.address, DEPOSIT)).wait();
    const { client } = await signIn(c.url, dev);
    await depositIntoEscrow(
      new NonceManager(dev),
      { token: addresses.token, escrow: addresses.escrow },
      DEPOSIT,
    );
    await waitFor('the deposit credited', async () =>
      BigInt((await client.account()).balance) === DEPOSIT ? true : undefined,
    );
    agent!.setRunDelay(0);
    // The example as a module in the repository (so its imports resolve), with this coordinator's URL.
    const dir = await mkdtemp(join(process.cwd(), 'test/clients/.sdk-example-'));
    const file = join(dir, 'example.ts');
    await writeFile(file, example.replaceAll('http://127.0.0.1:8080', c.url));
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    process.env.DEV_KEY = dev.privateKey;
    try {
      await import(file);
      const lines = log.mock.calls.map((args) => args.map(String).join(' '));
      expect(lines.at(-1)).toBe('COMPLETED 19,22,43,50');
      expect(lines).toContain('job.completed COMPLETED'); // the events loop's last line
    } finally {
      log.mockRestore();
      delete process.env.DEV_KEY;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
