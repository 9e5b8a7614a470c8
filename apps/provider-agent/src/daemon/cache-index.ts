/** An entry of a disk cache: the SHA-256 that names it and the bytes its file(s) take. */
export interface CacheEntry {
  readonly sha256: string;
  readonly bytes: number;
}

/**
 * What admitting an entry did: kept it (evicting these first), or left it out: the cache is off, the
 * entry is larger than the whole budget, or it fits only by evicting entries pinned by jobs.
 */
export type CacheAdmission =
  | { readonly admitted: true; readonly evicted: readonly CacheEntry[] }
  | { readonly admitted: false; readonly reason: 'disabled' | 'larger-than-budget' | 'pinned' };

/**
 * Which entries a disk cache holds, least recently used first, within a byte budget. Pure
 * bookkeeping: the caller stores and deletes the files it names. The total never exceeds the budget.
 * A pinned key (a job is using it) is never evicted; pins are counted per key and outlive its entry
 * (a job keeps its pin while the entry is dropped and fetched again).
 */
export class CacheIndex {
  /** sha256 → byte length; the Map's order is the recency order (oldest first). */
  private readonly entries = new Map<string, number>();
  /** sha256 → how many holders pinned it (absent = 0). */
  private readonly pins = new Map<string, number>();
  private total = 0;

  constructor(readonly budgetBytes: number) {
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < 0)
      throw new RangeError(`cache budget must be a whole number of bytes ≥ 0, got ${budgetBytes}`);
  }

  get totalBytes(): number {
    return this.total;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The byte length of `sha256`'s entry, or undefined when it is not held. */
  bytesOf(sha256: string): number | undefined {
    return this.entries.get(sha256);
  }

  /** Marks `sha256` as just used; false when it is not held. */
  touch(sha256: string): boolean {
    const bytes = this.entries.get(sha256);
    if (bytes === undefined) return false;
    this.entries.delete(sha256);
    this.entries.set(sha256, bytes);
    return true;
  }

  /** Keeps `sha256` from eviction until as many `unpin`s (held or not: pins wait for its entry). */
  pin(sha256: string): void {
    this.pins.set(sha256, (this.pins.get(sha256) ?? 0) + 1);
  }

  /** Takes back one `pin` of `sha256`; false when it had none. */
  unpin(sha256: string): boolean {
    const count = this.pins.get(sha256);
    if (count === undefined) return false;
    if (count === 1) this.pins.delete(sha256);
    else this.pins.set(sha256, count - 1);
    return true;
  }

  isPinned(sha256: string): boolean {
    return this.pins.has(sha256);
  }

  /**
   * Takes `sha256` (`bytes` long) in as the most recently used entry, evicting the least recently
   * used unpinned ones until it fits. An entry larger than the whole budget (or any, at budget 0), or
   * one that would fit only by evicting pinned entries, is left out and nothing is evicted. An entry
   * already held is only touched.
   */
  admit(sha256: string, bytes: number): CacheAdmission {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`bad entry byte length ${bytes}`);
    if (this.budgetBytes === 0) return { admitted: false, reason: 'disabled' };
    if (bytes > this.budgetBytes) return { admitted: false, reason: 'larger-than-budget' };
    if (this.touch(sha256)) return { admitted: true, evicted: [] };
    if (this.pinnedBytes() + bytes > this.budgetBytes) return { admitted: false, reason: 'pinned' };
    const evicted: CacheEntry[] = [];
    for (const [oldest, oldestBytes] of this.entries) {
      if (this.total + bytes <= this.budgetBytes) break;
      if (this.pins.has(oldest)) continue;
      this.entries.delete(oldest);
      this.total -= oldestBytes;
      evicted.push({ sha256: oldest, bytes: oldestBytes });
    }
    this.entries.set(sha256, bytes);
    this.total += bytes;
    return { admitted: true, evicted };
  }

  /** Forgets `sha256` (its file is gone or bad); false when it was not held. Its pins stay. */
  remove(sha256: string): boolean {
    const bytes = this.entries.get(sha256);
    if (bytes === undefined) return false;
    this.entries.delete(sha256);
    this.total -= bytes;
    return true;
  }

  /** The entries, least recently used first. */
  list(): CacheEntry[] {
    return [...this.entries].map(([sha256, bytes]) => ({ sha256, bytes }));
  }

  /** Bytes of the held entries that are pinned (pins are few: one per running job at most). */
  private pinnedBytes(): number {
    let bytes = 0;
    for (const sha256 of this.pins.keys()) bytes += this.entries.get(sha256) ?? 0;
    return bytes;
  }
}

/**
 * The budget a cache runs with: the configured one, but never more than what it already holds plus
 * half the disk space still free (a full disk fails the agent's journal and status writes too).
 */
export function effectiveCacheBudget(
  configuredBytes: number,
  heldBytes: number,
  diskFreeBytes: number,
): number {
  return Math.max(0, Math.min(configuredBytes, heldBytes + Math.floor(diskFreeBytes / 2)));
}
