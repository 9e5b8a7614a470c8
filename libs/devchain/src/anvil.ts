// The local anvil chain: the coordinator's `--dev` chain (`npm start`), the tests' and the benchmarks'.
// Dev tooling: no other library imports it (`libs-not-devchain` in .dependency-cruiser.mjs), so the
// packed agent never carries it. The chain's well-known keys stay in libs/rewards (ANVIL_DEV_KEYS):
// the agent's `dev-fund` command needs them, not the launcher.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

import { Wallet } from 'ethers';

import { ANVIL_DEV_KEYS } from '@gpumesh/rewards';

export interface DevAccount {
  readonly address: string;
  readonly privateKey: string;
}

export interface AnvilOptions {
  /** TCP port; 0 or absent picks a free one. */
  readonly port?: number;
  readonly chainId?: number;
  /** Seconds between blocks; absent mines a block per transaction. */
  readonly blockTime?: number;
  /** Milliseconds to wait for the node to answer (default 15,000). */
  readonly readyTimeoutMs?: number;
  readonly extraArgs?: readonly string[];
}

export interface AnvilInstance {
  readonly rpcUrl: string;
  readonly port: number;
  readonly chainId: number;
  readonly accounts: readonly DevAccount[];
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The anvil executable shipped by the npm package for this platform. */
export function anvilBinaryPath(): string {
  const require = createRequire(import.meta.url);
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const platformPackage = `@foundry-rs/anvil-${process.platform}-${arch}`;
  const binary = join(
    dirname(require.resolve(`${platformPackage}/package.json`)),
    'bin',
    process.platform === 'win32' ? 'anvil.exe' : 'anvil',
  );
  if (!existsSync(binary)) throw new Error(`anvil binary not found at ${binary}`);
  return binary;
}

/** Whether a JSON-RPC node answers `eth_chainId` at `rpcUrl`. */
export async function rpcReady(rpcUrl: string): Promise<boolean> {
  try {
    const res = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
    });
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Shell that runs anvil ("$0" "$@") and stops it when the process that started it is gone ($PPID no
 * longer exists, checked every half second) or when the shell itself is told to stop.
 */
const WATCHDOG = [
  'trap \'kill "$a" 2>/dev/null; wait "$a"; exit 143\' TERM INT HUP',
  '"$0" "$@" & a=$!',
  'while kill -0 "$PPID" 2>/dev/null && kill -0 "$a" 2>/dev/null; do sleep 0.5; done',
  'kill "$a" 2>/dev/null',
  'wait "$a"',
].join('\n');

/**
 * Starts anvil in a process group of its own, so a Ctrl-C at the terminal (SIGINT to the whole
 * foreground group) reaches the coordinator but not its chain: the coordinator settles what it has in
 * flight, then stops anvil itself (`stop()`). Anvil handles SIGINT itself, so ignoring the signal is
 * not enough. Out of our group, anvil would outlive a `kill -9` of this process: a watchdog shell
 * beside it stops it within a second. On Windows (no process groups, no sh) it is a plain child.
 */
function spawnInOwnGroup(binary: string, args: readonly string[]): ChildProcess {
  const stdio: ['ignore', 'ignore', 'pipe'] = ['ignore', 'ignore', 'pipe'];
  if (process.platform === 'win32') return spawn(binary, args, { stdio });
  return spawn('/bin/sh', ['-c', WATCHDOG, binary, ...args], { stdio, detached: true });
}

/** Signals anvil and its watchdog (their whole group); a no-op once they are gone. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (process.platform === 'win32' || child.pid === undefined) child.kill(signal);
    else process.kill(-child.pid, signal);
  } catch {
    // already gone (ESRCH)
  }
}

/** Starts a local anvil node (from the npm package) and waits until it answers JSON-RPC. */
export async function startAnvil(options: AnvilOptions = {}): Promise<AnvilInstance> {
  const port = options.port && options.port > 0 ? options.port : await freePort();
  const chainId = options.chainId ?? 31337;
  const args = ['--host', '127.0.0.1', '--port', String(port), '--chain-id', String(chainId), '--silent'];
  if (options.blockTime !== undefined) args.push('--block-time', String(options.blockTime));
  args.push(...(options.extraArgs ?? []));
  const child = spawnInOwnGroup(anvilBinaryPath(), args);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killOnExit = (): void => {
    signalGroup(child, 'SIGKILL');
  };
  process.once('exit', killOnExit);

  const rpcUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 15_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`anvil exited with ${child.exitCode}: ${stderr}`);
    if (await rpcReady(rpcUrl)) break;
    if (Date.now() > deadline) {
      signalGroup(child, 'SIGKILL');
      throw new Error(`anvil did not answer on ${rpcUrl}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const accounts = ANVIL_DEV_KEYS.map((privateKey) => ({
    address: new Wallet(privateKey).address,
    privateKey,
  }));
  return {
    rpcUrl,
    port,
    chainId,
    accounts,
    async stop(): Promise<void> {
      process.removeListener('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        signalGroup(child, 'SIGTERM');
        await exited;
      }
    },
  };
}
