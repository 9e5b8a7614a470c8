/** An entry of the tensor cache: the sha256 of its bytes and their length. */
export interface CachedTensorEntry {
  readonly sha256: string;
  readonly bytes: number;
}

/** What admitting an entry did: kept it (evicting these first), or left it out. */
export type TensorAdmission =
  | { readonly admitted: true; readonly evicted: readonly CachedTensorEntry[] }
  | { readonly admitted: false; readonly reason: 'disabled' | 'larger-than-budget' };

/**
 * Which tensors the cache holds, least recently used first, within a byte budget. Pure bookkeeping:
 * the caller stores and deletes the files it names. The total never exceeds the budget.
 */
export class TensorCacheIndex {
  /** sha256 → byte length; the Map's order is the recency order (oldest first). */
  private readonly entries = new Map<string, number>();
  private total = 0;

  constructor(readonly budgetBytes: number) {
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < 0)
      throw new RangeError(`tensor cache budget must be a whole number of bytes ≥ 0, got ${budgetBytes}`);
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

  /**
   * Takes `sha256` (`bytes` long) in as the most recently used entry, evicting the least recently
   * used ones until it fits. A tensor larger than the whole budget (or any, at budget 0) is left out
   * and nothing is evicted. An entry already held is only touched.
   */
  admit(sha256: string, bytes: number): TensorAdmission {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`bad tensor byte length ${bytes}`);
    if (this.budgetBytes === 0) return { admitted: false, reason: 'disabled' };
    if (bytes > this.budgetBytes) return { admitted: false, reason: 'larger-than-budget' };
    if (this.touch(sha256)) return { admitted: true, evicted: [] };
    const evicted: CachedTensorEntry[] = [];
    for (const [oldest, oldestBytes] of this.entries) {
      if (this.total + bytes <= this.budgetBytes) break;
      this.entries.delete(oldest);
      this.total -= oldestBytes;
      evicted.push({ sha256: oldest, bytes: oldestBytes });
    }
    this.entries.set(sha256, bytes);
    this.total += bytes;
    return { admitted: true, evicted };
  }

  /** Forgets `sha256` (its file is gone or bad); false when it was not held. */
  remove(sha256: string): boolean {
    const bytes = this.entries.get(sha256);
    if (bytes === undefined) return false;
    this.entries.delete(sha256);
    this.total -= bytes;
    return true;
  }

  /** The entries, least recently used first. */
  list(): CachedTensorEntry[] {
    return [...this.entries].map(([sha256, bytes]) => ({ sha256, bytes }));
  }
}

/**
 * The budget the cache runs with: the configured one, but never more than what it already holds plus
 * half the disk space still free (a full disk fails the agent's journal and status writes too).
 */
export function effectiveTensorCacheBudget(
  configuredBytes: number,
  heldBytes: number,
  diskFreeBytes: number,
): number {
  return Math.max(0, Math.min(configuredBytes, heldBytes + Math.floor(diskFreeBytes / 2)));
}
