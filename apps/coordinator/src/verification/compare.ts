import type { JobSpec, TensorWire } from '@gpumesh/protocol';
import { compareOutputs, type Agreement } from './compare-outputs.js';

/** Tolerance-aware comparison of two results of one job: the bounds scale with the job's spec. */
export function compareResults(
  a: readonly TensorWire[],
  b: readonly TensorWire[],
  context: { spec: JobSpec },
): Agreement {
  return compareOutputs(a, b, context);
}
