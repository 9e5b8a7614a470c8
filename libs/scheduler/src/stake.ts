// The stake bound: a provider may take a job only when its usable stake covers a minimum plus the
// collateral ratio times the value it would then have in flight,
//   stake - frozen >= minStake + ceil((inFlight + workUnits × price) × stakePerValue).
// The ratio is kept as an integer numerator over STAKE_RATIO_SCALE, so the check is exact bigint
// arithmetic: for an integer left side, x >= ceil(v × n / S) holds exactly when x × S >= v × n.
import type { SchedulerConfig } from './types.js';

/** Denominator of the collateral ratio (the ratio is kept to 1e-6). */
export const STAKE_RATIO_SCALE = 1_000_000n;

const ratios = new WeakMap<SchedulerConfig, bigint>();

/** stakePerValue × STAKE_RATIO_SCALE, rounded (cached per config object). */
export function stakeRatio(config: SchedulerConfig): bigint {
  let r = ratios.get(config);
  if (r === undefined) {
    r = BigInt(Math.round(config.stakePerValue * Number(STAKE_RATIO_SCALE)));
    ratios.set(config, r);
  }
  return r;
}

/** (stake - frozen - minStake) × S: the collateral part of the headroom, fixed per advert. */
export function collateralScaled(stake: bigint, frozen: bigint, config: SchedulerConfig): bigint {
  return (stake - frozen - config.minStake) * STAKE_RATIO_SCALE;
}

/**
 * Scaled room left under the bound before a new job: (stake - frozen - minStake) × S - inFlight × n.
 * A job of value v fits exactly when v × n <= this.
 */
export function stakeHeadroom(
  stake: bigint,
  frozen: bigint,
  inFlight: bigint,
  config: SchedulerConfig,
): bigint {
  return collateralScaled(stake, frozen, config) - inFlight * stakeRatio(config);
}

/** Stake a provider needs to take a job of value `jobValue` with `inFlight` already out. */
export function requiredStake(inFlight: bigint, jobValue: bigint, config: SchedulerConfig): bigint {
  const scaled = (inFlight + jobValue) * stakeRatio(config);
  return config.minStake + (scaled + STAKE_RATIO_SCALE - 1n) / STAKE_RATIO_SCALE;
}
