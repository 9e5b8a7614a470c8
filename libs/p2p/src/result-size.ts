// How large an honest result frame for an offered job can be, decided from the offered spec alone,
// before anything is read: the cap a coordinator reads the result with and reserves in its budget.
import {
  BYTES_PER_ELEMENT,
  MAX_INPUT_TENSORS,
  MAX_TENSOR_NAME_LENGTH,
  MAX_TENSOR_RANK,
  jobSampleCount,
  matmulDims,
  tensorByteLength,
  type JobSpec,
} from '@gpumesh/protocol';

import { DATA_FRAME_MAX_BYTES } from './frames.js';

const KIB = 1024;
const MIB = 1024 * KIB;

/**
 * Room in a result frame for everything but the tensors' data: the frame's own JSON, the signed
 * receipt (~1 KiB), a batch index, or an `error` frame instead (code and message of ≤ 1 KiB each).
 */
export const RESULT_FRAME_SLACK_BYTES = 16 * KIB;
/** JSON around one output tensor's data: name, dtype, shape of up to MAX_TENSOR_RANK dims, keys. */
export const RESULT_TENSOR_OVERHEAD_BYTES = MAX_TENSOR_NAME_LENGTH + MAX_TENSOR_RANK * 17 + 128;
/** Decoded output bytes an inference may return at least, whatever its inputs (labels, scores). */
export const INFERENCE_OUTPUT_MIN_BYTES = 1 * MIB;
/** Decoded output bytes an inference may return per decoded input byte (segmentation maps, decoders). */
export const INFERENCE_OUTPUT_BYTES_PER_INPUT_BYTE = 16;
/** Decoded output bytes an inference may return per sample of its batch. */
export const INFERENCE_OUTPUT_BYTES_PER_SAMPLE = 1 * MIB;
/** Most decoded output bytes of any inference (its frame then stays below DATA_FRAME_MAX_BYTES). */
export const INFERENCE_OUTPUT_MAX_BYTES = 64 * MIB;
/**
 * Most decoded bytes of trained weights when the model's size is not known (the spec names the model
 * by hash only); with `modelBytes` the weights are bounded by the model itself.
 */
export const TRAIN_OUTPUT_MAX_BYTES = 64 * MIB;

/** Length of the base64 text of `bytes` bytes. */
export function base64Length(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}

export interface ResultSizeHints {
  /** Bytes of the model artifact (weights and topology) a `train` job starts from, when known. */
  readonly modelBytes?: number;
}

/** Decoded output bytes and output tensor count an honest provider may return for `spec`. */
export function expectedOutputs(
  spec: JobSpec,
  hints: ResultSizeHints = {},
): { readonly bytes: number; readonly tensors: number } {
  switch (spec.kind) {
    case 'matmul': {
      const a = spec.inputs.find((t) => t.name === 'a');
      const b = spec.inputs.find((t) => t.name === 'b');
      // A valid matmul spec always has both; a spec without them has no honest result but an error.
      if (a === undefined || b === undefined) return { bytes: 0, tensors: 0 };
      const { m, n } = matmulDims(a.shape, b.shape, spec.params.transposeA, spec.params.transposeB);
      return { bytes: m * n * BYTES_PER_ELEMENT[a.dtype], tensors: 1 };
    }
    case 'inference': {
      const inputBytes = spec.inputs.reduce((n, t) => n + tensorByteLength(t.dtype, t.shape), 0);
      const allowance = Math.max(
        INFERENCE_OUTPUT_MIN_BYTES,
        inputBytes * INFERENCE_OUTPUT_BYTES_PER_INPUT_BYTE,
        jobSampleCount(spec) * INFERENCE_OUTPUT_BYTES_PER_SAMPLE,
      );
      return {
        bytes: Math.min(allowance, INFERENCE_OUTPUT_MAX_BYTES),
        tensors: spec.outputs?.length ?? MAX_INPUT_TENSORS,
      };
    }
    case 'train': {
      const known = hints.modelBytes;
      const bytes =
        known !== undefined && Number.isFinite(known) && known >= 0
          ? Math.min(known, TRAIN_OUTPUT_MAX_BYTES)
          : TRAIN_OUTPUT_MAX_BYTES;
      return { bytes, tensors: MAX_INPUT_TENSORS };
    }
  }
}

/**
 * The largest result frame (in bytes, JSON included) an honest provider sends for `spec`: its
 * outputs as base64 plus `RESULT_TENSOR_OVERHEAD_BYTES` a tensor plus `RESULT_FRAME_SLACK_BYTES`,
 * never above `DATA_FRAME_MAX_BYTES`. Exact for matmul (shape and dtype are known); for inference and
 * training an allowance derived from the inputs, the batch and the declared outputs (see the
 * constants above).
 */
export function expectedResultFrameBytes(spec: JobSpec, hints: ResultSizeHints = {}): number {
  const { bytes, tensors } = expectedOutputs(spec, hints);
  const frame = base64Length(bytes) + tensors * RESULT_TENSOR_OVERHEAD_BYTES + RESULT_FRAME_SLACK_BYTES;
  return Math.min(frame, DATA_FRAME_MAX_BYTES);
}
