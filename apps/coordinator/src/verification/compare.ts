import {
  isTensorRef,
  type DecodedTensor,
  type JobSpec,
  type TensorRef,
  type TensorWire,
} from '@gpumesh/protocol';
import { compareOutputs, type Agreement } from './compare-outputs.js';

/** An output as compared: inline, decoded from the tensor store, or still by ref (too large to read). */
type Compared = TensorWire | DecodedTensor | TensorRef;
type Loaded = TensorWire | DecodedTensor;

/** Why two results with outputs by ref that were not read back were not compared within tolerance. */
export const UNREAD_OUTPUTS_REASON = 'outputs by ref beyond RESULT_CHECK_MAX_BYTES differ in their bytes';

/**
 * Tolerance-aware comparison of two results of one job: the bounds scale with the job's spec.
 * Outputs still by ref (not read back: larger than RESULT_CHECK_MAX_BYTES) agree only bit for bit
 * (same SHA-256); otherwise they disagree with UNREAD_OUTPUTS_REASON, which a judge must treat as
 * undecided, never as proof (see `unreadOutputs`).
 */
export function compareResults(
  a: readonly Compared[],
  b: readonly Compared[],
  context: { spec: JobSpec },
): Agreement {
  if (unreadOutputs(a) || unreadOutputs(b)) {
    const same =
      a.length === b.length &&
      a.every((ta) => {
        const tb = b.find((t) => t.name === ta.name);
        if (tb === undefined) return false;
        if (isTensorRef(ta) || isTensorRef(tb)) {
          return isTensorRef(ta) && isTensorRef(tb) && ta.sha256 === tb.sha256;
        }
        return compareOutputs([ta], [tb], context).agree;
      });
    if (same) {
      return {
        agree: true,
        maxRelativeL2: 0,
        maxAbs: 0,
        bound: { relativeL2: 0, absolute: 0 },
        margin: Number.POSITIVE_INFINITY,
        tensors: [],
      };
    }
    return {
      agree: false,
      reason: UNREAD_OUTPUTS_REASON,
      maxRelativeL2: Number.NaN,
      maxAbs: Number.NaN,
      bound: { relativeL2: 0, absolute: 0 },
      margin: 0,
      tensors: [],
    };
  }
  return compareOutputs(a as readonly Loaded[], b as readonly Loaded[], context);
}

/** Whether some output is still by ref (too large to have been read back for a check). */
export function unreadOutputs(outputs: readonly Compared[]): boolean {
  return outputs.some((t) => isTensorRef(t));
}
