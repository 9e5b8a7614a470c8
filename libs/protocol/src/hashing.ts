import { hash } from 'node:crypto';

import { canonicalBytes, type CanonicalDomain } from './canonical.js';
import { parseJobSpec, type JobSpec, type JobSpecInput } from './job-spec.js';
import { tensorBytes, type DecodedTensor, type TensorWire } from './tensor.js';
import { isTensorRef, type TensorRef } from './tensor-ref.js';

/** Anything a tensor digest can be taken of: a wire, decoded or by-ref tensor. */
type Digestible = TensorWire | DecodedTensor | TensorRef;

/** Lower-case hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return hash('sha256', bytes, 'hex');
}

/** A tensor reduced to its identity: name, dtype, shape and the SHA-256 of its little-endian bytes. */
export interface TensorDigest {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly sha256: string;
}

/**
 * Digest of one tensor (wire, decoded or by ref: the same tensor gives the same digest, so a job
 * whose inputs go by ref has the spec hash and input hash of the same job sent inline).
 */
export function tensorDigest(tensor: Digestible): TensorDigest {
  if (isTensorRef(tensor)) {
    return { name: tensor.name, dtype: tensor.dtype, shape: [...tensor.shape], sha256: tensor.sha256 };
  }
  return {
    name: tensor.name,
    dtype: tensor.dtype,
    shape: [...tensor.shape],
    sha256: sha256Hex(tensorBytes(tensor)),
  };
}

function digestList(tensors: readonly Digestible[]): TensorDigest[] {
  return tensors.map(tensorDigest).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function hashTensorSet(domain: CanonicalDomain, tensors: readonly Digestible[]): string {
  return sha256Hex(canonicalBytes(domain, digestList(tensors)));
}

/** Hash of a job's input tensors (order-independent: sorted by name); the receipt's `inputHash`. */
export function hashTensors(inputs: readonly Digestible[]): string {
  return hashTensorSet('inputs', inputs);
}

/** Hash of a job's output tensors (order-independent: sorted by name); the receipt's `outputHash`. */
export function hashOutputs(outputs: readonly Digestible[]): string {
  return hashTensorSet('outputs', outputs);
}

/**
 * Hash of a job spec after normalisation (defaults applied), with each input tensor replaced by its
 * digest so hashing stays cheap and matches `hashTensors`. The offer's `specHash`.
 */
export function hashSpec(spec: JobSpec | JobSpecInput): string {
  return hashParsedSpec(parseJobSpec(spec));
}

/**
 * `hashSpec` of a spec that already is what the job spec schema returns (`parseJobSpec`, or the spec
 * of a parsed offer): the same hash without validating and normalising it a second time.
 */
export function hashParsedSpec(spec: JobSpec): string {
  return sha256Hex(canonicalBytes('spec', { ...spec, inputs: digestList(spec.inputs) }));
}
