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
  // Outputs by ref (read back or not) whose bytes hash alike are equal element for element, NaN and
  // Inf included: they agree under any tolerance, and 2 × 64 MiB need not be compared on the loop.
  if (identicalResults(a, b)) return exactAgreement();
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
    if (same) return exactAgreement();
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

/**
 * Whether every output of `a` has a namesake in `b` with the same dtype, shape and known SHA-256
 * (outputs by ref, read back or not): such results agree under any tolerance without a comparison.
 */
export function identicalResults(a: readonly Compared[], b: readonly Compared[]): boolean {
  return a.length > 0 && a.length === b.length && a.every((ta) => sameBytes(ta, b));
}

function exactAgreement(): Agreement {
  return {
    agree: true,
    maxRelativeL2: 0,
    maxAbs: 0,
    bound: { relativeL2: 0, absolute: 0 },
    margin: Number.POSITIVE_INFINITY,
    tensors: [],
  };
}

/** The SHA-256 of an output's bytes when it is known without hashing (an output by ref). */
function knownDigest(t: Compared): string | undefined {
  if (isTensorRef(t)) return t.sha256;
  const sha256 = (t as { sha256?: unknown }).sha256;
  return typeof sha256 === 'string' ? sha256 : undefined;
}

/** Whether `b` has an output named as `t` with the same dtype, shape and known bytes. */
function sameBytes(t: Compared, b: readonly Compared[]): boolean {
  const digest = knownDigest(t);
  const other = b.find((u) => u.name === t.name);
  return (
    digest !== undefined &&
    other !== undefined &&
    knownDigest(other) === digest &&
    other.dtype === t.dtype &&
    other.shape.join(',') === t.shape.join(',')
  );
}

/** Whether some output is still by ref (too large to have been read back for a check). */
export function unreadOutputs(outputs: readonly Compared[]): boolean {
  return outputs.some((t) => isTensorRef(t));
}
