// Judging a training run by what it achieved. Two honest trainings of one job on different backends
// round differently at every optimizer step, and an ill-conditioned run (a large step, relu, a hard
// target) amplifies those differences until the trained weights are far apart, past any rounding
// bound (`MAX_RELATIVE_L2_BOUND`). What stays close is the loss each set of weights reaches on the
// job's own data: a result whose weights disagree with the coordinator's reference is wrong only
// when it trained the model clearly worse than the reference did.

/**
 * How much higher than the reference's a result's training loss may be and still count as the same
 * training (measured in bench/tolerance.bench.ts' train-drift figures, docs/verification.md).
 */
export const TRAIN_LOSS_RATIO = 1.25;
/**
 * Below this fraction of the untrained loss, losses count as equal (both runs fitted the data down
 * to float32 noise, where ratios mean nothing).
 */
export const TRAIN_LOSS_FLOOR_FRACTION = 1e-6;

export interface TrainLosses {
  /** The loss with the result's weights. */
  readonly candidate: number;
  /** The loss with the reference's weights. */
  readonly reference: number;
  /** The loss with the artifact's untrained weights. */
  readonly initial: number;
}

export type TrainLossVerdict =
  /** Trained as well as the reference (within the ratio, or both at the noise floor), or better. */
  | { readonly kind: 'agree'; readonly bound: number }
  /** Clearly worse than the reference: not an honest run of this job. */
  | { readonly kind: 'worse'; readonly bound: number; readonly reason: string }
  /** The reference's own loss is not finite: it cannot judge anything. */
  | { readonly kind: 'undecided'; readonly reason: string };

/** Whether a training result reached the reference's loss (`TRAIN_LOSS_RATIO`, `TRAIN_LOSS_FLOOR_FRACTION`). */
export function judgeTrainLoss(losses: TrainLosses): TrainLossVerdict {
  const { candidate, reference, initial } = losses;
  if (!Number.isFinite(reference) || reference < 0) {
    return { kind: 'undecided', reason: `the reference's training loss is ${reference}` };
  }
  const floor = Number.isFinite(initial) && initial > 0 ? TRAIN_LOSS_FLOOR_FRACTION * initial : 0;
  const bound = Math.max(reference * TRAIN_LOSS_RATIO, floor);
  if (Number.isFinite(candidate) && candidate <= bound) return { kind: 'agree', bound };
  return {
    kind: 'worse',
    bound,
    reason: `training loss ${candidate.toExponential(3)} over the bound ${bound.toExponential(3)} (reference ${reference.toExponential(3)}, untrained ${initial.toExponential(3)})`,
  };
}
