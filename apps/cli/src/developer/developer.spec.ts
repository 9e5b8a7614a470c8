// The developer commands' argument handling, credentials and wallets, without a coordinator: usage
// errors exit 2 with the usage, failures exit 1, and nothing reaches the network before the command
// line is right (test/e2e/developer-cli.test.ts runs them against a coordinator).
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet, encryptKeystoreJson } from 'ethers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../io.js';
import { UsageError, loadWallet } from './command.js';
import { credentialsPath, loadCredentials, resolveTarget, saveCredentials } from './credentials.js';
import { runAccountCli, runDepositCli, runWithdrawCli } from './funds.js';
import { runJobsCli } from './jobs.js';
import { runLoginCli } from './login.js';

const KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';

function capture(): CliIo & { outs: string[]; errs: string[] } {
  const outs: string[] = [];
  const errs: string[] = [];
  return { outs, errs, out: (l) => outs.push(l), err: (l) => errs.push(l) };
}

let dir: string;
let env: NodeJS.ProcessEnv;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gpumesh-dev-spec-'));
  // Nothing listens on port 9: a command that reached the network would fail with exit 1, not 2.
  env = { HOME: dir, GPUMESH_CONFIG_DIR: join(dir, 'cfg'), GPUMESH_COORDINATOR: 'http://127.0.0.1:9', KEY };
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('developer command lines', () => {
  it.each<[string, (argv: string[], io: CliIo, env: NodeJS.ProcessEnv) => Promise<number>, string[], RegExp]>(
    [
      ['login', runLoginCli, [], /a wallet is needed/],
      ['login', runLoginCli, ['--key-env', 'KEY', '--keystore', 'k.json'], /not both/],
      ['login', runLoginCli, ['--key-env', 'MISSING'], /MISSING is not set/],
      ['login', runLoginCli, ['--key-env', 'KEY', 'extra'], /unexpected argument "extra"/],
      ['login', runLoginCli, ['--key-env', 'KEY', '--coordinator', 'not a url'], /--coordinator/],
      ['jobs', runJobsCli, [], /expected a subcommand/],
      ['jobs', runJobsCli, ['frob'], /unknown subcommand "frob"/],
      ['jobs', runJobsCli, ['submit'], /expected one spec file/],
      ['jobs', runJobsCli, ['submit', '--matmul', 'a.npy'], /two \.npy files/],
      ['jobs', runJobsCli, ['submit', '--matmul', 'a.npy', 'b.npy'], /needs --max-price/],
      ['jobs', runJobsCli, ['submit', 'spec.json', '--timeout', '5'], /go with --wait/],
      ['jobs', runJobsCli, ['submit', 'missing.json'], /cannot read missing\.json/],
      ['jobs', runJobsCli, ['watch'], /expected one job id/],
      ['jobs', runJobsCli, ['watch', 'id', '--state', 'QUEUED'], /jobs watch takes no --state/],
      ['jobs', runJobsCli, ['list', '--limit', '0'], /--limit: expected a positive whole number/],
      ['jobs', runJobsCli, ['list', '--kind', 'render'], /--kind/],
      ['jobs', runJobsCli, ['result', 'id', '--name', 'c'], /--name names the output -o writes/],
      ['jobs', runJobsCli, ['cancel', 'a', 'b'], /expected one job id/],
      ['account', runAccountCli, ['extra'], /unexpected argument/],
      ['deposit', runDepositCli, ['--key-env', 'KEY'], /expected the amount of tokens to deposit/],
      ['deposit', runDepositCli, ['1.1234567', '--key-env', 'KEY'], /not a token amount/],
      ['deposit', runDepositCli, ['0', '--key-env', 'KEY'], /more than 0/],
      ['withdraw', runWithdrawCli, ['--cancel', '3', '--key-env', 'KEY'], /--cancel takes no amount/],
      ['withdraw', runWithdrawCli, ['3', '--wat'], /Unknown option/],
    ],
  )('%s %j is a usage error', async (_name, run, argv, message) => {
    const io = capture();
    expect(await run(argv, io, env)).toBe(2);
    expect(io.errs.join('\n')).toMatch(message);
    expect(io.errs.join('\n')).toContain('usage: gpumesh');
    expect(io.outs).toEqual([]);
  });

  it('reads a spec file and refuses one that is not a job spec', async () => {
    await writeFile(join(dir, 'bad.json'), '[1, 2]');
    await writeFile(join(dir, 'broken.json'), '{');
    const io = capture();
    expect(await runJobsCli(['submit', join(dir, 'bad.json')], io, env)).toBe(2);
    expect(await runJobsCli(['submit', join(dir, 'broken.json')], io, env)).toBe(2);
    expect(io.errs.join('\n')).toMatch(/is not a job spec[\s\S]*is not JSON/);
  });

  it('fails with exit 1 when not logged in, and when the coordinator cannot be reached', async () => {
    const io = capture();
    expect(await runAccountCli([], io, env)).toBe(1);
    expect(io.errs[0]).toMatch(/not logged in to http:\/\/127\.0\.0\.1:9: run gpumesh login/);
    expect(await runLoginCli(['--key-env', 'KEY'], io, env)).toBe(1);
    expect(io.errs[1]).toMatch(/cannot reach the coordinator at http:\/\/127\.0\.0\.1:9/);
    expect(io.errs.join('\n')).not.toContain(KEY.slice(2));
  });

  it('prints every --help with exit 0', async () => {
    for (const run of [runLoginCli, runAccountCli, runDepositCli, runWithdrawCli]) {
      const io = capture();
      expect(await run(['--help'], io, env)).toBe(0);
      expect(io.outs[0]).toMatch(/^usage: gpumesh /);
    }
    const io = capture();
    expect(await runJobsCli(['submit', '--help'], io, env)).toBe(0);
    expect(io.outs[0]).toMatch(/^usage: gpumesh jobs/);
  });
});

describe('credentials', () => {
  it('are stored 0600 and resolved: flag, then environment, then the stored login', async () => {
    expect(credentialsPath({ HOME: '/h' })).toBe('/h/.config/gpumesh/credentials.json');
    expect(credentialsPath({ HOME: '/h', XDG_CONFIG_HOME: '/x' })).toBe('/x/gpumesh/credentials.json');
    expect(await loadCredentials(env)).toBeNull();
    const path = await saveCredentials(env, {
      coordinator: 'http://stored:8080',
      apiKey: 'gmk_secret',
      address: '0x0',
      accountId: 'a',
      keyPrefix: 'gmk_s',
      createdAt: new Date(0).toISOString(),
    });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ apiKey: 'gmk_secret' });

    const { GPUMESH_COORDINATOR: _c, ...plain } = env;
    expect(await resolveTarget(plain, undefined)).toMatchObject({
      coordinator: 'http://stored:8080',
      apiKey: 'gmk_secret',
    });
    // Another coordinator does not get the stored key; the environment's key wins everywhere.
    expect(await resolveTarget(plain, 'http://other:1/')).toMatchObject({
      coordinator: 'http://other:1',
      apiKey: null,
    });
    expect(await resolveTarget({ ...plain, GPUMESH_API_KEY: 'gmk_env' }, 'http://other:1')).toMatchObject({
      apiKey: 'gmk_env',
    });
    await writeFile(path, 'nonsense');
    await expect(loadCredentials(env)).rejects.toThrow(/not a gpumesh credentials file/);
  });
});

describe('wallets', () => {
  it('come from an environment variable or a keystore with its passphrase', async () => {
    expect((await loadWallet({ 'key-env': 'KEY' }, env)).address).toBe(new Wallet(KEY).address);
    await expect(loadWallet({ 'key-env': 'BAD' }, { BAD: 'nope' })).rejects.toThrow(UsageError);
    const keystore = join(dir, 'key.json');
    const w = new Wallet(KEY);
    // A cheap scrypt: the format is the standard one, only faster to open.
    await writeFile(
      keystore,
      await encryptKeystoreJson({ address: w.address, privateKey: KEY }, 'pass phrase', {
        scrypt: { N: 1 << 10 },
      }),
    );
    const fromFile = await loadWallet({ keystore, 'passphrase-env': 'PASS' }, { PASS: 'pass phrase' });
    expect(fromFile.address).toBe(new Wallet(KEY).address);
    const asked = await loadWallet({ keystore }, {}, async () => 'pass phrase');
    expect(asked.address).toBe(new Wallet(KEY).address);
    await expect(loadWallet({ keystore }, {}, async () => 'wrong')).rejects.toThrow(/wrong passphrase/);
  });
});
