import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InstanceLockError, acquireInstanceLock, processAlive } from './instance-lock.js';

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  const pid = Number(child.stdout.toString());
  expect(processAlive(pid)).toBe(false);
  return pid;
}

describe('single-instance lock', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpumesh-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a second owner while the first lives, and frees on release', async () => {
    const path = join(dir, 'agent.lock');
    const first = await acquireInstanceLock(path);
    expect((await readFile(path, 'utf8')).trim()).toBe(String(process.pid));
    // Another live process (our parent) trying the same lock.
    const other = process.ppid;
    const err = await acquireInstanceLock(path, other).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InstanceLockError);
    expect((err as InstanceLockError).code).toBe('AGENT_ALREADY_RUNNING');
    expect((err as Error).message).toMatch(new RegExp(`another gpumesh-agent \\(pid ${process.pid}\\)`));
    await first.release();
    const again = await acquireInstanceLock(path, other);
    expect((await readFile(path, 'utf8')).trim()).toBe(String(other));
    await again.release();
  });

  it('takes over a stale lock left by a dead process', async () => {
    const path = join(dir, 'agent.lock');
    await writeFile(path, `${deadPid()}\n`);
    const lock = await acquireInstanceLock(path);
    expect((await readFile(path, 'utf8')).trim()).toBe(String(process.pid));
    await lock.release();
    await writeFile(path, 'garbage');
    await (await acquireInstanceLock(path)).release();
  });
});
