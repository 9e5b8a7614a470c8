// Input and output types of the placement engine. Kept structurally compatible with the wire types
// of libs/protocol (adverts, job requests), but defined here so the engine depends on nothing.

/** Compute backends a provider can run jobs on, best first. */
export type Backend = 'tensorflow-gpu' | 'webgpu' | 'tensorflow' | 'wasm' | 'cpu';

export const BACKENDS: readonly Backend[] = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

export interface GpuInfo {
  model: string;
  vramMiB: number;
  computeCapability?: string;
}

/** What the coordinator knows about one provider (from its latest signed advert). */
export interface ProviderSnapshot {
  peerId: string;
  operatorId: string;
  backend: Backend;
  gpus: GpuInfo[];
  /**
   * Advertised throughput, GFLOP/s (1 work unit = 1 MFLOP, so `gflops` work units per millisecond):
   * a claim. Placement uses `effectiveGflops` (scoring.ts): min(advert, measured), or min(advert,
   * probationGflops) until the provider's speed was measured.
   */
  gflops: number;
  /** GFLOP/s the coordinator measured itself (timed known-answer job); absent until measured. */
  measuredGflops?: number;
  /** Price per work unit, in base units of the payment token. */
  pricePerUnit: bigint;
  slots: number;
  /** Free slots as the provider last reported them. */
  freeSlots: number;
  /** 0..1 */
  reputation: number;
  region?: string;
  latencyMs?: number;
  banned: boolean;
  draining: boolean;
  /** When the advert expires (ms since epoch). */
  expiresAt: number;
  /** When the coordinator first saw this provider (ms since epoch). */
  firstSeenAt: number;
  /** Completed jobs so far; providers with few are "new" and get an exploration share. */
  completedJobs?: number;
  /** Bonded stake of the provider's operator (its staking address), base units of the token. */
  stake: bigint;
  /** Part of `stake` frozen by a pending slash: not usable as collateral (0 when absent). */
  frozenStake?: bigint;
  /**
   * Base units of work offered to or running on the provider that this engine's reservation book does
   * not hold (Σ workUnits × price over such open attempts); the engine adds its own reservations.
   */
  inFlightValue: bigint;
}

export type PriorityClass = 'high' | 'normal' | 'low';

export const PRIORITY_CLASSES: readonly PriorityClass[] = ['high', 'normal', 'low'];

export interface JobRequirements {
  /** One GPU of the provider must have at least this much VRAM. */
  minVramMiB?: number;
  /** Allowed GPU models (case-insensitive); the GPU that satisfies minVramMiB must be one of them. */
  gpuModels?: string[];
  /** Allowed backends; all when absent or empty. */
  backends?: Backend[];
}

export interface JobRequest {
  jobId: string;
  accountId: string;
  priority: PriorityClass;
  /** Work units (1 unit = 1 MFLOP). */
  workUnits: bigint;
  requirements: JobRequirements;
  maxPricePerUnit: bigint;
  /** Number of distinct-operator providers to run the job on (1..3). */
  redundancy: number;
  /** The job must finish by then (ms since epoch). */
  deadlineAt: number;
  /** Preferred region (soft: a scoring bonus, not a constraint). */
  region?: string;
  /** Providers that already failed this job. */
  excludePeers?: string[];
  /**
   * Providers to place the job on instead of the best ones: taken when there are exactly
   * `redundancy` of them, of distinct operators, and every one is eligible now (free slot, price,
   * not banned or excluded...); otherwise ignored and the job is placed as usual.
   */
  preferPeers?: string[];
  /**
   * Until then (ms since epoch), preferred providers that lack nothing but a free slot are waited
   * for: nothing is placed (not ok, so the caller waits for capacity) instead of placing elsewhere.
   */
  preferUntil?: number;
  /** `preferPeers` are the only providers the job may run on: it waits for them instead (no fallback). */
  pinPeers?: boolean;
}

/** Scoring weights; each component is normalised to 0..1. */
export interface ScoreWeights {
  price: number;
  reputation: number;
  speed: number;
  load: number;
  locality: number;
}

export interface SchedulerConfig {
  weights: ScoreWeights;
  /** Price that scores 0.5 on the price component (score = ref / (ref + price)). */
  referencePricePerUnit: bigint;
  /** GFLOP/s that scores 0.5 on the speed component (score = g / (g + ref)). */
  referenceGflops: number;
  /**
   * The speed a provider whose speed was not measured yet is credited with at most (scoring and
   * deadline feasibility): an advert is a claim, not a figure. Infinity believes adverts.
   */
  probationGflops: number;
  /** Latency that scores 0.5 on the latency half of locality. */
  referenceLatencyMs: number;
  /** Share (0..1) of decisions in which one slot goes to a new provider. */
  explorationShare: number;
  /** A provider with fewer completed jobs than this is new. */
  explorationMaxCompletedJobs: number;
  /** A provider first seen less than this long ago is new. */
  explorationWindowMs: number;
  /** At most this many entries of the new-provider pool are examined per exploring decision. */
  explorationScanLimit: number;
  /** How long an offer's reservation is held before it is released by itself. */
  reservationTtlMs: number;
  /** A busy slot confirmed less than this long ago survives a reconcile that does not list it. */
  reconcileGraceMs: number;
  /** PRNG seed. */
  seed: number;
  /**
   * Stake gates placement: a provider takes a job only when
   * stake - frozen >= minStake + ceil((inFlight + workUnits × price) × stakePerValue).
   */
  requireStake: boolean;
  /** Stake (base units) every provider needs before any job. */
  minStake: bigint;
  /** Collateral ratio: stake needed per base unit of work in flight (kept to 1e-6). */
  stakePerValue: number;
}

/** One chosen provider. */
export interface Placement {
  peerId: string;
  operatorId: string;
  score: number;
  /** Chosen by the exploration share rather than by score. */
  explored: boolean;
}

export interface Selection {
  placements: Placement[];
  /** Whether `redundancy` distinct operators were found. */
  ok: boolean;
  /** Provider entries examined (a measure of the work the decision did). */
  examined: number;
}

export interface PlacementResult extends Selection {
  jobId: string;
  /** Reservation expiry (ms) when ok; the offers must be confirmed before then. */
  reservedUntil?: number;
}
