// The index's view of one provider: the advert flattened into monomorphic fields, plus the engine's own
// bookkeeping (reserved and busy slots, available capacity, sort key, where it is listed).
import { effectiveGflops, providerKey, staticScore } from '../scoring.js';
import { collateralScaled, stakeRatio } from '../stake.js';
import type { Backend, ProviderSnapshot, SchedulerConfig } from '../types.js';
import { speedBand } from './speed-band.js';

export const BACKEND_BITS: Readonly<Record<Backend, number>> = {
  'tensorflow-gpu': 1,
  tensorflow: 2,
  wasm: 4,
  cpu: 8,
  // A backend name earns no GPU-class placement: that comes only from the advert's GPU list (only
  // tensorflow-gpu and webgpu may list one; its speed is credited as measured, never as claimed). A
  // webgpu provider lists its hardware adapter; on a software adapter (llvmpipe) it lists none.
  webgpu: 16,
};
export const ALL_BACKENDS_MASK = 31;

/** Subtracted from the sort key of a provider without a free slot. */
export const FULL_OFFSET = 1e6;

export interface GpuSlot {
  /** Normalised (trimmed, lower case). */
  model: string;
  vramMiB: number;
}

export function normalizeModel(model: string): string {
  return model.trim().toLowerCase();
}

/**
 * What an entry knows of a list it is in (the index's SortedList). Declared here, where it is used, so
 * that the entry and the list, which refer to each other, do not import each other.
 */
export interface EntryList {
  readonly name: string;
  entries(): IterableIterator<ProviderEntry>;
  remove(e: ProviderEntry, key: number): void;
  reposition(e: ProviderEntry, oldKey: number): void;
  touch(e: ProviderEntry): void;
  raiseAvail(e: ProviderEntry): void;
}

export class ProviderEntry {
  readonly peerId: string;
  snapshot!: ProviderSnapshot;
  operatorId = '';
  backend: Backend = 'cpu';
  backendBit = 0;
  gpus: GpuSlot[] = [];
  maxVramMiB = 0;
  /** Speed placement credits it with: effectiveGflops (min of advert and measured or probation). */
  gflops = 0;
  /** speedBand(gflops), cached for block summaries. */
  speedBand = 0;
  price = 0n;
  /** Number(price): for block bounds and a fast first comparison (rounding is monotonic). */
  priceNum = 0;
  /** OR of the model bits of its GPUs (see ProviderIndex.modelBit). */
  modelMask = 0;
  slots = 0;
  freeSlots = 0;
  reputation = 0;
  /** '' when the provider names no region. */
  region = '';
  banned = false;
  draining = false;
  expiresAt = 0;
  firstSeenAt = 0;
  completedJobs = Number.POSITIVE_INFINITY;
  /** Slots held by offers not yet confirmed. */
  held = 0;
  /** Slots running jobs the engine knows about. */
  busy = 0;
  /** Slots a new offer may take: min(freeSlots - held, slots - held - busy), at least 0. */
  avail = 0;
  /** Bonded stake and the part of it a pending slash froze (base units). */
  stake = 0n;
  frozenStake = 0n;
  /** Value in flight the advert's source reported (outside the reservation book). */
  externalInFlight = 0n;
  /** Value of the reservations (held and busy) the engine's book holds here (kept only when stake gates). */
  reservedValue = 0n;
  /** (stake - frozen - minStake) × STAKE_RATIO_SCALE, set with the advert (see stake.ts). */
  collateralScaled = 0n;
  /** Scaled room under the stake bound (see stake.ts): a job of value v fits when v × ratio <= it. */
  stakeHeadroom = 0n;
  /** Number(stakeHeadroom), for a fast first comparison. */
  stakeHeadroomNum = 0;
  staticPart = 0;
  /** Score before the region bonus: static part + load. */
  key = 0;
  /**
   * Key the entry is placed at in the index's lists, ordered by (sortKey desc, peerId asc). Never below
   * `key`: a reservation lowers `key` without moving the entry (the stale, higher place is still a valid
   * upper bound for the scan); the entry is moved when its key rises above it or when a scan settles it.
   */
  sortKey = 0;
  /** Lists (buckets) the entry is currently in. */
  lists: EntryList[] = [];
  /** Position in the exploration pool, -1 when not in it. */
  poolIndex = -1;

  constructor(peerId: string) {
    this.peerId = peerId;
  }

  /** Copies an advert in; returns nothing (the index decides what to re-list). */
  assign(s: ProviderSnapshot, config: SchedulerConfig, modelBit: (model: string) => number = () => 0): void {
    this.snapshot = s;
    this.operatorId = s.operatorId;
    this.backend = s.backend;
    this.backendBit = BACKEND_BITS[s.backend] ?? 0;
    const gpus: GpuSlot[] = [];
    let maxVram = 0;
    let modelMask = 0;
    for (const g of s.gpus) {
      const vram = Number.isFinite(g.vramMiB) ? g.vramMiB : 0;
      const model = normalizeModel(g.model);
      modelMask |= modelBit(model);
      gpus.push({ model, vramMiB: vram });
      if (vram > maxVram) maxVram = vram;
    }
    this.gpus = gpus;
    this.maxVramMiB = maxVram;
    this.modelMask = modelMask;
    this.gflops = effectiveGflops(s, config.probationGflops); // the measured figure, not the claim
    this.speedBand = speedBand(this.gflops);
    this.price = s.pricePerUnit;
    this.priceNum = Number(s.pricePerUnit);
    this.slots = Math.max(0, Math.floor(s.slots));
    this.freeSlots = Math.max(0, Math.floor(s.freeSlots));
    this.reputation = s.reputation;
    this.region = s.region ?? '';
    this.banned = s.banned;
    this.draining = s.draining;
    this.expiresAt = s.expiresAt;
    this.firstSeenAt = s.firstSeenAt;
    this.completedJobs = s.completedJobs ?? Number.POSITIVE_INFINITY;
    this.stake = s.stake;
    this.frozenStake = s.frozenStake ?? 0n;
    this.externalInFlight = s.inFlightValue;
    if (config.requireStake) this.collateralScaled = collateralScaled(this.stake, this.frozenStake, config);
    this.staticPart = staticScore(s, config);
    this.recompute(config);
  }

  setUsage(held: number, busy: number, config: SchedulerConfig, reservedValue = this.reservedValue): void {
    this.held = held;
    this.busy = busy;
    this.reservedValue = reservedValue;
    this.recompute(config);
  }

  /** Value in flight: what the advert's source reported plus the book's reservations. */
  get inFlight(): bigint {
    return this.externalInFlight + this.reservedValue;
  }

  private recompute(config: SchedulerConfig): void {
    if (config.requireStake) {
      this.stakeHeadroom = this.collateralScaled - this.inFlight * stakeRatio(config);
      this.stakeHeadroomNum = Number(this.stakeHeadroom);
    }
    this.avail = Math.max(0, Math.min(this.freeSlots - this.held, this.slots - this.held - this.busy));
    // A full provider sinks below every provider with a free slot once settled (its blocks are then
    // skipped whole); the offset never reaches a score, since only providers with a free slot are eligible.
    this.key =
      providerKey(this.staticPart, this.avail, this.slots, config.weights) -
      (this.avail > 0 ? 0 : FULL_OFFSET);
  }

  /** Listed in the buckets at all (banned and draining providers are kept only for explain). */
  get listable(): boolean {
    return !this.banned && !this.draining;
  }

  /** New providers get the exploration share. */
  isNew(now: number, config: SchedulerConfig): boolean {
    return (
      this.completedJobs < config.explorationMaxCompletedJobs ||
      now - this.firstSeenAt < config.explorationWindowMs
    );
  }
}
