// Placement: the k best eligible providers from distinct operators, reading as few index entries as
// possible. Each candidate list is sorted by the provider's sort key, and the only job-dependent part of
// the score (the region bonus) is bounded, so a k-way merge over the candidate lists can stop as soon
// as the best remaining bound cannot beat the current k-th best (threshold algorithm).
//
// Two access paths; a small cached planner picks the cheaper one per requirement shape:
//   - region lists (every listed provider, split by region and backend, so the region bonus is exact
//     per list);
//   - fine buckets (backend x GPU model x VRAM tier) when the job's hard requirements select few of them.
// Buckets whose cheapest price or best speed cannot satisfy the job are skipped whole.
import { isEligible, type JobContext } from './constraints.js';
import type { ProviderEntry } from './index/provider-entry.js';
import type { ProviderIndex } from './index/provider-index.js';
import { ranksBefore, type SortedList } from './index/sorted-list.js';
import type { Rng } from './rng.js';
import { TopK } from './top-k.js';
import type { Placement, SchedulerConfig, Selection } from './types.js';

interface Plan {
  version: number;
  uses: number;
  lists: SortedList[];
  exactBonus: boolean;
}

const PLAN_REFRESH_USES = 2048;
/** Entries whose key fell below their place that one decision moves down (settles) at most. */
const MAX_SETTLE = 8;

/** Picks and caches the access path per requirement shape. */
export class Planner {
  private readonly plans = new Map<string, Plan>();

  constructor(private readonly index: ProviderIndex) {}

  lists(ctx: JobContext): { lists: SortedList[]; exactBonus: boolean } {
    const models = ctx.models === null ? '' : [...ctx.models].sort().join(',');
    const sig = `${ctx.backendMask}|${ctx.minVramMiB}|${models}`;
    let plan = this.plans.get(sig);
    if (plan === undefined || plan.version !== this.index.version || plan.uses >= PLAN_REFRESH_USES) {
      plan = this.makePlan(ctx);
      if (this.plans.size > 4096) this.plans.clear();
      this.plans.set(sig, plan);
    }
    plan.uses++;
    return plan;
  }

  private makePlan(ctx: JobContext): Plan {
    const buckets: SortedList[] = [];
    let inBuckets = 0;
    for (const b of this.index.buckets) {
      if ((b.backendBit & ctx.backendMask) === 0) continue;
      if (ctx.models !== null && !ctx.models.has(b.model)) continue;
      if (b.vramMax <= ctx.minVramMiB) continue;
      buckets.push(b);
      inBuckets += b.size;
    }
    const regions: SortedList[] = [];
    let inRegions = 0;
    for (const l of this.index.regionLists) {
      if ((l.backendBit & ctx.backendMask) === 0) continue;
      regions.push(l);
      inRegions += l.size;
    }
    // Merge cost ~ lists x entries read, and entries read ~ lists' size / candidates in them.
    const useBuckets = buckets.length * Math.max(1, inBuckets) < regions.length * Math.max(1, inRegions);
    return {
      version: this.index.version,
      uses: 0,
      lists: useBuckets ? buckets : regions,
      exactBonus: !useBuckets,
    };
  }
}

/**
 * Fills `top` with the best eligible providers; returns how many entries were examined.
 * `exactBonus`: each list is one region, so the region bonus is the same for the whole list.
 */
// Scratch state of scanLists, reused across calls (a decision allocates nothing per list). Each list
// has a cursor (chunk, offset) and the bound of its head entry.
const sLists: SortedList[] = [];
const sBonus: number[] = [];
const sChunk: number[] = [];
const sOff: number[] = [];
const sHead: ProviderEntry[] = [];
const sBound: number[] = [];
const sHeap: number[] = [];

function above(a: number, b: number): boolean {
  return ranksBefore(sBound[a], sHead[a].peerId, sBound[b], sHead[b].peerId);
}

function siftDown(i: number): void {
  const heap = sHeap;
  const n = heap.length;
  const x = heap[i];
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && above(heap[r], heap[l]) ? r : l;
    if (!above(heap[c], x)) break;
    heap[i] = heap[c];
    i = c;
  }
  heap[i] = x;
}

/**
 * Fills `top` with the best eligible providers; returns how many entries were examined.
 * `exactBonus`: each list is one region, so the region bonus is the same for the whole list.
 * A binary max-heap of lists keyed by the bound of each list's head (the head's sortKey, which is never
 * below its key, plus the list's region bonus bound) gives the next entry in log(lists) steps; chunks
 * that cannot hold an eligible provider are skipped whole. Entries examined whose key fell below their
 * place are reported in `stale` for the caller to settle.
 */
export function scanLists(
  lists: readonly SortedList[],
  exactBonus: boolean,
  ctx: JobContext,
  top: TopK,
  stale?: ProviderEntry[],
): number {
  sHeap.length = 0;
  let n = 0;
  for (const l of lists) {
    const ci = l.seek(0, ctx);
    if (ci >= l.chunks.length) continue;
    const b = exactBonus ? (ctx.bonus > 0 && l.region === ctx.region ? ctx.bonus : 0) : ctx.bonus;
    const head = l.chunks[ci].items[0];
    sLists[n] = l;
    sBonus[n] = b;
    sChunk[n] = ci;
    sOff[n] = 0;
    sHead[n] = head;
    sBound[n] = head.sortKey + b;
    sHeap.push(n);
    n++;
  }
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(i);
  let examined = 0;
  while (sHeap.length > 0) {
    const li = sHeap[0];
    if (sBound[li] < top.threshold) break;
    const e = sHead[li];
    const list = sLists[li];
    const bonus = sBonus[li];
    let ci = sChunk[li];
    let off = sOff[li] + 1;
    if (off >= list.chunks[ci].items.length) {
      ci = list.seek(ci + 1, ctx);
      off = 0;
    }
    if (ci < list.chunks.length) {
      const head = list.chunks[ci].items[off];
      sChunk[li] = ci;
      sOff[li] = off;
      sHead[li] = head;
      sBound[li] = head.sortKey + bonus;
    } else {
      const last = sHeap.pop() as number;
      if (sHeap.length > 0) sHeap[0] = last;
    }
    if (sHeap.length > 0) siftDown(0);
    examined++;
    if (stale !== undefined && e.key < e.sortKey && stale.length < MAX_SETTLE) stale.push(e);
    if (!isEligible(e, ctx)) continue;
    top.offer(e, exactBonus ? e.key + bonus : scoreFor(e, ctx));
  }
  sLists.length = 0;
  sHead.length = 0;
  return examined;
}

/** Final score of an eligible provider for the job. */
export function scoreFor(e: ProviderEntry, ctx: JobContext): number {
  return ctx.bonus > 0 && e.region === ctx.region ? e.key + ctx.bonus : e.key;
}

/**
 * With probability explorationShare, gives the lowest slot to a random eligible new provider (from an
 * operator not already chosen). Returns whether it did.
 */
export function explore(
  index: ProviderIndex,
  ctx: JobContext,
  top: TopK,
  rng: Rng,
  config: SchedulerConfig,
): boolean {
  if (config.explorationShare <= 0 || rng.next() >= config.explorationShare) return false;
  const pool = index.pool;
  if (pool.length === 0) return false;
  const replaced = top.full ? top.entries[top.entries.length - 1] : undefined;
  const limit = Math.min(pool.length, config.explorationScanLimit);
  const start = rng.int(pool.length);
  let pick: ProviderEntry | undefined;
  let seen = 0;
  for (let j = 0; j < limit; j++) {
    const e = pool[(start + j) % pool.length];
    if (!e.isNew(ctx.now, config) || !isEligible(e, ctx)) continue;
    let clash = false;
    for (const c of top.entries) {
      if (c !== replaced && c.operatorId === e.operatorId) clash = true;
    }
    if (clash || e === replaced) continue;
    seen++;
    if (rng.int(seen) === 0) pick = e;
  }
  if (pick === undefined) return false;
  if (replaced !== undefined) {
    top.entries.pop();
    top.scores.pop();
  }
  top.entries.push(pick);
  top.scores.push(scoreFor(pick, ctx));
  return true;
}

export function toSelection(top: TopK, explored: boolean, examined: number): Selection {
  const placements: Placement[] = top.entries.map((e, i) => ({
    peerId: e.peerId,
    operatorId: e.operatorId,
    score: top.scores[i],
    explored: explored && i === top.entries.length - 1,
  }));
  return { placements, ok: placements.length >= top.k, examined };
}
