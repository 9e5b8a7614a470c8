// @gpumesh/verification: tolerance-aware comparison of job results and offline-checkable evidence bundles.
export {
  FLOAT32_UNIT_ROUNDOFF,
  SAFETY_FACTOR,
  FLOAT_RELATIVE_L2_TOLERANCE,
  FLOAT_ABSOLUTE_TOLERANCE,
} from './tolerance.js';
export { compareOutputs, type CompareContext, type Agreement } from './compare.js';
export {
  buildEvidence,
  canonicalEvidence,
  evidenceHash,
  redactEvidence,
  withheldFrom,
  verifyEvidence,
  DEFAULT_EVIDENCE_MAX_WORK_UNITS,
  EvidenceBundleSchema,
  type ReferenceSource,
  type EvidenceBundle,
  type EvidenceVerification,
} from './evidence.js';
export { checkResultSanity, type SanityResult } from './sanity.js';
export {
  decideVerdict,
  verdictAction,
  type DecidedVerdict,
  type KnownResult,
  type Verdict,
  type VerdictAction,
  type VerdictBasis,
} from './verdict.js';
export { judgeTrainLoss, type TrainLosses } from './train-loss.js';
