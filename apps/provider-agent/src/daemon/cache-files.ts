import { randomBytes } from 'node:crypto';
import { open, rename, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { effectiveCacheBudget } from './cache-index.js';

/** Where a cache says what it did: each hit, miss and eviction at debug, trouble at warn. */
export interface CacheLogger {
  debug(context: Record<string, unknown>, message: string): void;
  warn(context: Record<string, unknown>, message: string): void;
}

/** Temporary files of writes in progress in a cache directory (removed when the cache opens: a crash left them). */
export const TEMP_PREFIX = '.tmp-';

/**
 * The budget a cache in `dir` runs with: `configuredBytes`, lowered to what it holds plus half the
 * free disk space. `reservedBytes` of that space are promised to another cache on the same disk (the
 * room it may still fill), so two caches opened together do not both count on the same free half.
 */
export async function budgetForDisk(options: {
  dir: string;
  configuredBytes: number;
  heldBytes: number;
  reservedBytes?: number;
}): Promise<{ budgetBytes: number; diskFreeBytes: number }> {
  const free = await statfs(options.dir).then(
    (s) => s.bavail * s.bsize,
    () => Number.MAX_SAFE_INTEGER,
  );
  const diskFreeBytes = Math.max(0, free - (options.reservedBytes ?? 0));
  return {
    budgetBytes: effectiveCacheBudget(options.configuredBytes, options.heldBytes, diskFreeBytes),
    diskFreeBytes,
  };
}

/** A file written under a temporary name: `commit` makes it durable under its own, `abandon` removes it. */
export interface TemporaryFile {
  commit(): Promise<void>;
  abandon(): Promise<void>;
}

/**
 * Writes `bytes` to a temporary file in `dir` and resolves once they are written (`bytes` is no
 * longer needed then). Its commit makes them `dir/name`: fsync, rename, fsync of the directory. A
 * crash before the commit ends leaves only the temporary file (removed at open).
 */
export async function writeTemporary(
  dir: string,
  name: string,
  bytes: Uint8Array | string,
): Promise<TemporaryFile> {
  const tmp = join(dir, `${TEMP_PREFIX}${name}-${randomBytes(4).toString('hex')}`);
  const handle = await open(tmp, 'wx', 0o600);
  const abandon = async (): Promise<void> => {
    await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
  };
  try {
    await handle.writeFile(bytes);
  } catch (err) {
    await abandon();
    throw err;
  }
  return {
    abandon,
    commit: async () => {
      try {
        await handle.sync();
        await handle.close();
        await rename(tmp, join(dir, name));
      } catch (err) {
        await abandon();
        throw err;
      }
      await syncDirectory(dir);
    },
  };
}

/** Makes a rename in `dir` durable (best effort: not every platform can sync a directory). */
export async function syncDirectory(dir: string): Promise<void> {
  const dirHandle = await open(dir, 'r').catch(() => undefined);
  if (!dirHandle) return;
  try {
    await dirHandle.sync();
  } catch {
    // not supported here
  } finally {
    await dirHandle.close();
  }
}
