import type { JobSpec, TensorWire } from '#protocol';
import { compareOutputs, type Agreement } from './compare-outputs.js';

type CompareWithContext = (
  a: readonly TensorWire[],
  b: readonly TensorWire[],
  context?: { spec: JobSpec },
) => Agreement;

/**
 * Tolerance-aware comparison of two results of one job. compare-outputs.ts (H1a) takes the job's
 * spec as an optional third argument to scale its bounds with the op's size; this passes it.
 */
export function compareResults(
  a: readonly TensorWire[],
  b: readonly TensorWire[],
  context: { spec: JobSpec },
): Agreement {
  return (compareOutputs as CompareWithContext)(a, b, context);
}
