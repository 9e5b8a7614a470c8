import { createServer, type Server } from 'node:http';
import { Wallet } from 'ethers';
import { encodeTensor } from '@gpumesh/protocol';
import { DEV_FAUCET_ANVIL_INDEX, ONE_TOKEN } from '@gpumesh/rewards';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDevFundCli } from '../../apps/cli/src/dev-fund.js';
import { deploySystem, startChain, type Chain, type System } from '../contracts/chain.js';
import { fundedDeveloper, type TestDeveloper } from '../helpers/accounts.js';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { pollUntil } from '../helpers/poll.js';
import { matmulSpec } from '../helpers/specs.js';

interface Charges {
  work: string;
  redundancy: string;
  canary: string;
  fee: string;
}
interface JobBody {
  id: string;
  state: string;
  cost: string;
  workUnits: string;
  reserved: string;
  charged: string;
  chargedBreakdown: Charges;
}
interface EntryBody {
  id: string;
  txId: string;
  createdAt: string;
  kind: string;
  balance: 'available' | 'reserved';
  amount: string;
  jobId: string | null;
  balanceAfter: string;
}
interface PageBody<T> {
  items: T[];
  nextCursor: string | null;
}
interface ErrorBody {
  statusCode: number;
  error: { code: string; message: string };
}

const CREDITS = 1_000_000n;
const MAX_PRICE = 1_000n;
const PRICES = [200n, 300n];

describe('billing you can read: reserved vs charged, the account ledger, and strict bodies', () => {
  let c: TestCoordinator;
  let dev: TestDeveloper;
  const agents: FakeAgent[] = [];

  beforeAll(async () => {
    c = await startTestCoordinator({ DISPATCH_BACKOFF_MS: '50', OFFER_ACCEPT_TIMEOUT_MS: '3000' });
    // Two operators at different prices, so a redundant job pays two different runs.
    for (const price of PRICES) agents.push(await startFakeAgent(c.url, { pricePerUnit: price.toString() }));
    dev = await fundedDeveloper(c, CREDITS);
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await c?.close();
  });

  const feeOf = (gross: bigint): bigint => (gross * BigInt(c.config.PLATFORM_FEE_BPS)) / 10_000n;

  it('shows what a completed job reserved and what it was charged, part by part, from the ledger', async () => {
    await pollUntil(
      'both providers',
      async () => ((await api<unknown[]>(c.url, 'GET', '/v1/providers')).body.length >= 2 ? true : undefined),
      20_000,
    );
    const submitted = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: dev.key,
      body: { ...matmulSpec(4, 4, 4, MAX_PRICE.toString()), redundancy: 2 },
    });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(201);
    const units = BigInt(submitted.body.workUnits);
    const reserved = units * MAX_PRICE * 2n;
    expect(submitted.body).toMatchObject({ reserved: reserved.toString(), charged: '0' });
    expect(submitted.body.cost).toBe(submitted.body.reserved); // the deprecated field

    const done = await pollUntil(
      'the job to complete',
      async () => {
        const res = await api<JobBody>(c.url, 'GET', `/v1/jobs/${submitted.body.id}`, { key: dev.key });
        return res.body.state === 'COMPLETED' ? res.body : undefined;
      },
      20_000,
    );
    // Each provider is paid its own price, not the job's maximum; the fee comes out of each payment.
    const gross = PRICES.map((p) => p * units);
    const nets = gross.map((g) => g - feeOf(g));
    expect(done.reserved).toBe(reserved.toString());
    expect(done.charged).toBe((gross[0] + gross[1]).toString());
    const b = done.chargedBreakdown;
    expect([b.work, b.redundancy].sort()).toEqual(nets.map(String).sort());
    expect(b.canary).toBe('0');
    expect(b.fee).toBe((feeOf(gross[0]) + feeOf(gross[1])).toString());
    expect(BigInt(b.work) + BigInt(b.redundancy) + BigInt(b.canary) + BigInt(b.fee)).toBe(
      BigInt(done.charged),
    );

    const list = await api<PageBody<JobBody>>(c.url, 'GET', '/v1/jobs?limit=5', { key: dev.key });
    expect(list.body.items.find((j) => j.id === done.id)).toMatchObject({
      reserved: done.reserved,
      charged: done.charged,
      chargedBreakdown: done.chargedBreakdown,
    });
    const account = await api<{ balance: string; reserved: string }>(c.url, 'GET', '/v1/account', {
      key: dev.key,
    });
    expect(BigInt(account.body.balance)).toBe(CREDITS - BigInt(done.charged));
    expect(account.body.reserved).toBe('0');
  });

  it("pages the account's own ledger, newest first, with running balances and filters", async () => {
    const seen: EntryBody[] = [];
    let cursor: string | null = null;
    do {
      const path: string = `/v1/account/ledger?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await api<PageBody<EntryBody>>(c.url, 'GET', path, { key: dev.key });
      expect(page.status, JSON.stringify(page.body)).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items);
      cursor = page.body.nextCursor;
    } while (cursor);
    // The credits, the job's reservation (two entries) and its settlement (two): nothing of the dev
    // account's own jobs, nor any provider's or the platform's rows.
    expect(seen.map((e) => `${e.kind}:${e.balance}`)).toEqual([
      'settle:available',
      'settle:reserved',
      'reserve:reserved',
      'reserve:available',
      'mint:available',
    ]);
    const ids = seen.map((e) => BigInt(e.id));
    expect([...ids].sort((x, y) => (x > y ? -1 : x < y ? 1 : 0))).toEqual(ids);
    // Each balance's entries chain: the one before + this amount = this balance after.
    for (const balance of ['available', 'reserved'] as const) {
      const chain = seen.filter((e) => e.balance === balance).reverse();
      let running = 0n;
      for (const e of chain) {
        running += BigInt(e.amount);
        expect(e.balanceAfter, `${e.kind} ${e.id}`).toBe(running.toString());
      }
    }
    const account = await api<{ balance: string }>(c.url, 'GET', '/v1/account', { key: dev.key });
    expect(seen[0].balanceAfter).toBe(account.body.balance);

    const settles = await api<PageBody<EntryBody>>(c.url, 'GET', '/v1/account/ledger?kind=settle', {
      key: dev.key,
    });
    expect(settles.body.items.map((e) => e.id)).toEqual(seen.slice(0, 2).map((e) => e.id));
    // A filter skips entries but not their effect on the balance after each one.
    const reserved = await api<PageBody<EntryBody>>(
      c.url,
      'GET',
      '/v1/account/ledger?balance=available&kind=reserve,mint',
      { key: dev.key },
    );
    expect(reserved.body.items).toEqual([seen[3], seen[4]]);
    const future = await api<PageBody<EntryBody>>(
      c.url,
      'GET',
      `/v1/account/ledger?from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`,
      { key: dev.key },
    );
    expect(future.body).toEqual({ items: [], nextCursor: null });
    for (const [query, field] of [
      ['kind=bribe', 'kind'],
      ['cursor=bm90LWEtY3Vyc29y', 'cursor'],
      ['from=yesterday', 'from'],
      ['limit=0', 'limit'],
    ]) {
      const bad = await api<ErrorBody>(c.url, 'GET', `/v1/account/ledger?${query}`, { key: dev.key });
      expect(bad.status, query).toBe(400);
      expect(bad.body.error.message).toContain(field);
    }
    const other = await api<PageBody<EntryBody>>(c.url, 'GET', '/v1/account/ledger?kind=settle', {
      key: c.devKey,
    });
    expect(other.body.items.some((e) => seen.some((mine) => mine.id === e.id))).toBe(false);
  });

  it('refuses NaN and Infinity in job inputs with a 400 naming the field', async () => {
    const spec = matmulSpec(2, 2, 2, '10');
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const b = encodeTensor('b', 'float32', [2, 2], Float32Array.from([1, 2, bad, 4]));
      const res = await api<ErrorBody>(c.url, 'POST', '/v1/jobs', {
        key: dev.key,
        body: { ...spec, inputs: [(spec.inputs as unknown[])[0], b] },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.message).toContain('inputs[1].data: element 2');
    }
  });

  it('takes `constructor` keys as plain data and still refuses `__proto__`', async () => {
    const weights = Buffer.from(Float32Array.from([0.5]).buffer).toString('base64');
    const modelJson = {
      format: 'layers-model',
      modelTopology: {
        class_name: 'Sequential',
        config: { name: 'constructor', layers: [] },
        constructor: { prototype: { note: 'a key, not a class' } },
      },
      weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'w', shape: [1], dtype: 'float32' }] }],
    };
    const upload = await api<{ hash: string }>(c.url, 'POST', '/v1/artifacts', {
      key: dev.key,
      body: { format: 'layers', modelJson, weights },
    });
    expect(upload.status, JSON.stringify(upload.body)).toBe(201);
    const poisoned = await api<ErrorBody>(c.url, 'POST', '/v1/artifacts', {
      key: dev.key,
      rawBody: `{"format":"layers","modelJson":{"__proto__":{"polluted":true}},"weights":""}`,
    });
    expect(poisoned.status).toBe(400);
    expect(poisoned.body.error.code).toBe('INVALID_JSON');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('checks credentials before it looks at the body: 401 for a malformed body without a valid key', async () => {
    for (const rawBody of ['{"kind":', '', `{"__proto__":{}}`, '['.repeat(200) + ']'.repeat(200)]) {
      const anonymous = await api<ErrorBody>(c.url, 'POST', '/v1/jobs', { rawBody });
      expect(anonymous.status, rawBody.slice(0, 20)).toBe(401);
      const wrongKey = await api<ErrorBody>(c.url, 'POST', '/v1/jobs', { rawBody, key: 'gmk_not_a_key' });
      expect(wrongKey.status).toBe(401);
      const signedIn = await api<ErrorBody>(c.url, 'POST', '/v1/jobs', { rawBody, key: dev.key });
      expect(signedIn.status).toBe(400);
    }
  });
});

describe('gpumesh dev fund: a new wallet gets gas and tokens on the dev chain, and can deposit', () => {
  let chain: Chain;
  let sys: System;
  let server: Server;
  let coordinatorUrl: string;
  let dev = true;

  beforeAll(async () => {
    chain = await startChain();
    sys = await deploySystem(chain, {
      mint: [{ to: chain.addresses[DEV_FAUCET_ANVIL_INDEX], amount: 1_000_000n * ONE_TOKEN }],
    });
    // What the CLI asks a coordinator: GET /v1/rewards/chain (the coordinator itself is not the subject).
    server = createServer((req, res) => {
      if (req.url !== '/v1/rewards/chain') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          chainId: chain.anvil.chainId,
          rpcUrl: chain.anvil.rpcUrl,
          dev,
          token: sys.addresses.token,
          distributor: sys.addresses.distributor,
          escrow: sys.addresses.escrow,
          staking: sys.addresses.staking,
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    coordinatorUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await chain?.stop();
  });

  async function run(args: string[], env: Record<string, string> = {}) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runDevFundCli(
      [...args, '--coordinator', coordinatorUrl],
      { out: (l) => out.push(l), err: (l) => err.push(l) },
      env,
    );
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  it('funds a fresh address, then deposits from it into the escrow with its key', async () => {
    const wallet = Wallet.createRandom();
    const funded = await run([wallet.address, '--amount', '250', '--eth', '0.5']);
    expect(funded.code, funded.err).toBe(0);
    expect(funded.out).toContain(`funded ${wallet.address}`);
    expect(funded.out).toContain(`JobEscrow(${sys.addresses.escrow}).deposit(amount)`);
    expect(await chain.provider.getBalance(wallet.address)).toBe(5n * 10n ** 17n);
    expect(await sys.token.balanceOf(wallet.address)).toBe(250n * ONE_TOKEN);

    const deposited = await run(
      [wallet.address, '--amount', '0', '--eth', '0', '--deposit', '100', '--key-env', 'K', '--json'],
      {
        K: wallet.privateKey,
      },
    );
    expect(deposited.code, deposited.err).toBe(0);
    expect(JSON.parse(deposited.out)).toMatchObject({
      deposited: (100n * ONE_TOKEN).toString(),
      spendingCap: (100n * ONE_TOKEN).toString(),
    });
    expect(deposited.out).not.toContain(wallet.privateKey.slice(2));
    expect(await sys.escrow.balanceOf(wallet.address)).toBe(100n * ONE_TOKEN);
    expect(await sys.token.balanceOf(wallet.address)).toBe(150n * ONE_TOKEN);
    // The top-up authorised spending what it added: the cap rose by the deposit, on chain.
    expect(await sys.escrow.spendingCapOf(wallet.address)).toBe(100n * ONE_TOKEN);
    const more = await run(
      [wallet.address, '--amount', '0', '--eth', '0', '--deposit', '30', '--key-env', 'K'],
      {
        K: wallet.privateKey,
      },
    );
    expect(more.code, more.err).toBe(0);
    expect(more.out).toContain('spending cap on the JobEscrow is now 130');
    expect(await sys.escrow.spendingCapOf(wallet.address)).toBe(130n * ONE_TOKEN);
    // --no-cap deposits and leaves the cap where it was.
    const uncapped = await run(
      [wallet.address, '--amount', '0', '--eth', '0', '--deposit', '20', '--key-env', 'K', '--no-cap'],
      { K: wallet.privateKey },
    );
    expect(uncapped.code, uncapped.err).toBe(0);
    expect(uncapped.out).toContain('gpumesh spending-cap --cap');
    expect(await sys.escrow.balanceOf(wallet.address)).toBe(150n * ONE_TOKEN);
    expect(await sys.escrow.spendingCapOf(wallet.address)).toBe(130n * ONE_TOKEN);
  });

  it('refuses bad arguments with usage, a key that is not the address, and a chain that is not a dev chain', async () => {
    const wallet = Wallet.createRandom();
    for (const args of [
      [],
      ['0x1234'],
      [wallet.address, '--amount', 'lots'],
      [wallet.address, '--deposit', '5'],
      [wallet.address, '--no-cap'],
    ]) {
      const res = await run(args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.err).toContain('usage: gpumesh dev fund');
    }
    const other = Wallet.createRandom();
    const wrongKey = await run([wallet.address, '--deposit', '5', '--key-env', 'K'], { K: other.privateKey });
    expect(wrongKey.code).toBe(2);
    expect(wrongKey.err).not.toContain(other.privateKey.slice(2));
    dev = false;
    try {
      const real = await run([wallet.address]);
      expect(real.code).toBe(1);
      expect(real.err).toContain('not a local dev chain');
      expect(await chain.provider.getBalance(wallet.address)).toBe(0n);
    } finally {
      dev = true;
    }
  });
});
