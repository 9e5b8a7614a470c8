import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { runDevPayoutDemo } from './dev-payout.js';

/** The passphrase of the throwaway keystores of `npm start`'s local agents (dev only). */
const DEV_AGENT_PASSPHRASE = 'gpumesh-dev-agent-passphrase';

export interface LocalAgent {
  index: number;
  peerId: string;
  /** The agent's wallet: where its payouts go, and whose stake a slash takes. */
  address: string;
  backend: string;
  dir: string;
  process: ChildProcess;
}

/**
 * The agent's built entry point, found through its workspace package (@gpumesh/agent, linked into
 * node_modules by npm workspaces): its manifest's `gpumesh-agent` bin. Resolving a path imports
 * nothing of the agent (the coordinator never imports it: agent-not-coordinator).
 */
function agentMainPath(): string | null {
  let manifest: string;
  try {
    manifest = createRequire(import.meta.url).resolve('@gpumesh/agent/package.json');
  } catch {
    return null; // a coordinator installed without the workspace: no local agents
  }
  const { bin } = JSON.parse(readFileSync(manifest, 'utf8')) as { bin: Record<string, string> };
  return join(dirname(manifest), bin['gpumesh-agent']);
}

const agentMain = agentMainPath() ?? 'gpumesh-agent-not-installed';

function run(args: string[], env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [agentMain, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      signal,
    });
    child.on('error', reject);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`gpumesh-agent ${args[0]} failed:\n${out}`)),
    );
  });
}

/**
 * `npm start --agents N`: N provider agents as child processes (each with its own keystore under
 * <data dir>/agents/<i>), so a newcomer has a working marketplace at once. Resolves when each has
 * printed its ready line. On the local dev chain it then runs the dev payout demo in the background
 * (dev-payout.ts): the agents' wallets are funded and stake, and the first payout is claimed.
 */
export async function startLocalAgents(options: {
  count: number;
  coordinatorUrl: string;
  dataDir: string;
  pricePerUnit?: string;
}): Promise<{ agents: LocalAgent[]; stop: () => Promise<void> }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GPUMESH_AGENT_PASSPHRASE: DEV_AGENT_PASSPHRASE,
    GPUMESH_AGENT_EXIT_WITH_PARENT: '1',
  };
  delete env.DATABASE_URL;
  const agents: LocalAgent[] = [];
  const demo = new AbortController();
  let demoDone: Promise<void> = Promise.resolve();
  const stop = async (): Promise<void> => {
    demo.abort();
    await demoDone;
    await Promise.all(
      agents.map(
        (a) =>
          new Promise<void>((resolve) => {
            if (a.process.exitCode !== null) return resolve();
            a.process.once('exit', () => resolve());
            a.process.kill('SIGINT');
            setTimeout(() => a.process.kill('SIGKILL'), 5_000).unref();
          }),
      ),
    );
  };
  try {
    for (let index = 1; index <= options.count; index++) {
      const dir = join(options.dataDir, 'agents', String(index));
      if (!existsSync(join(dir, 'keystore.json'))) {
        await run(
          [
            'init',
            '--coordinator',
            options.coordinatorUrl,
            '--data-dir',
            dir,
            '--price',
            options.pricePerUnit ?? '1',
            '--light-kdf',
            '--slots',
            '1',
          ],
          env,
        );
      }
      // --coordinator: this coordinator's URL now (its port may differ from the run that set them up).
      const startArgs = [
        'start',
        '--data-dir',
        dir,
        '--log-level',
        'warn',
        '--coordinator',
        options.coordinatorUrl,
      ];
      const child = spawn(process.execPath, [agentMain, ...startArgs], {
        env,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      lowerPriority(child);
      const ready = await new Promise<{ peerId: string; address: string; backend: string }>(
        (resolve, reject) => {
          let out = '';
          const timer = setTimeout(() => reject(new Error(`agent ${index} not ready in 60 s`)), 60_000);
          child.stdout?.on('data', (d: Buffer) => {
            out += d.toString();
            const m = /gpumesh-agent ready: peer (\S+) address (\S+) backend (\S+)/.exec(out);
            if (m) {
              clearTimeout(timer);
              resolve({ peerId: m[1], address: m[2], backend: m[3] });
            }
          });
          child.once('exit', (code) => {
            clearTimeout(timer);
            reject(new Error(`agent ${index} exited with ${code}`));
          });
        },
      );
      agents.push({ index, ...ready, dir, process: child });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  demoDone = runDevPayoutDemo({
    coordinatorUrl: options.coordinatorUrl,
    dataDir: options.dataDir,
    agents,
    runCli: (agent, args) =>
      run([...args, '--data-dir', agent.dir, '--coordinator', options.coordinatorUrl], env, demo.signal),
    signal: demo.signal,
  }).catch((err: unknown) => {
    if (!demo.signal.aborted) process.stderr.write(`  dev payout: ${(err as Error).message.trim()}\n`);
  });
  return { agents, stop };
}

export function agentBinaryAvailable(): boolean {
  return existsSync(agentMain);
}

/**
 * The nice value of local agents: they share the machine with the coordinator, which should answer
 * while they compute (on 2 cores at equal priority, /health/live waited up to 1 s for a core during a
 * 4096² job: docs/tensors.md). Real providers run on machines of their own.
 */
const LOCAL_AGENT_NICE = 10;

/**
 * Puts a local agent below the coordinator, before it starts its executor threads (which inherit the
 * priority of the thread that starts them). Where the OS refuses, the agent keeps the default.
 */
function lowerPriority(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    setPriority(child.pid, LOCAL_AGENT_NICE);
  } catch {
    // not permitted here: equal priority still works, only less responsively
  }
}
