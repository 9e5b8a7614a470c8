import { createHash } from 'node:crypto';
import { mkdir, open, readdir, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import {
  TEMP_PREFIX,
  budgetForDisk,
  writeTemporary,
  type CacheLogger,
  type TemporaryFile,
} from './cache-files.js';
import { CacheIndex, type CacheEntry } from './cache-index.js';

/** Default byte budget of the tensor cache (`tensorCacheBytes` in agent.json). */
export const DEFAULT_TENSOR_CACHE_BYTES = 1024 * 1024 * 1024;

/** File names of entries: the sha256 of their bytes. Anything else in the directory is left alone. */
const ENTRY_NAME = /^[0-9a-f]{64}$/;
const READ_CHUNK_BYTES = 4 * 1024 * 1024;
/** Failed fetches of other jobs a job waits for before it fetches a tensor itself. */
const MAX_SHARED_JOINS = 2;

/** What a job wants: the input's sha256 (from the signed offer) and the byte length its dtype and shape imply. */
export interface WantedTensor {
  readonly sha256: string;
  readonly bytes: number;
}

export interface TensorCacheStats {
  /** The budget in force (the configured one, lowered when the disk is short of space); 0 = off. */
  budgetBytes: number;
  entries: number;
  bytes: number;
  /** Tensors served from the cache (verified against their sha256). */
  hits: number;
  /** Tensors fetched from the coordinator. */
  misses: number;
  /** Tensors another job's fetch in flight brought (no transfer of their own). */
  sharedFetches: number;
  /** Bytes not transferred thanks to hits and shared fetches. */
  bytesSaved: number;
  /** Entries removed to make room. */
  evictions: number;
  /** Entries dropped because their bytes did not hash to their name (or were the wrong length). */
  dropped: number;
  /** Fetched tensors that could not be written (the job still ran with them). */
  writeErrors: number;
}

interface Waiter {
  resolve(bytes: Uint8Array): void;
  reject(err: unknown): void;
}

/** One fetch in flight, shared by every job that needs its tensor meanwhile. */
interface Flight {
  readonly waiters: Set<Waiter>;
  readonly controller: AbortController;
}

function cancelled(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('cancelled');
}

/**
 * Job inputs by ref kept on disk under their sha256, within a byte budget, least recently used out
 * first (`CacheIndex`); the recency order survives restarts as the files' mtimes. Writes go to a
 * temporary file, fsync, rename. Every read is hashed: an entry whose bytes do not hash to its name is
 * deleted and fetched again, never returned. Jobs that need a tensor while it is being fetched share
 * that fetch. A failure of the cache itself never fails a job: it fetches as if nothing was cached.
 */
export class TensorCache {
  private readonly flights = new Map<string, Flight>();
  /** Fetches in flight and writes not yet committed (settled() waits for them). */
  private readonly settling = new Set<Promise<void>>();
  /** Entries whose bytes are written but not yet synced and renamed into place. */
  private readonly commits = new Map<string, Promise<void>>();
  private readonly counters = {
    hits: 0,
    misses: 0,
    sharedFetches: 0,
    bytesSaved: 0,
    evictions: 0,
    dropped: 0,
    writeErrors: 0,
  };

  private constructor(
    private readonly dir: string,
    private readonly index: CacheIndex,
    private readonly logger: CacheLogger | undefined,
  ) {}

  /**
   * Opens the cache in `dir` (created when missing): removes temporary files a crash left, takes the
   * entries in from oldest to newest mtime and evicts what is over the budget. Budget 0: nothing is
   * kept (the files there are removed) and only fetches in flight are shared.
   */
  static async open(options: {
    dir: string;
    budgetBytes: number;
    logger?: CacheLogger;
  }): Promise<TensorCache> {
    const { dir, logger } = options;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const found: { sha256: string; bytes: number; mtimeMs: number }[] = [];
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      if (name.startsWith(TEMP_PREFIX)) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      if (!ENTRY_NAME.test(name)) continue;
      const info = await stat(path).catch(() => undefined);
      if (info?.isFile()) found.push({ sha256: name, bytes: info.size, mtimeMs: info.mtimeMs });
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    const { budgetBytes, diskFreeBytes } = await budgetForDisk({
      dir,
      configuredBytes: options.budgetBytes,
      heldBytes: found.reduce((n, f) => n + f.bytes, 0),
    });
    if (budgetBytes < options.budgetBytes) {
      logger?.warn(
        { configuredBytes: options.budgetBytes, budgetBytes, diskFreeBytes },
        'tensor cache budget lowered to half the free disk space',
      );
    }
    const cache = new TensorCache(dir, new CacheIndex(budgetBytes), logger);
    for (const f of found) {
      const admission = cache.index.admit(f.sha256, f.bytes);
      if (!admission.admitted) await cache.deleteFile(f.sha256);
      else await cache.evict(admission.evicted);
    }
    return cache;
  }

  stats(): TensorCacheStats {
    return {
      budgetBytes: this.index.budgetBytes,
      entries: this.index.size,
      bytes: this.index.totalBytes,
      ...this.counters,
    };
  }

  /** The entries held, least recently used first. */
  list(): CacheEntry[] {
    return this.index.list();
  }

  /**
   * The bytes of `want` in a fresh buffer of the caller's own: from the cache (hashed on the way),
   * else from a fetch of `want` in flight for another job, else from `fetch` (given a signal that
   * aborts once every job waiting for it gave up), then kept when they fit the budget. `fetch` must
   * check what it fetched against `want.sha256` (fetchTensor does). Rejects when `signal` aborts.
   */
  async getOrFetch(
    want: WantedTensor,
    fetch: (signal: AbortSignal) => Promise<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<Uint8Array> {
    if (!ENTRY_NAME.test(want.sha256)) throw new Error(`not a sha256 hash: ${want.sha256}`);
    signal?.throwIfAborted();
    // A fetch in flight writes the file just before it settles: its tensor is not on disk yet.
    if (!this.flights.has(want.sha256)) {
      const cached = await this.get(want);
      if (cached) {
        this.counters.hits += 1;
        this.counters.bytesSaved += want.bytes;
        this.logger?.debug({ sha256: want.sha256, bytes: want.bytes }, 'tensor cache hit');
        return cached;
      }
      signal?.throwIfAborted();
    }
    for (let joins = 0; joins < MAX_SHARED_JOINS; joins++) {
      const flight = this.flights.get(want.sha256);
      if (!flight) break;
      this.counters.sharedFetches += 1;
      this.counters.bytesSaved += want.bytes;
      this.logger?.debug(
        { sha256: want.sha256, bytes: want.bytes },
        'tensor fetch shared with a job in flight',
      );
      try {
        return await this.wait(flight, signal);
      } catch (err) {
        // Another job's fetch failed (its offer closed, its coordinator worker went away): this job
        // tries again, in the end with a fetch of its own.
        if (signal?.aborted) throw err;
        this.counters.sharedFetches -= 1;
        this.counters.bytesSaved -= want.bytes;
      }
    }
    return this.fetchAndKeep(want, fetch, signal);
  }

  /**
   * Resolves once the fetches in flight settled and every kept tensor is committed to disk (synced
   * and renamed into place); the agent waits for it when it stops.
   */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.settling]);
  }

  /** The verified bytes of `want` from disk, or undefined (not held, gone, or dropped as corrupt). */
  private async get(want: WantedTensor): Promise<Uint8Array | undefined> {
    await this.commits.get(want.sha256);
    const held = this.index.bytesOf(want.sha256);
    if (held === undefined) return undefined;
    const path = join(this.dir, want.sha256);
    let bytes: Uint8Array;
    try {
      bytes = await readWhole(path, want.bytes);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') this.index.remove(want.sha256);
      else await this.drop(want.sha256, `unreadable: ${(err as Error).message}`);
      return undefined;
    }
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== want.sha256) {
      await this.drop(want.sha256, `bytes hash to ${actual}`);
      return undefined;
    }
    this.index.touch(want.sha256);
    // the recency order outlives a restart as the files' mtimes
    const now = new Date();
    await utimes(path, now, now).catch(() => undefined);
    return bytes;
  }

  private async fetchAndKeep(
    want: WantedTensor,
    fetch: (signal: AbortSignal) => Promise<Uint8Array>,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    const flight: Flight = { waiters: new Set(), controller: new AbortController() };
    this.flights.set(want.sha256, flight);
    this.counters.misses += 1;
    this.logger?.debug({ sha256: want.sha256, bytes: want.bytes }, 'tensor cache miss: fetching');
    const waited = this.wait(flight, signal);
    const settle = (async (): Promise<void> => {
      try {
        const bytes = await fetch(flight.controller.signal);
        if (bytes.byteLength !== want.bytes) {
          throw new Error(`tensor ${want.sha256}: fetched ${bytes.byteLength} bytes, expected ${want.bytes}`);
        }
        await this.keep(want.sha256, bytes);
        // Every waiter gets a buffer of its own (the executor pool may transfer it to a worker).
        let first = true;
        for (const waiter of flight.waiters) {
          waiter.resolve(first ? bytes : bytes.slice());
          first = false;
        }
      } catch (err) {
        for (const waiter of flight.waiters) waiter.reject(err);
      } finally {
        flight.waiters.clear();
        this.flights.delete(want.sha256);
      }
    })();
    this.track(settle);
    return waited;
  }

  /** Joins `flight` until it settles or `signal` aborts; the last waiter to leave aborts the fetch. */
  private wait(flight: Flight, signal: AbortSignal | undefined): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      const onAbort = (): void => {
        flight.waiters.delete(waiter);
        if (flight.waiters.size === 0) flight.controller.abort(signal?.reason);
        reject(cancelled(signal as AbortSignal));
      };
      const waiter: Waiter = {
        resolve: (bytes) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(bytes);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      flight.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Stores fetched (already verified) bytes when they fit the budget; failures are logged, not thrown. */
  private async keep(sha256: string, bytes: Uint8Array): Promise<void> {
    const admission = this.index.admit(sha256, bytes.byteLength);
    if (!admission.admitted) {
      if (admission.reason === 'larger-than-budget') {
        this.logger?.debug(
          { sha256, bytes: bytes.byteLength, budgetBytes: this.index.budgetBytes },
          'tensor larger than the cache budget: not kept',
        );
      }
      return;
    }
    await this.evict(admission.evicted);
    let written: TemporaryFile;
    try {
      written = await writeTemporary(this.dir, sha256, bytes);
    } catch (err) {
      this.writeFailed(sha256, bytes.byteLength, err);
      return;
    }
    // The bytes are in the page cache and the jobs may have them; the fsync and rename finish
    // meanwhile (`get` waits for them before it reads the entry).
    const committed = (async (): Promise<void> => {
      try {
        await written.commit();
        // Evicted while it was being written (other tensors came in meanwhile): not kept after all.
        if (this.index.bytesOf(sha256) === undefined) await this.deleteFile(sha256);
      } catch (err) {
        this.writeFailed(sha256, bytes.byteLength, err);
      } finally {
        this.commits.delete(sha256);
      }
    })();
    this.commits.set(sha256, committed);
    this.track(committed);
  }

  private writeFailed(sha256: string, bytes: number, err: unknown): void {
    this.index.remove(sha256);
    this.counters.writeErrors += 1;
    this.logger?.warn({ sha256, bytes, err: (err as Error).message }, 'tensor not cached');
  }

  private track(work: Promise<void>): void {
    this.settling.add(work);
    void work.finally(() => this.settling.delete(work));
  }

  private async evict(entries: readonly CacheEntry[]): Promise<void> {
    for (const entry of entries) {
      this.counters.evictions += 1;
      this.logger?.debug({ sha256: entry.sha256, bytes: entry.bytes }, 'tensor cache eviction');
      await this.deleteFile(entry.sha256);
    }
  }

  private async drop(sha256: string, why: string): Promise<void> {
    // a job reading the same entry at the same time dropped it already
    if (!this.index.remove(sha256)) return;
    this.counters.dropped += 1;
    this.logger?.warn({ sha256, why }, 'corrupt tensor cache entry dropped; fetching it again');
    await this.deleteFile(sha256);
  }

  private async deleteFile(sha256: string): Promise<void> {
    await unlink(join(this.dir, sha256)).catch(() => undefined);
  }
}

/** The file at `path` in a fresh buffer, if it is exactly `bytes` long (else an error). */
async function readWhole(path: string, bytes: number): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    if (size !== bytes) throw new Error(`${size} bytes on disk, ${bytes} expected`);
    // a fresh ArrayBuffer, as fetchTensor returns: typed arrays of any dtype view it without a copy
    const out = new Uint8Array(new ArrayBuffer(bytes));
    let offset = 0;
    while (offset < bytes) {
      const { bytesRead } = await handle.read(
        out,
        offset,
        Math.min(READ_CHUNK_BYTES, bytes - offset),
        offset,
      );
      if (bytesRead === 0) throw new Error(`file ended after ${offset} of ${bytes} bytes`);
      offset += bytesRead;
    }
    return out;
  } finally {
    await handle.close();
  }
}
