import { mkdir, readFile, readdir, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { hashArtifact, type ModelArtifact } from '@gpumesh/p2p';
import { MODEL_FORMATS } from '@gpumesh/protocol';
import { TEMP_PREFIX, budgetForDisk, writeTemporary, type CacheLogger } from './cache-files.js';
import { CacheIndex, type CacheEntry } from './cache-index.js';

/** Default byte budget of the artifact cache (`artifactCacheBytes` in agent.json). */
export const DEFAULT_ARTIFACT_CACHE_BYTES = 2 * 1024 * 1024 * 1024;

const ARTIFACT_HASH = /^[0-9a-f]{64}$/;
/** The two files of an entry: `<hash>.json` (format and model.json) and `<hash>.bin` (the weights). */
const ENTRY_FILE = /^([0-9a-f]{64})\.(json|bin)$/;
/** Temporary files of the unbounded cache this one replaced (`.<hash>.<pid>.bin`): a crash left them. */
const OLD_TEMP_FILE = /^\.[0-9a-f]{64}\.\d+\.(json|bin)$/;

export interface ArtifactCacheStats {
  /** The budget in force (the configured one, lowered when the disk is short of space); 0 = off. */
  budgetBytes: number;
  entries: number;
  /** Bytes of both files of every entry. */
  bytes: number;
  /** Artifacts served from the cache (verified against their hash). */
  hits: number;
  /** Artifacts fetched from the coordinator. */
  misses: number;
  /** Bytes not transferred thanks to hits. */
  bytesSaved: number;
  /** Entries removed to make room. */
  evictions: number;
  /** Entries dropped as corrupt: a file missing, unreadable, or not hashing to the entry's name. */
  dropped: number;
  /** Fetched artifacts that could not be written (the job still ran with them). */
  writeErrors: number;
}

/** An artifact for a job; its entry is not evicted until `release` (called once the job ended). */
export interface ArtifactLease {
  readonly artifact: ModelArtifact;
  release(): void;
}

interface StoredMeta {
  format: ModelArtifact['format'];
  modelJson: unknown;
}

/**
 * Model artifacts kept on disk under their hash, within a byte budget that counts both files of an
 * entry, least recently used out first (`CacheIndex`); the recency order survives restarts as the
 * files' mtimes. An entry a running job leased is pinned: eviction passes it over, and a new artifact
 * that would fit only by evicting pinned ones is not kept. Every read is hashed (`hashArtifact`):
 * an entry that does not match, or lacks one of its files, is deleted and fetched again, never
 * returned. Writes go to temporary files, fsync, rename. A failure of the cache itself never fails a
 * job: it fetches as if nothing was cached.
 */
export class ArtifactCache {
  /** Entries whose files are written but not yet synced and renamed into place. */
  private readonly commits = new Map<string, Promise<void>>();
  private readonly settling = new Set<Promise<void>>();
  private readonly counters = {
    hits: 0,
    misses: 0,
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
   * Opens the cache in `dir` (created when missing): removes temporary files a crash left and entries
   * with one of their two files missing, takes the others in from oldest to newest mtime and evicts
   * what is over the budget (an agent that kept every artifact shrinks to its budget here). Budget 0:
   * nothing is kept and the files there are removed. `reservedBytes`: free disk space promised to
   * another cache (see budgetForDisk).
   */
  static async open(options: {
    dir: string;
    budgetBytes: number;
    reservedBytes?: number;
    logger?: CacheLogger;
  }): Promise<ArtifactCache> {
    const { dir, logger } = options;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const files = new Map<string, { json?: number; bin?: number; mtimeMs: number }>();
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      if (name.startsWith(TEMP_PREFIX) || OLD_TEMP_FILE.test(name)) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      const m = ENTRY_FILE.exec(name);
      if (!m) continue;
      const info = await stat(path).catch(() => undefined);
      if (!info?.isFile()) continue;
      const found = files.get(m[1]) ?? { mtimeMs: 0 };
      found[m[2] as 'json' | 'bin'] = info.size;
      found.mtimeMs = Math.max(found.mtimeMs, info.mtimeMs);
      files.set(m[1], found);
    }
    const entries: { hash: string; bytes: number; mtimeMs: number }[] = [];
    const partial: string[] = [];
    for (const [hash, f] of files) {
      if (f.json === undefined || f.bin === undefined) partial.push(hash);
      else entries.push({ hash, bytes: f.json + f.bin, mtimeMs: f.mtimeMs });
    }
    entries.sort((a, b) => a.mtimeMs - b.mtimeMs);
    const { budgetBytes, diskFreeBytes } = await budgetForDisk({
      dir,
      configuredBytes: options.budgetBytes,
      heldBytes: entries.reduce((n, e) => n + e.bytes, 0),
      reservedBytes: options.reservedBytes,
    });
    if (budgetBytes < options.budgetBytes) {
      logger?.warn(
        { configuredBytes: options.budgetBytes, budgetBytes, diskFreeBytes },
        'artifact cache budget lowered to half the free disk space',
      );
    }
    const cache = new ArtifactCache(dir, new CacheIndex(budgetBytes), logger);
    // a crash between the two renames, or a file deleted by hand
    for (const hash of partial) await cache.dropFiles(hash, 'one of its two files is missing');
    for (const e of entries) {
      const admission = cache.index.admit(e.hash, e.bytes);
      if (!admission.admitted) await cache.deleteFiles(e.hash);
      else await cache.evict(admission.evicted);
    }
    return cache;
  }

  stats(): ArtifactCacheStats {
    return {
      budgetBytes: this.index.budgetBytes,
      entries: this.index.size,
      bytes: this.index.totalBytes,
      ...this.counters,
    };
  }

  /** The entries held (`sha256` = the artifact's hash), least recently used first. */
  list(): CacheEntry[] {
    return this.index.list();
  }

  /**
   * The artifact named `hash`, leased to a job: from the cache (hashed on the way), else from
   * `fetch`, checked against `hash` and kept when it fits. Its entry is not evicted until the lease
   * is released; release it once the job ended, success or not.
   */
  async acquire(hash: string, fetch: () => Promise<ModelArtifact>): Promise<ArtifactLease> {
    if (!ARTIFACT_HASH.test(hash)) throw new Error(`not an artifact hash: ${hash}`);
    // pinned from the start: no other job's admission deletes the files while they are read
    this.index.pin(hash);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.index.unpin(hash);
    };
    try {
      const artifact = (await this.get(hash)) ?? (await this.fetchAndKeep(hash, fetch));
      return { artifact, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Resolves once every kept artifact is committed to disk; the agent waits for it when it stops. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.settling]);
  }

  /** The verified artifact from disk, or undefined (not held, or dropped as corrupt). */
  private async get(hash: string): Promise<ModelArtifact | undefined> {
    await this.commits.get(hash);
    const bytes = this.index.bytesOf(hash);
    if (bytes === undefined) return undefined;
    const [jsonPath, binPath] = this.paths(hash);
    let artifact: ModelArtifact;
    try {
      const [meta, weights] = await Promise.all([readFile(jsonPath, 'utf8'), readFile(binPath)]);
      artifact = {
        ...parseMeta(meta),
        weights: new Uint8Array(weights.buffer, weights.byteOffset, weights.length),
      };
    } catch (err) {
      await this.drop(hash, `unreadable: ${(err as Error).message}`);
      return undefined;
    }
    if (hashArtifact(artifact.modelJson, artifact.weights) !== hash) {
      await this.drop(hash, 'files do not hash to the entry name');
      return undefined;
    }
    this.index.touch(hash);
    this.counters.hits += 1;
    this.counters.bytesSaved += bytes;
    this.logger?.debug({ hash, bytes }, 'artifact cache hit');
    // the recency order outlives a restart as the files' mtimes
    const now = new Date();
    await Promise.all([jsonPath, binPath].map((p) => utimes(p, now, now).catch(() => undefined)));
    return artifact;
  }

  private async fetchAndKeep(hash: string, fetch: () => Promise<ModelArtifact>): Promise<ModelArtifact> {
    this.counters.misses += 1;
    this.logger?.debug({ hash }, 'artifact cache miss: fetching');
    const fetched = await fetch();
    if (hashArtifact(fetched.modelJson, fetched.weights) !== hash)
      throw new Error(`artifact ${hash}: hash mismatch`);
    await this.keep(hash, fetched);
    return fetched;
  }

  /** Stores a fetched (verified) artifact when it fits; failures are logged, not thrown. */
  private async keep(hash: string, artifact: ModelArtifact): Promise<void> {
    // another job fetched it meanwhile: its write stands
    if (this.index.touch(hash)) return;
    const meta = JSON.stringify({
      format: artifact.format,
      modelJson: artifact.modelJson,
    } satisfies StoredMeta);
    const bytes = Buffer.byteLength(meta) + artifact.weights.byteLength;
    const admission = this.index.admit(hash, bytes);
    if (!admission.admitted) {
      if (admission.reason !== 'disabled') {
        this.logger?.debug(
          { hash, bytes, budgetBytes: this.index.budgetBytes, reason: admission.reason },
          'artifact not kept: it does not fit the budget beside the artifacts jobs are using',
        );
      }
      return;
    }
    await this.evict(admission.evicted);
    const [jsonName, binName] = [`${hash}.json`, `${hash}.bin`];
    let written: Awaited<ReturnType<typeof writeTemporary>>[];
    try {
      const weights = await writeTemporary(this.dir, binName, artifact.weights);
      const json = await writeTemporary(this.dir, jsonName, meta).catch(async (err: unknown) => {
        await weights.abandon();
        throw err;
      });
      written = [weights, json];
    } catch (err) {
      this.writeFailed(hash, bytes, err);
      return;
    }
    // The job has the artifact; the fsyncs and renames finish meanwhile (`get` waits for them). The
    // weights go in place first: a crash between the renames leaves an entry without its model.json,
    // which the next open removes.
    const committed = (async (): Promise<void> => {
      try {
        for (const file of written) await file.commit();
        // Evicted while it was being written (its job ended and others came in): not kept after all.
        if (this.index.bytesOf(hash) === undefined) await this.deleteFiles(hash);
      } catch (err) {
        for (const file of written) await file.abandon();
        await this.deleteFiles(hash);
        this.writeFailed(hash, bytes, err);
      }
    })();
    this.commits.set(hash, committed);
    this.settling.add(committed);
    void committed.finally(() => {
      this.settling.delete(committed);
      // evicted and fetched again meanwhile: that write's commit stays
      if (this.commits.get(hash) === committed) this.commits.delete(hash);
    });
  }

  private writeFailed(hash: string, bytes: number, err: unknown): void {
    this.index.remove(hash);
    this.counters.writeErrors += 1;
    this.logger?.warn({ hash, bytes, err: (err as Error).message }, 'artifact not cached');
  }

  private async evict(entries: readonly CacheEntry[]): Promise<void> {
    for (const entry of entries) {
      this.counters.evictions += 1;
      this.logger?.debug({ hash: entry.sha256, bytes: entry.bytes }, 'artifact cache eviction');
      await this.deleteFiles(entry.sha256);
    }
  }

  private async drop(hash: string, why: string): Promise<void> {
    // a job reading the same entry at the same time dropped it already
    if (!this.index.remove(hash)) return;
    await this.dropFiles(hash, why);
  }

  private async dropFiles(hash: string, why: string): Promise<void> {
    this.counters.dropped += 1;
    this.logger?.warn({ hash, why }, 'corrupt artifact cache entry removed');
    await this.deleteFiles(hash);
  }

  private async deleteFiles(hash: string): Promise<void> {
    await Promise.all(this.paths(hash).map((p) => unlink(p).catch(() => undefined)));
  }

  private paths(hash: string): [json: string, bin: string] {
    return [join(this.dir, `${hash}.json`), join(this.dir, `${hash}.bin`)];
  }
}

/** The format and model.json of an entry's json file; throws when it is not what `keep` wrote. */
function parseMeta(text: string): StoredMeta {
  const meta = JSON.parse(text) as Partial<StoredMeta> | null;
  // the format is not part of the artifact's hash: checked here instead
  if (
    typeof meta !== 'object' ||
    meta === null ||
    !MODEL_FORMATS.includes(meta.format as StoredMeta['format'])
  )
    throw new Error('model.json file without a model format');
  if (meta.modelJson === undefined) throw new Error('model.json file without a model');
  return { format: meta.format as StoredMeta['format'], modelJson: meta.modelJson };
}
