// The live provider index, updated incrementally from adverts. Each listed provider sits in
//   - one region list (region x backend), and
//   - one fine bucket per distinct (backend, GPU model, VRAM tier) of its GPUs,
// every list ordered by the provider's sort key. A decision reads only the heads of the lists that can
// hold candidates (see placement.ts); banned and draining providers are kept out of the lists but stay
// in the index so "why no match" can count them.
import { MinHeap } from '../heap.js';
import type { ProviderSnapshot, SchedulerConfig } from '../types.js';
import { ProviderEntry } from './provider-entry.js';
import { SortedList } from './sorted-list.js';

/** Lower bounds of the VRAM tiers (MiB); the last tier is open. */
export const VRAM_TIERS: readonly number[] = [0, 4096, 8192, 12288, 16384, 24576, 32768, 49152, 81920];

export function vramTier(vramMiB: number): number {
  let t = 0;
  while (t + 1 < VRAM_TIERS.length && VRAM_TIERS[t + 1] <= vramMiB) t++;
  return t;
}

interface ExpiryItem {
  at: number;
  entry: ProviderEntry;
}

export interface IndexStats {
  providers: number;
  listed: number;
  buckets: number;
  regions: number;
  explorationPool: number;
}

export class ProviderIndex {
  private readonly entries = new Map<string, ProviderEntry>();
  /** Fine buckets by name, and the same as an array (in creation order, so iteration is deterministic). */
  private readonly bucketByName = new Map<string, SortedList>();
  readonly buckets: SortedList[] = [];
  private readonly regionByName = new Map<string, SortedList>();
  readonly regionLists: SortedList[] = [];
  /** Bumped whenever a list is created, so cached query plans know to refresh. */
  version = 0;
  /** Providers in the region lists. */
  listed = 0;
  /** Providers that may be new (a superset, pruned by expire); see ProviderEntry.isNew. */
  readonly pool: ProviderEntry[] = [];
  /** Latest time passed in. */
  clock = Number.NEGATIVE_INFINITY;
  private readonly expiry = new MinHeap<ExpiryItem>((a, b) => a.at < b.at);
  private readonly modelBits = new Map<string, number>();

  constructor(readonly config: SchedulerConfig) {}

  get size(): number {
    return this.entries.size;
  }

  get(peerId: string): ProviderEntry | undefined {
    return this.entries.get(peerId);
  }

  values(): IterableIterator<ProviderEntry> {
    return this.entries.values();
  }

  stats(): IndexStats {
    return {
      providers: this.entries.size,
      listed: this.listed,
      buckets: this.buckets.filter((b) => b.size > 0).length,
      regions: new Set(this.regionLists.filter((b) => b.size > 0).map((b) => b.region)).size,
      explorationPool: this.pool.length,
    };
  }

  /**
   * Bit of a normalised GPU model for block summaries: the first 30 models seen get their own bit, later
   * ones share bit 30 (a shared bit only makes block pruning less sharp, never wrong).
   */
  readonly modelBit = (model: string): number => {
    let bit = this.modelBits.get(model);
    if (bit === undefined) {
      bit = 1 << Math.min(30, this.modelBits.size);
      this.modelBits.set(model, bit);
    }
    return bit;
  };

  /** Model mask of a job's allowlist (-1 when it has none; 0 when no provider ever had one of them). */
  modelMaskOf(models: ReadonlySet<string> | null): number {
    if (models === null) return -1;
    let mask = 0;
    for (const m of models) mask |= this.modelBits.get(m) ?? 0;
    return mask;
  }

  /** Consistency problems (for tests). */
  verify(): string[] {
    const problems: string[] = [];
    for (const l of [...this.buckets, ...this.regionLists]) problems.push(...l.verify());
    let listed = 0;
    for (const e of this.entries.values()) {
      if (e.listable !== e.lists.length > 0) problems.push(`${e.peerId}: listed ${e.lists.length} times`);
      if (e.lists.length > 0) listed++;
      for (const l of e.lists)
        if (![...l.entries()].includes(e)) problems.push(`${e.peerId}: missing from ${l.name}`);
    }
    if (listed !== this.listed) problems.push(`listed count ${this.listed} != ${listed}`);
    const inLists = this.regionLists.reduce((n, l) => n + l.size, 0);
    if (inLists !== listed) problems.push(`region lists hold ${inLists}, expected ${listed}`);
    return problems;
  }

  /** Adds or updates a provider from its advert; usage (held/busy slots) survives updates. */
  upsert(
    snapshot: ProviderSnapshot,
    now?: number,
    usage?: { held: number; busy: number; value?: bigint },
  ): ProviderEntry {
    if (now !== undefined && now > this.clock) this.clock = now;
    let e = this.entries.get(snapshot.peerId);
    let oldSig = '';
    const existed = e !== undefined;
    if (e === undefined) {
      e = new ProviderEntry(snapshot.peerId);
      this.entries.set(snapshot.peerId, e);
    } else {
      oldSig = listingSignature(e);
    }
    const oldExpiresAt = e.expiresAt;
    e.assign(snapshot, this.config, this.modelBit);
    if (usage !== undefined) e.setUsage(usage.held, usage.busy, this.config, usage.value ?? 0n);
    const sig = listingSignature(e);
    if (existed && sig === oldSig && e.lists.length > 0) {
      const oldSortKey = e.sortKey;
      e.sortKey = e.key;
      for (const l of e.lists) {
        if (e.sortKey !== oldSortKey) l.reposition(e, oldSortKey);
        l.touch(e);
      }
    } else {
      if (existed) this.unlist(e);
      e.sortKey = e.key;
      if (e.listable) this.list(e);
    }
    if (!existed || e.expiresAt !== oldExpiresAt) this.pushExpiry(e);
    this.updatePool(e);
    return e;
  }

  remove(peerId: string): boolean {
    const e = this.entries.get(peerId);
    if (e === undefined) return false;
    this.unlist(e);
    if (e.poolIndex >= 0) this.poolRemove(e);
    this.entries.delete(peerId);
    return true;
  }

  /** Updates the engine's view of a provider's reserved and busy slots and the value they hold. */
  setUsage(peerId: string, held: number, busy: number, value = 0n): void {
    const e = this.entries.get(peerId);
    if (e === undefined) return;
    const oldAvail = e.avail;
    e.setUsage(held, busy, this.config, value);
    if (e.lists.length === 0) {
      e.sortKey = e.key;
    } else if (e.key > e.sortKey) {
      const old = e.sortKey;
      e.sortKey = e.key;
      for (const l of e.lists) l.reposition(e, old);
    } else if (e.avail > oldAvail) {
      for (const l of e.lists) l.raiseAvail(e);
    }
  }

  /** Moves an entry whose key fell (reservations) down to its true place. */
  settle(e: ProviderEntry): void {
    if (e.key >= e.sortKey || e.lists.length === 0) return;
    const old = e.sortKey;
    e.sortKey = e.key;
    for (const l of e.lists) l.reposition(e, old);
  }

  /** Removes providers whose advert expired at or before `now`; returns their peer ids. */
  expire(now: number): string[] {
    if (now > this.clock) this.clock = now;
    const removed: string[] = [];
    for (;;) {
      const top = this.expiry.peek();
      if (top === undefined || top.at > now) break;
      this.expiry.pop();
      const e = top.entry;
      if (this.entries.get(e.peerId) === e && e.expiresAt === top.at) {
        this.remove(e.peerId);
        removed.push(e.peerId);
      }
    }
    for (let i = this.pool.length - 1; i >= 0; i--) {
      const e = this.pool[i];
      if (!e.isNew(this.clock, this.config)) this.poolRemove(e);
    }
    return removed;
  }

  private pushExpiry(e: ProviderEntry): void {
    this.expiry.push({ at: e.expiresAt, entry: e });
    if (this.expiry.size > 4 * this.entries.size + 1024) {
      this.expiry.clear();
      for (const x of this.entries.values()) this.expiry.push({ at: x.expiresAt, entry: x });
    }
  }

  private updatePool(e: ProviderEntry): void {
    const maybeNew = e.listable && e.isNew(this.clock, this.config);
    if (maybeNew && e.poolIndex < 0) {
      e.poolIndex = this.pool.length;
      this.pool.push(e);
    } else if (!maybeNew && e.poolIndex >= 0) {
      this.poolRemove(e);
    }
  }

  private poolRemove(e: ProviderEntry): void {
    const last = this.pool.pop() as ProviderEntry;
    if (last !== e) {
      this.pool[e.poolIndex] = last;
      last.poolIndex = e.poolIndex;
    }
    e.poolIndex = -1;
  }

  private list(e: ProviderEntry): void {
    const lists: SortedList[] = [this.regionList(e)];
    if (e.gpus.length === 0) {
      lists.push(this.bucket(e, '', 0, 0, 1));
    } else {
      const seen = new Set<string>();
      for (const g of e.gpus) {
        const t = vramTier(g.vramMiB);
        const name = `${e.backend}|${g.model}|${t}`;
        if (seen.has(name)) continue;
        seen.add(name);
        const max = t + 1 < VRAM_TIERS.length ? VRAM_TIERS[t + 1] : Number.POSITIVE_INFINITY;
        lists.push(this.bucket(e, g.model, t, VRAM_TIERS[t], max));
      }
    }
    for (const l of lists) l.insert(e);
    e.lists = lists;
    this.listed++;
  }

  private unlist(e: ProviderEntry): void {
    if (e.lists.length === 0) return;
    for (const l of e.lists) l.remove(e, e.sortKey);
    e.lists = [];
    this.listed--;
  }

  private regionList(e: ProviderEntry): SortedList {
    const name = `${e.region}|${e.backend}`;
    let l = this.regionByName.get(name);
    if (l === undefined) {
      l = new SortedList(`region:${name}`, e.backendBit, '', 0, Number.POSITIVE_INFINITY, e.region);
      this.regionByName.set(name, l);
      this.regionLists.push(l);
      this.version++;
    }
    return l;
  }

  private bucket(
    e: ProviderEntry,
    model: string,
    tier: number,
    vramMin: number,
    vramMax: number,
  ): SortedList {
    const name = `${e.backend}|${model}|${tier}`;
    let l = this.bucketByName.get(name);
    if (l === undefined) {
      l = new SortedList(name, e.backendBit, model, vramMin, vramMax, '');
      this.bucketByName.set(name, l);
      this.buckets.push(l);
      this.version++;
    }
    return l;
  }
}

/** What decides which lists a provider is in. */
function listingSignature(e: ProviderEntry): string {
  if (!e.listable) return '';
  let sig = `${e.backend}#${e.region}#`;
  for (const g of e.gpus) sig += `${g.model}:${vramTier(g.vramMiB)};`;
  return sig;
}
