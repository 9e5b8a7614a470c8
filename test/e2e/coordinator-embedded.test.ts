import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEther } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ONE_TOKEN } from '@gpumesh/rewards';
import { DEV_FUND_ETH } from '../../apps/provider-agent/src/cli/chain-commands.js';
import { api } from '../helpers/coordinator.js';
import { AGENT_MAIN, runCli, type CliRun } from '../helpers/processes.js';
import { matmulSpec } from '../helpers/specs.js';

const MAIN = join(process.cwd(), 'dist/apps/coordinator/src/main.js');

/** Runs the agent CLI (`gpumesh-agent`) from dist/ to its end. */
function agentCli(args: string[]): Promise<CliRun> {
  return runCli(AGENT_MAIN, args, { ...process.env, GPUMESH_AGENT_PASSPHRASE: 'e2e-dev-fund-passphrase' });
}

interface Started {
  child: ChildProcessWithoutNullStreams;
  url: string;
  devKey: string;
  adminKey: string;
  output: () => string;
}

/**
 * Starts the real coordinator process on the embedded defaults (no DATABASE_URL, no REDIS_URL), as
 * `npm start` does. `derivedPrefix`: no QUEUE_PREFIX either, so the queue prefix comes from the
 * marketplace's database (else a unique one keeps this test off other stacks' queues).
 */
async function startProcess(
  dataDir: string,
  options: { derivedPrefix?: boolean; agents?: number; logLevel?: string } = {},
): Promise<Started> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LOG_LEVEL: options.logLevel ?? 'warn',
    LOG_FORMAT: 'json',
    QUEUE_PREFIX: `e2e${Date.now()}`,
  };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  if (options.derivedPrefix) delete env.QUEUE_PREFIX;
  const args = [MAIN, '--dev', '--port', '0', '--data-dir', dataDir];
  if (options.agents !== undefined) args.push('--agents', String(options.agents));
  const child = spawn(process.execPath, args, { env });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    // About 35 s on a busy 2-core machine (deploy, two local agents, their capacity probes).
    const timer = setTimeout(() => reject(new Error(`not ready in 120 s:\n${out}`)), 120_000);
    const check = (): void => {
      if (out.includes('gpumesh ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}:\n${out}`));
    });
  });
  const url = /API\s+(http:\/\/\S+)\/v1/.exec(out)?.[1];
  const devKey = /dev key\s+(gmk_\S+)/.exec(out)?.[1];
  const adminKey = /admin key\s+(gmk_\S+)/.exec(out)?.[1];
  if (!url || !devKey || !adminKey) throw new Error(`could not read the banner:\n${out}`);
  return { child, url, devKey, adminKey, output: () => out };
}

async function stopProcess(started: Started): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => started.child.once('exit', (code) => resolve(code)));
  started.child.kill('SIGINT');
  return exited;
}

describe('e2e: the coordinator process on embedded defaults', () => {
  let dataDir: string;
  beforeAll(async () => {
    if (!existsSync(MAIN) || !existsSync(AGENT_MAIN))
      throw new Error('run `npm run build` first (npm test does)');
    dataDir = await mkdtemp(join(tmpdir(), 'gpumesh-e2e-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('starts, prints the banner, takes a job, stops on Ctrl-C, keeps the job across a restart, runs a burst of jobs, and funds a new agent from the dev faucet', async () => {
    const first = await startProcess(dataDir);
    expect(first.output()).toContain('/docs');
    const health = await api<{ status: string }>(first.url, 'GET', '/health');
    expect(health.body.status).toBe('ok');
    const job = await api<{ id: string; state: string }>(first.url, 'POST', '/v1/jobs', {
      key: first.devKey,
      body: matmulSpec(8, 8, 8, '2'),
    });
    expect(job.status).toBe(201);
    const account = await api<{ balance: string; reserved: string }>(first.url, 'GET', '/v1/account', {
      key: first.devKey,
    });
    // The 2 local agents may already have run it: then the reservation is spent, not held.
    const credits = BigInt(/([0-9]+) dev credits/.exec(first.output())?.[1] ?? '0');
    expect(BigInt(account.body.balance)).toBeLessThan(credits);
    expect(['0', '2']).toContain(account.body.reserved);
    // Its own watcher checks every root posted, as the dev chain's guardian (not the settler).
    expect(first.output()).toMatch(
      /watcher {4}gpumesh watch checks every root posted .*guardian 0x[0-9a-fA-F]{40}/,
    );
    const until = Date.now() + 20_000;
    while (!/watch {6}watching 0x/.test(first.output()) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 200));
    expect(first.output()).toMatch(/watch {6}watching 0x[0-9a-fA-F]{40} on .* vetoes as guardian 0x/);
    expect(await stopProcess(first)).toBe(0);

    const second = await startProcess(dataDir);
    try {
      expect(second.devKey, `first run:\n${first.output()}\nsecond run:\n${second.output()}`).toBe(
        first.devKey,
      ); // same dev keys after a restart
      const again = await api<{ id: string }>(second.url, 'GET', `/v1/jobs/${job.body.id}`, {
        key: second.devKey,
      });
      expect(again.status).toBe(200);
      expect(again.body.id).toBe(job.body.id);

      // A burst of jobs at once through the embedded database: its one session serves every pooled
      // connection, so statements there stay unnamed (named ones collided: 9 of 60 completed).
      const burst = await Promise.all(
        Array.from({ length: 30 }, () =>
          api<{ id: string }>(second.url, 'POST', '/v1/jobs', {
            key: second.devKey,
            body: matmulSpec(4, 4, 4, '2'),
          }),
        ),
      );
      expect(burst.map((r) => r.status)).toEqual(burst.map(() => 201));
      const states = async (): Promise<string[]> =>
        Promise.all(
          burst.map(async (r) => {
            const got = await api<{ state: string }>(second.url, 'GET', `/v1/jobs/${r.body.id}`, {
              key: second.devKey,
            });
            return `${got.status} ${got.body.state}`;
          }),
        );
      let seen = await states();
      for (
        const until = Date.now() + 60_000;
        Date.now() < until && seen.some((s) => s !== '200 COMPLETED');
      ) {
        await new Promise((r) => setTimeout(r, 1_000));
        seen = await states();
      }
      expect(seen, second.output()).toEqual(burst.map(() => '200 COMPLETED'));

      // A GPU owner trying stake and claim on the dev chain: a fresh agent wallet gets gas and tokens
      // from the dev faucet with one command.
      const agentDir = join(dataDir, 'new-agent');
      const init = await agentCli([
        'init',
        '--coordinator',
        second.url,
        '--light-kdf',
        '--json',
        '--data-dir',
        agentDir,
      ]);
      expect(init.code, init.stderr).toBe(0);
      const funded = await agentCli(['dev-fund', '--tokens', '250', '--json', '--data-dir', agentDir]);
      expect(funded.code, funded.stderr).toBe(0);
      const figures = JSON.parse(funded.stdout.slice(funded.stdout.lastIndexOf('\n{') + 1)) as {
        address: string;
        eth: string;
        tokens: string;
        txHashes: string[];
      };
      expect(figures.eth).toBe(parseEther(DEV_FUND_ETH).toString());
      expect(figures.tokens).toBe(String(250n * ONE_TOKEN));
      expect(figures.txHashes).toHaveLength(2);
    } finally {
      expect(await stopProcess(second)).toBe(0);
    }
    // Two full starts (PGlite, anvil, 2 agents) on a loaded 2-core CI machine take well over a minute.
  }, 300_000);
  it('runs two marketplaces side by side on one Redis: each takes only its own work', async () => {
    // Two `npm start` stacks with their own data directories and the machine's one Redis, neither
    // given a QUEUE_PREFIX: each derives its prefix from its database, so neither takes the other's
    // dispatch jobs (before, the second stack's jobs stayed QUEUED until their deadline).
    const dirs = await Promise.all([1, 2].map((n) => mkdtemp(join(tmpdir(), `gpumesh-e2e-stack${n}-`))));
    const stacks: Started[] = [];
    try {
      // Started side by side (a start is mostly waiting: initdb, the deploy's blocks, the agent's probe).
      const started = await Promise.allSettled(
        dirs.map((dir) => startProcess(dir, { derivedPrefix: true, agents: 1, logLevel: 'info' })),
      );
      for (const s of started) if (s.status === 'fulfilled') stacks.push(s.value);
      for (const s of started) if (s.status === 'rejected') throw s.reason;
      // Each claimed a prefix of its own marketplace id.
      const prefixes = stacks.map((s) => /"queuePrefix":"(gm-[0-9a-f]+)"/.exec(s.output())?.[1]);
      expect(prefixes.every((p) => p !== undefined)).toBe(true);
      expect(prefixes[0]).not.toBe(prefixes[1]);
      const jobs = await Promise.all(
        stacks.map(async (s) => {
          const res = await api<{ id: string }>(s.url, 'POST', '/v1/jobs', {
            key: s.devKey,
            body: matmulSpec(16, 16, 16, '2'),
          });
          expect(res.status, JSON.stringify(res.body)).toBe(201);
          return res.body.id;
        }),
      );
      for (const [i, s] of stacks.entries()) {
        const until = Date.now() + 90_000;
        let state = '';
        while (state !== 'COMPLETED' && Date.now() < until) {
          const got = await api<{ state: string }>(s.url, 'GET', `/v1/jobs/${jobs[i]}`, { key: s.devKey });
          state = got.body.state;
          if (state !== 'COMPLETED') await new Promise((r) => setTimeout(r, 500));
        }
        expect(state, `stack ${i + 1}:\n${s.output()}`).toBe('COMPLETED');
        // The other marketplace has never heard of it.
        const other = stacks[1 - i];
        expect((await api(other.url, 'GET', `/v1/jobs/${jobs[i]}`, { key: other.devKey })).status).toBe(404);
      }
    } finally {
      for (const s of stacks) await stopProcess(s);
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
