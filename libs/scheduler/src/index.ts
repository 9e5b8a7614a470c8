// Public API of libs/scheduler (import from '@gpumesh/scheduler').
export * from './types.js';
export { createRng, type Rng } from './rng.js';
export {
  DEFAULT_CONFIG,
  DEFAULT_WEIGHTS,
  resolveConfig,
  priceScore,
  speedScore,
  effectiveGflops,
  latencyScore,
  loadScore,
  staticScore,
  type SchedulerOptions,
} from './scoring.js';
export {
  EXCLUSION_REASONS,
  REASON_BIT,
  makeJobContext,
  requiredGflops,
  violations,
  isEligible,
  reasonsOf,
  type ExclusionReason,
  type JobContext,
} from './constraints.js';
export { ProviderEntry, normalizeModel, type GpuSlot } from './index/provider-entry.js';
export { ProviderIndex, VRAM_TIERS, vramTier, type IndexStats } from './index/provider-index.js';
export { naiveSelect } from './naive.js';
export { STAKE_RATIO_SCALE, requiredStake, stakeHeadroom, stakeRatio } from './stake.js';
export {
  ReservationBook,
  reservationValue,
  type Reservation,
  type ReservationState,
  type ReconcileResult,
  type Usage,
  type UsageListener,
} from './reservations.js';
export { FairQueue, DEFAULT_CLASS_WEIGHTS, type FairQueueItem, type FairQueueOptions } from './fair-queue.js';
export { explainJob, type Explanation, type Suggestion, type SuggestionKind } from './explain.js';
export { Scheduler, type SelectOptions, type TickResult, type ProviderUsage } from './scheduler.js';
export {
  BREAKER_BASE_COOLDOWN_MS,
  BREAKER_LOSSES_TO_OPEN,
  BREAKER_MAX_COOLDOWN_MS,
  BREAKER_PROBE_TIMEOUT_MS,
  BREAKER_WINDOW_MS,
  DEFAULT_BREAKER_OPTIONS,
  ProviderBreakers,
  type BreakerOptions,
  type BreakerSnapshot,
  type BreakerState,
  type LossResult,
} from './breaker.js';
export {
  ConcurrencyWindows,
  DEFAULT_SLOW_START_OPTIONS,
  SLOW_START_INITIAL_WINDOW,
  SLOW_START_MAX_WINDOW,
  type SlowStartOptions,
} from './slow-start.js';
