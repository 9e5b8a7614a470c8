// The developer CLI (`gpumesh`, built: dist/apps/cli/src/main.js) as real processes against a real
// coordinator settling on a real anvil (PostgreSQL, Redis) with a fake provider over libp2p: a fresh
// wallet logs in (SIWE; the API key lands in a 0600 credentials file, never on screen), deposits
// (escrow deposit and a signed spending cap in one step), submits a matmul of two .npy files and
// waits, writes the result as .npy (checked against a float64 reference), reads its account and
// jobs, and withdraws through the escrow's unlock delay.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet, parseEther, type HDNodeWallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeNpy } from '@gpumesh/protocol';
import { ONE_TOKEN, attachComputeToken, attachJobEscrow, type DeployedAddresses } from '@gpumesh/rewards';
import { tensor, toNpy } from '@gpumesh/sdk';
import { assertBuilt, runCli, type CliRun } from '../helpers/processes.js';
import type { FakeAgent } from '../helpers/fake-agent.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import {
  deployForSettlement,
  increaseTime,
  settlementEnv,
  startListedAgent,
  startOwnedCoordinator,
  startTestChain,
  waitFor,
  type OwnedCoordinator,
  type TestChain,
} from '../settlement/support.js';

const CLI = join(process.cwd(), 'dist/apps/cli/src/main.js');
const SETTLER = 9;
const FUNDS = 100n * ONE_TOKEN;
const M = 5;
const K = 7;
const N = 3;

describe('gpumesh developer commands, as processes', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let db: TestDatabase;
  let c: OwnedCoordinator;
  let agent: FakeAgent | undefined;
  let wallet: HDNodeWallet;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  const gpumesh = (...args: string[]): Promise<CliRun> => runCli(CLI, args, env);
  const json = <T>(run: CliRun): T => {
    expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(0);
    return JSON.parse(run.stdout) as T;
  };

  beforeAll(async () => {
    assertBuilt();
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
        PUBLIC_CHAIN_RPC_URL: chain.anvil.rpcUrl,
      }),
    );
    // outputs by ref, as a real agent returns large ones: `-o` streams them, checked against the ref
    agent = await startListedAgent(c, '300', { outputsByRef: true });
    wallet = Wallet.createRandom().connect(chain.provider);
    await (await chain.wallets[0].sendTransaction({ to: wallet.address, value: parseEther('1') })).wait();
    await (
      await attachComputeToken(addresses.token, chain.wallets[0]).transfer(wallet.address, FUNDS)
    ).wait();
    dir = await mkdtemp(join(tmpdir(), 'gpumesh-cli-'));
    const { GPUMESH_API_KEY: _key, GPUMESH_COORDINATOR: _url, ...rest } = process.env;
    env = { ...rest, HOME: dir, GPUMESH_CONFIG_DIR: join(dir, 'config'), DEV_WALLET_KEY: wallet.privateKey };
  });

  afterAll(async () => {
    await agent?.stop();
    await c?.close();
    await db?.drop();
    await chain?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses bad command lines with usage (exit 2) and says when it is not logged in (exit 1)', async () => {
    const cases: [string[], RegExp][] = [
      [['login', '--coordinator', c.url], /a wallet is needed/],
      [['login', '--coordinator', 'ftp://x', '--key-env', 'DEV_WALLET_KEY'], /not an http\(s\) URL/],
      [['login', '--key-env', 'NOT_SET_ANYWHERE'], /NOT_SET_ANYWHERE is not set/],
      [['jobs', 'submit', '--matmul', 'a.npy', 'b.npy'], /needs --max-price/],
      [['jobs', 'result'], /expected one job id/],
      [['jobs', 'list', '--bogus'], /Unknown option '--bogus'/],
      [['deposit', 'lots', '--key-env', 'DEV_WALLET_KEY'], /not a token amount/],
      [['withdraw', '--cancel', '5', '--key-env', 'DEV_WALLET_KEY'], /--cancel takes no amount/],
      [['tensors', 'rm', 'sha256:nope'], /is not a ref/],
      [['tensors', 'upload', 'a.npy', '--limit', '3'], /--limit and --cursor go with list/],
      [['tensors', 'upload', 'a.npy', '-o', 'b.npy'], /-o goes with get/],
      [['tensors', 'get', `sha256:${'ab'.repeat(32)}`], /-o <file\.npy>: where to write it/],
      [['tensors', 'get', 'sha256:nope', '-o', 'x.npy'], /is not a ref/],
      [['tensors', 'upload', join(tmpdir(), 'gpumesh-no-such-file.npy')], /cannot read .*ENOENT/],
    ];
    for (const [args, message] of cases) {
      const run = await gpumesh(...args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).toContain('usage: gpumesh');
    }
    const notLoggedIn = await gpumesh('account', '--coordinator', c.url);
    expect(notLoggedIn.code).toBe(1);
    expect(notLoggedIn.stderr).toMatch(/not logged in .* run gpumesh login/);
    for (const command of ['login', 'jobs', 'tensors', 'account', 'deposit', 'withdraw']) {
      const help = await gpumesh(command, '--help');
      expect(help.code, command).toBe(0);
      expect(help.stdout).toMatch(/^usage: gpumesh /);
    }
  });

  it('logs in, deposits, submits and waits, writes the result as .npy, and withdraws', async () => {
    // login: the API key goes to the credentials file (0600), and is printed nowhere; the spending
    // cap is signed in the same step.
    const login = await gpumesh('login', '--coordinator', c.url, '--key-env', 'DEV_WALLET_KEY', '--cap', '5');
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain(`as ${wallet.address}`);
    expect(login.stdout).toContain('spending cap signed and stored: 5 tokens');
    const path = join(dir, 'config', 'credentials.json');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(await readFile(path, 'utf8')) as { apiKey: string; coordinator: string };
    expect(stored.coordinator).toBe(c.url);
    expect(stored.apiKey.length).toBeGreaterThan(16);
    const secrets = [stored.apiKey, wallet.privateKey, wallet.privateKey.slice(2)];
    const printed: string[] = [login.stdout, login.stderr];

    // deposit: on chain, and the spending cap raised by as much, signed, in one command.
    const deposit = await gpumesh('deposit', '40', '--key-env', 'DEV_WALLET_KEY', '--json');
    printed.push(deposit.stdout, deposit.stderr);
    expect(json<{ spendingCap: string }>(deposit).spendingCap).toBe((45n * ONE_TOKEN).toString());
    // A wallet that is not the logged-in account's is a usage error.
    const other = await runCli(CLI, ['deposit', '1', '--key-env', 'OTHER_KEY'], {
      ...env,
      OTHER_KEY: Wallet.createRandom().privateKey,
    });
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/but you are logged in as/);
    await waitFor('the deposit credited', async () => {
      const a = json<{ balance: string }>(await gpumesh('account', '--json'));
      return BigInt(a.balance) === 40n * ONE_TOKEN ? true : undefined;
    });

    // submit a matmul of two .npy files and wait for it.
    const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i) * 2);
    const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i) / 3);
    await writeFile(join(dir, 'a.npy'), toNpy(tensor('a', a, [M, K])));
    await writeFile(join(dir, 'b.npy'), toNpy(tensor('b', b, [K, N])));
    const submitted = await gpumesh(
      'jobs',
      'submit',
      '--matmul',
      join(dir, 'a.npy'),
      join(dir, 'b.npy'),
      '--max-price',
      '1000',
      '--wait',
      '--timeout',
      '60',
      '--json',
    );
    printed.push(submitted.stdout, submitted.stderr);
    const job = json<{ id: string; state: string; charged: string }>(submitted);
    expect(job.state).toBe('COMPLETED');

    // result -o out.npy: a .npy NumPy would load, equal to a float64 reference.
    const out = join(dir, 'out.npy');
    const result = await gpumesh('jobs', 'result', job.id, '-o', out);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`wrote c float32[${M},${N}] to ${out}`);
    const npy = decodeNpy(await readFile(out));
    expect(npy.dtype).toBe('float32');
    expect(npy.shape).toEqual([M, N]);
    const values = new Float32Array(
      npy.data.buffer.slice(npy.data.byteOffset, npy.data.byteOffset + npy.data.byteLength),
    );
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let x = 0; x < K; x++) s += a[i * K + x] * b[x * N + j];
        expect(Math.abs(values[i * N + j] - s)).toBeLessThan(1e-4);
      }
    // Without -o the result is JSON.
    const resultJson = json<{ jobId: string; result: { outputs: { name: string }[] } }>(
      await gpumesh('jobs', 'result', job.id),
    );
    expect(resultJson.jobId).toBe(job.id);

    // watch replays the events to the end (exit 0: it completed); list shows the job.
    const watch = await gpumesh('jobs', 'watch', job.id, '--json');
    expect(watch.code, watch.stderr).toBe(0);
    const events = watch.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { toState: string | null });
    expect(events.at(-1)?.toState).toBe('COMPLETED');
    const list = json<{ items: { id: string }[] }>(await gpumesh('jobs', 'list', '--json'));
    expect(list.items.map((j) => j.id)).toContain(job.id);
    const text = await gpumesh('jobs', 'list', '--state', 'COMPLETED');
    expect(text.stdout).toContain(job.id);

    // tensors: a .npy stored once is listed with its expiry, then deleted; the same bytes, the same ref.
    const uploaded = await gpumesh('tensors', 'upload', join(dir, 'a.npy'));
    expect(uploaded.code, uploaded.stderr).toBe(0);
    const ref = uploaded.stdout.trim();
    expect(ref).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(json<{ ref: string }>(await gpumesh('tensors', 'upload', join(dir, 'a.npy'), '--json')).ref).toBe(
      ref,
    );
    const listed = await gpumesh('tensors', 'list');
    expect(listed.stdout).toMatch(
      new RegExp(`${ref}  float32\\[${M},${K}\\]  ${M * K * 4} bytes  upload  expires `),
    );
    const removed = await gpumesh('tensors', 'rm', ref);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain(`deleted ${ref}`);
    const page = json<{ items: { ref: string }[] }>(await gpumesh('tensors', 'list', '--json'));
    expect(page.items.map((t) => t.ref)).not.toContain(ref);
    const again = await gpumesh('tensors', 'rm', ref);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/TENSOR_NOT_FOUND|no tensor/);

    // Larger .npy files: --matmul uploads them (streamed from disk) and names them by ref; the output
    // (by ref) and the stored inputs come back as files equal byte for byte.
    const [bigM, bigK, bigN] = [300, 1000, 40]; // a: 1.2 MB, over the 1 MiB sent inline
    const bigA = Float32Array.from({ length: bigM * bigK }, (_, i) => Math.sin(i / 7));
    const bigB = Float32Array.from({ length: bigK * bigN }, (_, i) => Math.cos(i / 5));
    await writeFile(join(dir, 'big-a.npy'), toNpy(tensor('a', bigA, [bigM, bigK])));
    await writeFile(join(dir, 'big-b.npy'), toNpy(tensor('b', bigB, [bigK, bigN])));
    const bigJob = json<{ id: string; state: string; charged: string; written: { bytes: number } }>(
      await gpumesh(
        ...['jobs', 'submit', '--matmul', join(dir, 'big-a.npy'), join(dir, 'big-b.npy')],
        ...['--max-price', '1000', '--wait', '--timeout', '60', '-o', join(dir, 'big-c.npy'), '--json'],
      ),
    );
    expect(bigJob.state).toBe('COMPLETED');
    const bigC = decodeNpy(await readFile(join(dir, 'big-c.npy')));
    expect(bigC.shape).toEqual([bigM, bigN]);
    const cValues = new Float32Array(
      bigC.data.buffer.slice(bigC.data.byteOffset, bigC.data.byteOffset + bigC.data.byteLength),
    );
    for (const [i, j] of [
      [0, 0],
      [bigM - 1, bigN - 1],
      [123, 17],
    ]) {
      let s = 0;
      for (let x = 0; x < bigK; x++) s += bigA[i * bigK + x] * bigB[x * bigN + j];
      expect(Math.abs(cValues[i * bigN + j] - s)).toBeLessThan(1e-3);
    }
    // --matmul stored both inputs: their refs (the sha256 of their element bytes) are listed
    const bigRef = `sha256:${createHash('sha256').update(new Uint8Array(bigA.buffer)).digest('hex')}`;
    const listedBig = json<{ items: { ref: string; bytes: number }[] }>(
      await gpumesh('tensors', 'list', '--json'),
    );
    expect(listedBig.items.find((t) => t.ref === bigRef)?.bytes).toBe(bigM * bigK * 4);
    const got = await gpumesh('tensors', 'get', bigRef, '-o', join(dir, 'got-a.npy'));
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout).toBe(`wrote ${bigRef} float32[${bigM},${bigK}] to ${join(dir, 'got-a.npy')}\n`);
    expect((await readFile(join(dir, 'got-a.npy'))).equals(await readFile(join(dir, 'big-a.npy')))).toBe(
      true,
    );
    const missing = await gpumesh('tensors', 'get', `sha256:${'0'.repeat(64)}`, '-o', join(dir, 'none.npy'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/TENSOR_NOT_FOUND/);
    await expect(stat(join(dir, 'none.npy'))).rejects.toThrow(/ENOENT/);

    // account: what was charged, and what remains under the cap.
    const account = json<{
      balance: string;
      reserved: string;
      charged: string;
      cap: string;
      remaining: string;
    }>(await gpumesh('account', '--json'));
    const charged = BigInt(job.charged) + BigInt(bigJob.charged);
    expect(BigInt(account.charged)).toBe(charged);
    expect(BigInt(job.charged)).toBeGreaterThan(0n);
    expect(BigInt(bigJob.charged)).toBeGreaterThan(0n);
    expect(BigInt(account.balance)).toBe(40n * ONE_TOKEN - charged);
    expect(account.cap).toBe((45n * ONE_TOKEN).toString()); // 5 signed at login + 40 at the deposit
    expect(BigInt(account.remaining)).toBe(45n * ONE_TOKEN - charged);
    const accountText = await gpumesh('account');
    expect(accountText.stdout).toMatch(/^balance\s+39\.\d+/m);

    // withdraw: request the unlock, refuse while it is pending, withdraw after the delay.
    const escrow = attachJobEscrow(addresses.escrow, chain.provider);
    const requested = json<{ step: string; unlockDelaySeconds: number }>(
      await gpumesh('withdraw', '10', '--key-env', 'DEV_WALLET_KEY', '--json'),
    );
    expect(requested.step).toBe('unlock-requested');
    expect(await escrow.unlockAt(wallet.address)).toBeGreaterThan(0n);
    const early = await gpumesh('withdraw', '10', '--key-env', 'DEV_WALLET_KEY');
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/your unlock is pending: withdrawable from/);
    await increaseTime(chain, requested.unlockDelaySeconds + 1);
    const token = attachComputeToken(addresses.token, chain.provider);
    const before = await token.balanceOf(wallet.address);
    const withdrawn = await gpumesh('withdraw', '10', '--key-env', 'DEV_WALLET_KEY');
    printed.push(withdrawn.stdout, withdrawn.stderr);
    expect(withdrawn.code, withdrawn.stderr).toBe(0);
    expect(withdrawn.stdout).toContain('withdrew 10');
    expect(await token.balanceOf(wallet.address)).toBe(before + 10n * ONE_TOKEN);

    for (const secret of secrets) for (const text of printed) expect(text).not.toContain(secret);
  }, 180_000);
});
