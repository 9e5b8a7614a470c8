import { z } from 'zod';

import { MAX_REF_TENSOR_BYTES, MAX_TENSOR_RANK } from './constants.js';
import { Sha256HexSchema } from './primitives.js';
import {
  BYTES_PER_ELEMENT,
  DTypeSchema,
  ShapeSchema,
  TensorNameSchema,
  TensorWireSchema,
  type DType,
  type TensorWire,
} from './tensor.js';

const REF_PATTERN = /^sha256:[0-9a-f]{64}$/;

/**
 * Byte length of a `dtype` tensor of `shape`, or `Infinity` once it passes `MAX_REF_TENSOR_BYTES`
 * (`tensorByteLength` stops counting at the inline cap, 16 MiB).
 */
export function refTensorByteLength(dtype: DType, shape: readonly number[]): number {
  let bytes = BYTES_PER_ELEMENT[dtype];
  for (const d of shape) {
    bytes *= d;
    if (bytes > MAX_REF_TENSOR_BYTES) return Number.POSITIVE_INFINITY;
  }
  return bytes;
}

const TensorRefObject = z.strictObject({
  name: TensorNameSchema,
  ref: z.string({ error: 'expected "sha256:<64 hex digits>"' }).regex(REF_PATTERN, {
    error: 'expected "sha256:<64 hex digits>"',
  }),
  dtype: DTypeSchema,
  shape: ShapeSchema,
  sha256: Sha256HexSchema,
});

/**
 * A job input named by ref: a tensor uploaded to the coordinator (`POST /v1/tensors`), with its
 * dtype, shape and the SHA-256 of its little-endian element bytes (`ref` is `sha256:<sha256>`).
 * Agents fetch the bytes over the artifact protocol and check the hash. Bounded by
 * `MAX_REF_TENSOR_BYTES`, not by the inline caps.
 */
export const TensorRefSchema = TensorRefObject.superRefine((t, ctx) => {
  if (t.ref !== `sha256:${t.sha256}`) {
    ctx.addIssue({ code: 'custom', path: ['ref'], message: `expected "sha256:${t.sha256}" (the sha256)` });
  }
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 1) || t.shape.length > MAX_TENSOR_RANK) return;
  const bytes = refTensorByteLength(t.dtype, t.shape);
  if (bytes > MAX_REF_TENSOR_BYTES) {
    ctx.addIssue({
      code: 'custom',
      path: ['shape'],
      message: `tensor "${t.name}" would be more than ${MAX_REF_TENSOR_BYTES} bytes; a tensor by ref is at most ${MAX_REF_TENSOR_BYTES} (MAX_REF_TENSOR_BYTES)`,
      params: { code: 'TENSOR_TOO_LARGE' },
    });
  }
});

export type TensorRef = z.output<typeof TensorRefSchema>;

/** Whether a job input is named by ref (its bytes are fetched, not carried in the spec). */
export function isTensorRef<T extends { readonly name: string }>(input: T | TensorRef): input is TensorRef {
  return 'ref' in input && typeof input.ref === 'string';
}

/**
 * One output of a job result: inline (`TensorWire`, base64 in the result frame) or by ref (the agent
 * uploaded the element bytes to the coordinator over the artifact protocol's `put-tensor` before
 * the result frame; the coordinator keeps them in its tensor store). Both give the same digest, so a
 * receipt's `outputHash` does not depend on how an output travelled.
 */
export const ResultTensorSchema = z.union([TensorWireSchema, TensorRefSchema]);
export type ResultTensor = TensorWire | TensorRef;
