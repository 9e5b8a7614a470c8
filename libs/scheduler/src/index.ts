// Public API of libs/scheduler (import from '@gpumesh/scheduler').
export type {
  Backend,
  GpuInfo,
  ProviderSnapshot,
  PriorityClass,
  JobRequest,
  PlacementResult,
} from './types.js';
export { createRng, type Rng } from './rng.js';
export { effectiveGflops } from './scoring.js';
export { FairQueue } from './fair-queue.js';
export type { Explanation } from './explain.js';
export { Scheduler } from './scheduler.js';
export { ProviderBreakers, type BreakerSnapshot, type LossResult } from './breaker.js';
export { ConcurrencyWindows, SLOW_START_INITIAL_WINDOW } from './slow-start.js';
