// The prepared job the constraint checks and the provider index's lists both read; its own file so
// that neither imports the other for it.
import type { JobRequest } from './types.js';

/** A job prepared for fast constraint checks. */
export interface JobContext {
  readonly job: JobRequest;
  readonly now: number;
  readonly k: number;
  readonly backendMask: number;
  /** Normalised allowed models, null when any. */
  readonly models: ReadonlySet<string> | null;
  readonly minVramMiB: number;
  readonly maxPrice: bigint;
  /** Number(maxPrice), for block bounds and a fast first comparison. */
  readonly maxPriceNum: number;
  /** Model bits of the allowlist in the index's numbering (-1 when any model goes). */
  readonly modelMask: number;
  /** GFLOP/s needed to finish workUnits by the deadline (Infinity when the deadline has passed). */
  readonly requiredGflops: number;
  /** speedBand(requiredGflops). */
  readonly speedBand: number;
  readonly excluded: ReadonlySet<string> | null;
  /** '' when the job has no preferred region. */
  readonly region: string;
  /** Score bonus for a provider in the preferred region (0 when the job names none). */
  readonly bonus: number;
  /** Whether stake gates placement (config.requireStake). */
  readonly requireStake: boolean;
  /** workUnits × the collateral ratio (scaled): a provider fits when this × its price <= its headroom. */
  readonly stakeWork: bigint;
  /** Number(stakeWork), for a fast first comparison. */
  readonly stakeWorkNum: number;
}
