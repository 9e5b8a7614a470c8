// Hard constraints: which providers may run a job at all. `violations` reports every failing reason (for
// "why no match"); `isEligible` is the early-exit version the placement loop uses. Both must agree.
import {
  ALL_BACKENDS_MASK,
  BACKEND_BITS,
  normalizeModel,
  type ProviderEntry,
} from './index/provider-entry.js';
import { speedBand } from './index/speed-band.js';
import { regionBonus } from './scoring.js';
import { stakeRatio } from './stake.js';
import type { JobContext } from './job-context.js';
import type { JobRequest, SchedulerConfig } from './types.js';

export type { JobContext } from './job-context.js';

export const EXCLUSION_REASONS = [
  'banned',
  'draining',
  'expired',
  'backend',
  'gpu-model',
  'vram',
  'price',
  'speed',
  'capacity',
  'excluded',
  'stake',
] as const;

export type ExclusionReason = (typeof EXCLUSION_REASONS)[number];

/** Bit of each reason in a violation mask. */
export const REASON_BIT: Readonly<Record<ExclusionReason, number>> = {
  banned: 1,
  draining: 2,
  expired: 4,
  backend: 8,
  'gpu-model': 16,
  vram: 32,
  price: 64,
  speed: 128,
  capacity: 256,
  excluded: 512,
  stake: 1024,
};

/** Work units (MFLOP) the provider gets through per millisecond at `gflops` is exactly `gflops`. */
export function requiredGflops(workUnits: bigint, deadlineAt: number, now: number): number {
  const ms = deadlineAt - now;
  if (!(ms > 0)) return Number.POSITIVE_INFINITY;
  return Number(workUnits) / ms;
}

export function makeJobContext(
  job: JobRequest,
  now: number,
  config: SchedulerConfig,
  modelMaskOf: (models: ReadonlySet<string> | null) => number = (m) => (m === null ? -1 : 0x7fffffff),
): JobContext {
  const k = job.redundancy;
  if (!Number.isInteger(k) || k < 1 || k > 3)
    throw new RangeError('redundancy must be an integer within 1..3');
  const req = job.requirements;
  let backendMask = 0;
  for (const b of req.backends ?? []) backendMask |= BACKEND_BITS[b] ?? 0;
  if (!req.backends || req.backends.length === 0) backendMask = ALL_BACKENDS_MASK;
  const models =
    req.gpuModels && req.gpuModels.length > 0 ? new Set(req.gpuModels.map(normalizeModel)) : null;
  const excluded = job.excludePeers && job.excludePeers.length > 0 ? new Set(job.excludePeers) : null;
  const region = job.region ?? '';
  const required = requiredGflops(job.workUnits, job.deadlineAt, now);
  const stakeWork = config.requireStake ? job.workUnits * stakeRatio(config) : 0n;
  return {
    job,
    now,
    k,
    backendMask,
    models,
    minVramMiB: req.minVramMiB ?? 0,
    maxPrice: job.maxPricePerUnit,
    maxPriceNum: Number(job.maxPricePerUnit),
    modelMask: modelMaskOf(models),
    requiredGflops: required,
    speedBand: speedBand(required),
    excluded,
    region,
    bonus: region === '' ? 0 : regionBonus(config.weights),
    requireStake: config.requireStake,
    stakeWork,
    stakeWorkNum: Number(stakeWork),
  };
}

/** Whether one of the provider's GPUs satisfies both the model allowlist and the VRAM floor. */
export function hasSuitableGpu(e: ProviderEntry, ctx: JobContext): boolean {
  const min = ctx.minVramMiB;
  const models = ctx.models;
  if (models === null) return min <= 0 || e.maxVramMiB >= min;
  if (min > 0 && e.maxVramMiB < min) return false;
  const gpus = e.gpus;
  for (let i = 0; i < gpus.length; i++) {
    const g = gpus[i];
    if (g.vramMiB >= min && models.has(g.model)) return true;
  }
  return false;
}

/** Relative margin within which the floating-point comparison defers to the exact one. */
const STAKE_FAST_MARGIN = 1e-9;

/**
 * Whether the provider's stake covers the job on top of what it has in flight (see stake.ts). A
 * floating-point comparison decides unless the two sides are within a relative 1e-9 of each other
 * (far above its rounding error); then the exact bigint comparison does.
 */
export function hasStakeFor(e: ProviderEntry, ctx: JobContext): boolean {
  if (!ctx.requireStake) return true;
  const need = ctx.stakeWorkNum * e.priceNum;
  const room = e.stakeHeadroomNum;
  const margin = STAKE_FAST_MARGIN * (Math.abs(need) + Math.abs(room));
  if (need + margin < room) return true;
  if (need - margin > room) return false;
  return ctx.stakeWork * e.price <= e.stakeHeadroom;
}

/** Every reason the provider cannot take the job, as a REASON_BIT mask (0 = eligible). */
export function violations(e: ProviderEntry, ctx: JobContext): number {
  let mask = 0;
  if (e.banned) mask |= REASON_BIT.banned;
  if (e.draining) mask |= REASON_BIT.draining;
  if (e.expiresAt <= ctx.now) mask |= REASON_BIT.expired;
  if ((e.backendBit & ctx.backendMask) === 0) mask |= REASON_BIT.backend;
  const models = ctx.models;
  let anyModel = true;
  if (models !== null) {
    anyModel = e.gpus.some((g) => models.has(g.model));
    if (!anyModel) mask |= REASON_BIT['gpu-model'];
  }
  if (ctx.minVramMiB > 0) {
    // VRAM is judged on the allowed GPUs when the provider has any, else on all of them.
    const pool = models !== null && anyModel ? e.gpus.filter((g) => models.has(g.model)) : e.gpus;
    if (!pool.some((g) => g.vramMiB >= ctx.minVramMiB)) mask |= REASON_BIT.vram;
  }
  if (e.price > ctx.maxPrice) mask |= REASON_BIT.price;
  if (!(e.gflops >= ctx.requiredGflops)) mask |= REASON_BIT.speed;
  if (e.avail <= 0) mask |= REASON_BIT.capacity;
  if (ctx.excluded !== null && ctx.excluded.has(e.peerId)) mask |= REASON_BIT.excluded;
  if (!hasStakeFor(e, ctx)) mask |= REASON_BIT.stake;
  return mask;
}

/** Early-exit equivalent of `violations(e, ctx) === 0`, for listed (not banned, not draining) entries. */
export function isEligible(e: ProviderEntry, ctx: JobContext): boolean {
  return (
    e.avail > 0 &&
    (e.priceNum < ctx.maxPriceNum || (e.priceNum === ctx.maxPriceNum && e.price <= ctx.maxPrice)) &&
    e.gflops >= ctx.requiredGflops &&
    (e.backendBit & ctx.backendMask) !== 0 &&
    e.expiresAt > ctx.now &&
    !e.banned &&
    !e.draining &&
    hasSuitableGpu(e, ctx) &&
    (ctx.excluded === null || !ctx.excluded.has(e.peerId)) &&
    hasStakeFor(e, ctx)
  );
}

export function reasonsOf(mask: number): ExclusionReason[] {
  return EXCLUSION_REASONS.filter((r) => (mask & REASON_BIT[r]) !== 0);
}
