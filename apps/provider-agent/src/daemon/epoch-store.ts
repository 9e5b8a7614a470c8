import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { epochFilesToDrop, keccak256Hex } from '@gpumesh/rewards';

/** Files of other providers' epochs an agent keeps by default (it serves them to peers). */
export const DEFAULT_KEEP_OTHER_EPOCH_FILES = 16;

const ADDRESS = /^0x[0-9a-f]{40}$/;
const EPOCH_NAME = /^([1-9]\d*)\.json$/;

/** One epoch file on disk. */
export interface StoredEpochFile {
  readonly distributor: string;
  readonly epoch: number;
  readonly fileHash: string;
  readonly path: string;
  readonly concernsHolder: boolean;
}

/**
 * Epoch files an agent keeps, as the exact bytes whose keccak256 is posted on chain:
 * `<dir>/<distributor>/<epoch>.json`. A file is only ever written after its hash was checked, and is
 * checked again on every read, so a corrupted file is never served or claimed from. Files that
 * mention the holder's address are kept; of the others, the newest `keepOthers`.
 */
export class EpochFileStore {
  private readonly byHash = new Map<string, StoredEpochFile>();

  private constructor(
    private readonly dir: string,
    private readonly holder: string,
    private readonly keepOthers: number,
  ) {}

  /** Opens the store under `dir` for the wallet `holder`, indexing the files already there. */
  static async open(
    dir: string,
    holder: string,
    keepOthers = DEFAULT_KEEP_OTHER_EPOCH_FILES,
  ): Promise<EpochFileStore> {
    const store = new EpochFileStore(dir, holder.toLowerCase(), keepOthers);
    await store.scan();
    return store;
  }

  private async scan(): Promise<void> {
    let distributors: string[];
    try {
      distributors = (await readdir(this.dir)).filter((d) => ADDRESS.test(d));
    } catch {
      return;
    }
    for (const distributor of distributors) {
      const names = await readdir(join(this.dir, distributor)).catch(() => [] as string[]);
      for (const name of names) {
        const match = EPOCH_NAME.exec(name);
        if (!match) continue;
        const path = join(this.dir, distributor, name);
        const bytes = new Uint8Array(await readFile(path).catch(() => Buffer.alloc(0)));
        if (bytes.byteLength === 0) continue;
        this.index(distributor, Number(match[1]), keccak256Hex(bytes), path, bytes);
      }
    }
  }

  private index(
    distributor: string,
    epoch: number,
    fileHash: string,
    path: string,
    bytes: Uint8Array,
  ): StoredEpochFile {
    const entry: StoredEpochFile = {
      distributor,
      epoch,
      fileHash,
      path,
      // Opaque bytes: a file concerns the holder when its address appears in it (a leaf's account).
      concernsHolder: Buffer.from(bytes).toString('utf8').includes(this.holder),
    };
    this.byHash.set(fileHash, entry);
    return entry;
  }

  /** Every file held. */
  list(): StoredEpochFile[] {
    return [...this.byHash.values()].sort((a, b) => a.epoch - b.epoch);
  }

  has(fileHash: string): boolean {
    return this.byHash.has(fileHash.toLowerCase());
  }

  /** The bytes whose keccak256 is `fileHash`, if held (and still intact on disk). */
  async get(fileHash: string): Promise<Uint8Array | undefined> {
    const entry = this.byHash.get(fileHash.toLowerCase());
    if (!entry) return undefined;
    const bytes = new Uint8Array(await readFile(entry.path).catch(() => Buffer.alloc(0)));
    if (bytes.byteLength > 0 && keccak256Hex(bytes) === entry.fileHash) return bytes;
    this.byHash.delete(entry.fileHash);
    return undefined;
  }

  /** The file of `epoch` of `distributor` if held and its hash is `fileHash`. */
  async getEpoch(distributor: string, epoch: number, fileHash: string): Promise<Uint8Array | undefined> {
    const entry = this.byHash.get(fileHash.toLowerCase());
    if (!entry || entry.distributor !== distributor.toLowerCase() || entry.epoch !== epoch) return undefined;
    return this.get(fileHash);
  }

  /** Distributors with at least one file held. */
  distributors(): string[] {
    return [...new Set(this.list().map((f) => f.distributor))];
  }

  /**
   * Keeps `bytes` as epoch `epoch` of `distributor` if they hash to `fileHash` (else throws), then
   * drops what the retention policy no longer keeps.
   */
  async put(
    distributor: string,
    epoch: number,
    fileHash: string,
    bytes: Uint8Array,
  ): Promise<StoredEpochFile> {
    const owner = distributor.toLowerCase();
    const expected = fileHash.toLowerCase();
    if (!ADDRESS.test(owner)) throw new Error(`not a distributor address: ${distributor}`);
    if (!Number.isSafeInteger(epoch) || epoch < 1) throw new Error(`not an epoch number: ${epoch}`);
    const actual = keccak256Hex(bytes);
    if (actual !== expected) throw new Error(`epoch ${epoch}'s file hashes to ${actual}, not ${expected}`);
    const dir = join(this.dir, owner);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, `${epoch}.json`);
    const tmp = join(dir, `.${epoch}.${process.pid}.tmp`);
    await writeFile(tmp, bytes, { mode: 0o600 });
    await rename(tmp, path);
    // a re-posted epoch (after a veto) replaces its old file
    for (const [hash, entry] of this.byHash) if (entry.path === path) this.byHash.delete(hash);
    const entry = this.index(owner, epoch, expected, path, bytes);
    await this.prune();
    return entry;
  }

  private async prune(): Promise<void> {
    for (const drop of epochFilesToDrop(this.list(), this.keepOthers)) {
      this.byHash.delete(drop.fileHash);
      await rm(drop.path, { force: true });
    }
  }
}
