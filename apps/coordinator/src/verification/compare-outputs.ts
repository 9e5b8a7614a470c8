// The coordinator's comparison of redundant results: a thin re-export of @gpumesh/verification, kept so its
// callers (dispatch, admin) import it from one place. Pass `{ spec }` as the third argument to get
// bounds that scale with the job (matmul inner dimension, model FLOPs, training steps).
export {
  compareOutputs,
  FLOAT_ABSOLUTE_TOLERANCE,
  FLOAT_RELATIVE_L2_TOLERANCE,
  type Agreement,
  type CompareContext,
} from '@gpumesh/verification';
