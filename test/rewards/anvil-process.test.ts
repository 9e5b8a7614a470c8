import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterEach, describe, expect, it } from 'vitest';

import { rpcReady } from '@gpumesh/devchain';

import { assertBuilt } from '../helpers/processes.js';

// A process that starts anvil the way the dev coordinator does, prints its RPC address and pid, and on
// SIGINT checks the chain still answers, stops it and exits.
const ANVIL_MODULE = pathToFileURL(join(process.cwd(), 'libs/devchain/dist/anvil.js')).href;
const HOST = `
const { startAnvil, rpcReady } = await import(${JSON.stringify(ANVIL_MODULE)});
const anvil = await startAnvil();
process.once('SIGINT', async () => {
  await new Promise((r) => setTimeout(r, 300));
  console.log('chain answers after SIGINT: ' + (await rpcReady(anvil.rpcUrl)));
  await anvil.stop();
  console.log('stopped');
  process.exit(0);
});
console.log(JSON.stringify({ rpcUrl: anvil.rpcUrl }));
setInterval(() => undefined, 1000);
`;

async function startHost(): Promise<{ child: ChildProcess; rpcUrl: string; output: () => string }> {
  // detached: the host leads its own process group, as `npm start` does in a terminal.
  const child = spawn(process.execPath, ['--input-type=module', '-e', HOST], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const deadline = Date.now() + 20_000;
  while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const line = out.split('\n')[0];
  if (!line) throw new Error('the host did not start anvil');
  return { child, rpcUrl: (JSON.parse(line) as { rpcUrl: string }).rpcUrl, output: () => out };
}

async function gone(rpcUrl: string, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (!(await rpcReady(rpcUrl))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('local anvil process', () => {
  const started: ChildProcess[] = [];
  afterEach(() => {
    for (const child of started.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('outlives a Ctrl-C to its host’s process group until the host stops it', async () => {
    assertBuilt();
    const host = await startHost();
    started.push(host.child);
    expect(await rpcReady(host.rpcUrl)).toBe(true);
    process.kill(-host.child.pid!, 'SIGINT');
    await once(host.child, 'exit');
    expect(host.output()).toContain('chain answers after SIGINT: true');
    expect(host.output()).toContain('stopped');
    expect(await gone(host.rpcUrl, 2_000)).toBe(true);
  }, 40_000);

  it('is stopped by its watchdog when its host is killed with SIGKILL', async () => {
    assertBuilt();
    const host = await startHost();
    started.push(host.child);
    expect(await rpcReady(host.rpcUrl)).toBe(true);
    host.child.kill('SIGKILL');
    await once(host.child, 'exit');
    expect(await gone(host.rpcUrl, 5_000)).toBe(true);
  }, 40_000);
});
