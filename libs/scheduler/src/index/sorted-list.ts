// A list of provider entries ordered by (sortKey desc, peerId asc), stored as a sequence of small sorted
// chunks (at most 64 entries). Each chunk keeps a summary of its entries (cheapest price per speed band,
// best speed, backends, GPU models, largest VRAM, most free slots), so a scan skips every chunk that
// cannot hold an eligible provider for the job, the way block-max indexes skip postings in search
// engines: a selective or hopeless job costs chunks, not providers. An update touches one or two chunks
// (a splice of at most 64 pointers; an insertion widens the summary, a removal leaves it a valid if
// looser bound until it is recomputed), never the rest of the list.
import type { JobContext } from '../job-context.js';
import type { ProviderEntry } from './provider-entry.js';
import { SPEED_BANDS } from './speed-band.js';

const CHUNK_MAX = 64;

/** Strict total order used everywhere: higher score first, then lower peerId. */
export function ranksBefore(scoreA: number, peerA: string, scoreB: number, peerB: string): boolean {
  return scoreA > scoreB || (scoreA === scoreB && peerA < peerB);
}

export class Chunk {
  items: ProviderEntry[];
  /** [s]: cheapest price among entries in speed band s or faster. */
  readonly bandMinPrice = new Float64Array(SPEED_BANDS);
  maxGflops = 0;
  backends = 0;
  models = 0;
  maxVram = 0;
  maxAvail = 0;
  dirty = true;
  /** Entries removed since the summary was computed (it still bounds the rest, just less tightly). */
  loose = 0;

  constructor(items: ProviderEntry[]) {
    this.items = items;
  }

  summarise(): void {
    const bands = this.bandMinPrice;
    bands.fill(Number.POSITIVE_INFINITY);
    let maxGflops = 0;
    let backends = 0;
    let models = 0;
    let maxVram = 0;
    let maxAvail = 0;
    const items = this.items;
    for (let i = 0; i < items.length; i++) {
      const e = items[i];
      if (e.priceNum < bands[e.speedBand]) bands[e.speedBand] = e.priceNum;
      if (e.gflops > maxGflops) maxGflops = e.gflops;
      backends |= e.backendBit;
      models |= e.modelMask;
      if (e.maxVramMiB > maxVram) maxVram = e.maxVramMiB;
      if (e.avail > maxAvail) maxAvail = e.avail;
    }
    for (let s = SPEED_BANDS - 2; s >= 0; s--) if (bands[s + 1] < bands[s]) bands[s] = bands[s + 1];
    this.maxGflops = maxGflops;
    this.backends = backends;
    this.models = models;
    this.maxVram = maxVram;
    this.maxAvail = maxAvail;
    this.dirty = false;
    this.loose = 0;
  }

  /** Adds an entry to the summary (exact for an insertion). */
  widen(e: ProviderEntry): void {
    if (this.dirty) return;
    const bands = this.bandMinPrice;
    for (let s = e.speedBand; s >= 0 && e.priceNum < bands[s]; s--) bands[s] = e.priceNum;
    if (e.gflops > this.maxGflops) this.maxGflops = e.gflops;
    this.backends |= e.backendBit;
    this.models |= e.modelMask;
    if (e.maxVramMiB > this.maxVram) this.maxVram = e.maxVramMiB;
    if (e.avail > this.maxAvail) this.maxAvail = e.avail;
  }

  /** An entry left: the summary stays a valid bound; recompute it after a few removals. */
  shrink(): void {
    if (++this.loose > 8) this.dirty = true;
  }

  /** Whether the chunk may hold a provider eligible for the job (never false when it does). */
  mayMatch(ctx: JobContext): boolean {
    if (this.dirty) this.summarise();
    return (
      this.maxAvail > 0 &&
      this.bandMinPrice[ctx.speedBand] <= ctx.maxPriceNum &&
      this.maxGflops >= ctx.requiredGflops &&
      (this.backends & ctx.backendMask) !== 0 &&
      this.maxVram >= ctx.minVramMiB &&
      (ctx.modelMask === -1 || (this.models & ctx.modelMask) !== 0)
    );
  }
}

export class SortedList {
  readonly chunks: Chunk[] = [];
  private count = 0;

  constructor(
    readonly name: string,
    /** Backend bit of every entry. */
    readonly backendBit: number,
    /** Normalised GPU model ('' for none / region lists). */
    readonly model: string,
    /** Every entry has a GPU of `model` with VRAM in [vramMin, vramMax). */
    readonly vramMin: number,
    readonly vramMax: number,
    readonly region: string,
  ) {}

  get size(): number {
    return this.count;
  }

  *entries(): IterableIterator<ProviderEntry> {
    for (const c of this.chunks) yield* c.items;
  }

  /** First chunk whose last entry does not rank before (key, peerId); `skip` is read at `skipKey`. */
  private chunkFor(key: number, peerId: string, skip?: ProviderEntry, skipKey = 0): number {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const items = chunks[mid].items;
      const m = items[items.length - 1];
      const mk = m === skip ? skipKey : m.sortKey;
      if (m !== skip && ranksBefore(mk, m.peerId, key, peerId)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private static lowerBound(items: ProviderEntry[], key: number, peerId: string): number {
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = items[mid];
      if (ranksBefore(m.sortKey, m.peerId, key, peerId)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // Result of locate(), kept in fields so a lookup allocates nothing.
  private foundChunk = 0;
  private foundIndex = 0;

  /** Finds `e`, placed at `key` (its sortKey field may already hold a new value): foundChunk/foundIndex. */
  private locate(e: ProviderEntry, key: number): void {
    const ci = this.chunkFor(key, e.peerId, e, key);
    const chunk = this.chunks[ci];
    if (chunk !== undefined) {
      const items = chunk.items;
      let lo = 0;
      let hi = items.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const m = items[mid];
        if (m === e) {
          lo = mid;
          break;
        }
        if (ranksBefore(m.sortKey, m.peerId, key, e.peerId)) lo = mid + 1;
        else hi = mid;
      }
      if (items[lo] === e) {
        this.foundChunk = ci;
        this.foundIndex = lo;
        return;
      }
    }
    throw new Error(`scheduler index corrupt: ${e.peerId} not at its place in ${this.name}`);
  }

  insert(e: ProviderEntry): void {
    const chunks = this.chunks;
    this.count++;
    if (chunks.length === 0) {
      chunks.push(new Chunk([e]));
      return;
    }
    let ci = this.chunkFor(e.sortKey, e.peerId);
    if (ci === chunks.length) ci--;
    const chunk = chunks[ci];
    const items = chunk.items;
    items.splice(SortedList.lowerBound(items, e.sortKey, e.peerId), 0, e);
    chunk.widen(e);
    if (items.length > CHUNK_MAX) {
      const half = items.length >> 1;
      const tail = new Chunk(items.slice(half));
      items.length = half;
      chunks.splice(ci + 1, 0, tail);
    }
  }

  /** Removes `e`, which is at the place of `key` (its sortKey when it was last placed). */
  remove(e: ProviderEntry, key: number): void {
    this.locate(e, key);
    const ci = this.foundChunk;
    const chunk = this.chunks[ci];
    chunk.items.splice(this.foundIndex, 1);
    chunk.shrink();
    this.count--;
    if (chunk.items.length === 0) this.chunks.splice(ci, 1);
  }

  /** Moves `e` from the place of `oldKey` to the place of its current sortKey. */
  reposition(e: ProviderEntry, oldKey: number): void {
    this.locate(e, oldKey);
    const ci = this.foundChunk;
    const i = this.foundIndex;
    const chunk = this.chunks[ci];
    const items = chunk.items;
    const key = e.sortKey;
    // The new place is still inside this chunk (after the previous chunk's last entry, before the next
    // chunk's first): shift within it (at most 64 pointers); the summary only needs e's new values.
    const prev = ci > 0 ? this.chunks[ci - 1].items[this.chunks[ci - 1].items.length - 1] : undefined;
    const next = ci + 1 < this.chunks.length ? this.chunks[ci + 1].items[0] : undefined;
    const afterPrev = prev === undefined || ranksBefore(prev.sortKey, prev.peerId, key, e.peerId);
    const beforeNext = next === undefined || ranksBefore(key, e.peerId, next.sortKey, next.peerId);
    if (afterPrev && beforeNext) {
      if (ranksBefore(key, e.peerId, oldKey, e.peerId)) {
        let t = i;
        while (t > 0 && ranksBefore(key, e.peerId, items[t - 1].sortKey, items[t - 1].peerId)) {
          items[t] = items[t - 1];
          t--;
        }
        items[t] = e;
      } else {
        let t = i;
        while (
          t + 1 < items.length &&
          ranksBefore(items[t + 1].sortKey, items[t + 1].peerId, key, e.peerId)
        ) {
          items[t] = items[t + 1];
          t++;
        }
        items[t] = e;
      }
      chunk.widen(e);
      return;
    }
    this.remove(e, oldKey);
    this.insert(e);
  }

  /** An entry changed in place without moving (price, speed, models): recompute its chunk later. */
  touch(e: ProviderEntry): void {
    this.locate(e, e.sortKey);
    this.chunks[this.foundChunk].dirty = true;
  }

  /** An entry gained free slots without moving: raise its chunk's bound. */
  raiseAvail(e: ProviderEntry): void {
    this.locate(e, e.sortKey);
    this.chunks[this.foundChunk].widen(e);
  }

  /** First chunk at or after `ci` that may hold an eligible entry (chunks.length when none). */
  seek(ci: number, ctx: JobContext): number {
    const chunks = this.chunks;
    while (ci < chunks.length && !chunks[ci].mayMatch(ctx)) ci++;
    return ci;
  }

  /** Consistency problems (for tests): order, sortKey >= key, sizes, and every summary a valid bound. */
  verify(): string[] {
    const problems: string[] = [];
    let prev: ProviderEntry | undefined;
    let n = 0;
    for (const c of this.chunks) {
      if (c.items.length === 0 || c.items.length > CHUNK_MAX)
        problems.push(`${this.name}: chunk size ${c.items.length}`);
      for (const e of c.items) {
        n++;
        if (e.sortKey < e.key) problems.push(`${this.name}: ${e.peerId} sortKey below key`);
        if (prev !== undefined && !ranksBefore(prev.sortKey, prev.peerId, e.sortKey, e.peerId)) {
          problems.push(`${this.name}: order broken at ${e.peerId}`);
        }
        prev = e;
        if (c.dirty) continue;
        const bad =
          c.maxAvail < e.avail ||
          c.maxGflops < e.gflops ||
          (c.backends & e.backendBit) !== e.backendBit ||
          (c.models & e.modelMask) !== e.modelMask ||
          c.maxVram < e.maxVramMiB ||
          c.bandMinPrice[e.speedBand] > e.priceNum;
        if (bad) problems.push(`${this.name}: chunk summary does not bound ${e.peerId}`);
      }
    }
    if (n !== this.count) problems.push(`${this.name}: size ${this.count} != ${n}`);
    return problems;
  }
}
