// @gpumesh/verification: tolerance-aware comparison of job results and offline-checkable evidence bundles.
export * from './tolerance.js';
export * from './compare.js';
export * from './evidence.js';
export { checkResultSanity, type SanityResult, type SanityFailureCode } from './sanity.js';
export {
  CANARY_MISSED,
  REFERENCE_MISSED,
  UNDECIDED,
  clusterResults,
  decideVerdict,
  verdictAction,
  type DecidedVerdict,
  type KnownResult,
  type Verdict,
  type VerdictAction,
  type VerdictBasis,
  type VerdictInput,
} from './verdict.js';
export {
  TRAIN_LOSS_FLOOR_FRACTION,
  TRAIN_LOSS_RATIO,
  judgeTrainLoss,
  type TrainLosses,
  type TrainLossVerdict,
} from './train-loss.js';
