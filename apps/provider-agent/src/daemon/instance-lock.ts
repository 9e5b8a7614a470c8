// One agent per data directory: two daemons on one keystore would advertise the same peer id, race
// on the journal and both answer offers. The lock is a file holding the owner's pid; a lock left by
// a process that is gone (kill -9, power loss) is taken over.
import { open, readFile, rename, unlink, writeFile } from 'node:fs/promises';

export class InstanceLockError extends Error {
  readonly code = 'AGENT_ALREADY_RUNNING';
  constructor(
    readonly lockPath: string,
    readonly pid: number,
  ) {
    super(
      `another gpumesh-agent (pid ${pid}) is already running on this data directory (lock ${lockPath}); ` +
        'stop it first, or use another --data-dir for a second agent',
    );
    this.name = 'InstanceLockError';
  }
}

export interface InstanceLock {
  readonly path: string;
  /** Removes the lock file if this process still owns it. */
  release(): Promise<void>;
}

/** Whether a process with this pid exists (EPERM: it does, under another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(path: string): Promise<number | null> {
  try {
    const pid = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    return Number.isInteger(pid) ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Takes the lock at `path` for this process, or throws `InstanceLockError` naming the live owner. A
 * stale lock (its pid gone, or unreadable) is replaced.
 */
export async function acquireInstanceLock(path: string, pid = process.pid): Promise<InstanceLock> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(`${pid}\n`);
      await handle.close();
      return lockOf(path, pid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = await readOwner(path);
    if (owner !== null && owner !== pid && processAlive(owner)) throw new InstanceLockError(path, owner);
    // Stale: replace it atomically, then check that this process won any race with another taker.
    const tmp = `${path}.${pid}.tmp`;
    await writeFile(tmp, `${pid}\n`, { mode: 0o600 });
    await rename(tmp, path);
    if ((await readOwner(path)) === pid) return lockOf(path, pid);
  }
  const owner = await readOwner(path);
  throw new InstanceLockError(path, owner ?? -1);
}

function lockOf(path: string, pid: number): InstanceLock {
  let released = false;
  return {
    path,
    release: async () => {
      if (released) return;
      released = true;
      if ((await readOwner(path)) === pid) await unlink(path).catch(() => undefined);
    },
  };
}
