// Scoring policy: a weighted sum of components each normalised to 0..1. Everything that does not depend
// on the job (price, reputation, speed, load, latency) is folded into one number per provider, the
// index's sort key; the only job-dependent part is the region bonus, which is bounded, so the index can
// stop scanning as soon as no remaining provider can beat the current k-th best.
import type { SchedulerConfig, ScoreWeights } from './types.js';

export const DEFAULT_WEIGHTS: ScoreWeights = {
  price: 0.35,
  reputation: 0.25,
  speed: 0.2,
  load: 0.1,
  locality: 0.1,
};

export const DEFAULT_CONFIG: SchedulerConfig = {
  weights: DEFAULT_WEIGHTS,
  referencePricePerUnit: 100n,
  referenceGflops: 1000,
  // The library believes adverts by default; the coordinator sets its CAPACITY_PROBATION_GFLOPS.
  probationGflops: Number.POSITIVE_INFINITY,
  referenceLatencyMs: 50,
  explorationShare: 0.05,
  explorationMaxCompletedJobs: 10,
  explorationWindowMs: 24 * 3600_000,
  explorationScanLimit: 256,
  reservationTtlMs: 30_000,
  reconcileGraceMs: 10_000,
  seed: 1,
  requireStake: false,
  minStake: 0n,
  stakePerValue: 1,
};

export interface SchedulerOptions extends Partial<Omit<SchedulerConfig, 'weights'>> {
  weights?: Partial<ScoreWeights>;
}

/** Fills in defaults and checks ranges. */
export function resolveConfig(options: SchedulerOptions = {}): SchedulerConfig {
  const weights: ScoreWeights = { ...DEFAULT_WEIGHTS, ...options.weights };
  for (const [name, w] of Object.entries(weights)) {
    if (!Number.isFinite(w) || w < 0) throw new RangeError(`weight ${name} must be a finite number >= 0`);
  }
  const config: SchedulerConfig = { ...DEFAULT_CONFIG, ...options, weights };
  if (!(config.explorationShare >= 0 && config.explorationShare <= 1)) {
    throw new RangeError('explorationShare must be within 0..1');
  }
  if (config.referencePricePerUnit <= 0n) throw new RangeError('referencePricePerUnit must be > 0');
  if (!(config.referenceGflops > 0)) throw new RangeError('referenceGflops must be > 0');
  if (!(config.probationGflops > 0)) throw new RangeError('probationGflops must be > 0 (Infinity: none)');
  if (!(config.referenceLatencyMs > 0)) throw new RangeError('referenceLatencyMs must be > 0');
  if (!(config.reservationTtlMs > 0)) throw new RangeError('reservationTtlMs must be > 0');
  if (config.minStake < 0n) throw new RangeError('minStake must be >= 0');
  if (!(Number.isFinite(config.stakePerValue) && config.stakePerValue >= 0)) {
    throw new RangeError('stakePerValue must be a finite number >= 0');
  }
  return config;
}

/** ref / (ref + price): 1 for free, 0.5 at the reference price, towards 0 for expensive. */
export function priceScore(price: bigint, referencePrice: bigint): number {
  const p = Number(price);
  const ref = Number(referencePrice);
  return p <= 0 ? 1 : ref / (ref + p);
}

/** g / (g + ref): 0 for nothing, 0.5 at the reference speed, towards 1 for fast. */
export function speedScore(gflops: number, referenceGflops: number): number {
  return gflops <= 0 ? 0 : gflops / (gflops + referenceGflops);
}

/**
 * The speed placement credits a provider with (GFLOP/s): what it advertised, but never more than the
 * coordinator measured, nor, until it was measured, more than `probationGflops`. 0 for a speed that
 * is not a finite positive number.
 */
export function effectiveGflops(
  p: { gflops: number; measuredGflops?: number },
  probationGflops: number,
): number {
  const advertised = Number.isFinite(p.gflops) && p.gflops > 0 ? p.gflops : 0;
  const measured = p.measuredGflops;
  if (measured === undefined) return Math.min(advertised, probationGflops);
  return Number.isFinite(measured) && measured > 0 ? Math.min(advertised, measured) : 0;
}

/** ref / (ref + latency); unknown latency scores 0.5. */
export function latencyScore(latencyMs: number | undefined, referenceLatencyMs: number): number {
  if (latencyMs === undefined || !Number.isFinite(latencyMs)) return 0.5;
  return latencyMs <= 0 ? 1 : referenceLatencyMs / (referenceLatencyMs + latencyMs);
}

/** Fraction of slots free: spreads load over providers. */
export function loadScore(available: number, slots: number): number {
  return slots > 0 ? Math.max(0, Math.min(1, available / slots)) : 0;
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.max(0, Math.min(1, x)) : 0;
}

/** The job-independent part of the score except load (changes only when the advert changes). */
export function staticScore(
  p: {
    pricePerUnit: bigint;
    reputation: number;
    gflops: number;
    measuredGflops?: number;
    latencyMs?: number;
  },
  config: SchedulerConfig,
): number {
  const w = config.weights;
  return (
    w.price * priceScore(p.pricePerUnit, config.referencePricePerUnit) +
    w.reputation * clamp01(p.reputation) +
    w.speed * speedScore(effectiveGflops(p, config.probationGflops), config.referenceGflops) +
    w.locality * 0.5 * latencyScore(p.latencyMs, config.referenceLatencyMs)
  );
}

/** Sort key of a provider in the index: static part plus load. */
export function providerKey(staticPart: number, available: number, slots: number, w: ScoreWeights): number {
  return staticPart + w.load * loadScore(available, slots);
}

/** Bonus for a provider in the job's preferred region (the other half of locality). */
export function regionBonus(weights: ScoreWeights): number {
  return weights.locality * 0.5;
}
