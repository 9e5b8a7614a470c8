// What the spec alone says can never run: refused at submit (and by the dry run) with a 400 that
// names the field, rather than accepted to fail on every provider. What depends on the live network
// (its prices, backends, operators) is the placement explanation's, after a grace period
// (dispatch/unplaceable.ts).
import {
  BYTES_PER_ELEMENT,
  MAX_REF_TENSOR_BYTES,
  backendsAbleToRun,
  firstNonFinite,
  isTensorRef,
  matmulDims,
  placeableBackends,
  type JobSpec,
} from '@gpumesh/protocol';

/** One field the spec cannot run with, and why. */
export interface StaticIssue {
  path: string;
  message: string;
}

/** The least a job may offer per work unit: every provider is paid for its work. */
export const MIN_MAX_PRICE_PER_UNIT = 1n;

/** What the coordinator's configuration allows of a job's results. */
export interface ResultLimits {
  /** Largest result tensor (MAX_RESULT_TENSOR_BYTES; larger outputs than the inline cap go by ref). */
  readonly maxResultTensorBytes: number;
}

/** Every reason the spec can never run, each naming its field (empty: nothing static forbids it). */
export function staticIssues(
  spec: JobSpec,
  limits: ResultLimits = { maxResultTensorBytes: MAX_REF_TENSOR_BYTES },
): StaticIssue[] {
  const issues: StaticIssue[] = [];
  // No spec option allows NaN or Infinity: no kernel result over them could be checked. (Inputs by
  // ref are scanned from their file when the submission names them: TensorsService.resolveInputs.)
  spec.inputs.forEach((input, i) => {
    const bad = isTensorRef(input) ? null : firstNonFinite(input);
    if (bad) {
      issues.push({
        path: `inputs[${i}].data`,
        message: `element ${bad.index} is ${bad.value}; job inputs must be finite numbers (NaN and Infinity are refused)`,
      });
    }
  });
  // Inputs may go by ref beyond the inline caps, and so may outputs (docs/tensors.md): a result
  // tensor is bounded by MAX_RESULT_TENSOR_BYTES.
  if (spec.kind === 'matmul') {
    const a = spec.inputs.find((t) => t.name === 'a');
    const b = spec.inputs.find((t) => t.name === 'b');
    if (a && b) {
      const { m, n } = matmulDims(a.shape, b.shape, spec.params.transposeA, spec.params.transposeB);
      const bytes = m * n * BYTES_PER_ELEMENT[a.dtype];
      const max = Math.min(limits.maxResultTensorBytes, MAX_REF_TENSOR_BYTES);
      if (bytes > max) {
        issues.push({
          path: 'inputs',
          message: `the product c would be ${a.dtype}[${m},${n}], ${bytes} bytes; a result tensor is at most ${max} bytes (MAX_RESULT_TENSOR_BYTES)`,
        });
      }
    }
  }
  if (BigInt(spec.maxPricePerUnit) < MIN_MAX_PRICE_PER_UNIT) {
    issues.push({
      path: 'maxPricePerUnit',
      message: `expected at least ${MIN_MAX_PRICE_PER_UNIT} base unit per work unit; no provider runs a job for nothing`,
    });
  }
  if (placeableBackends(spec).length === 0) {
    const index = spec.inputs.findIndex((t) => t.dtype === 'int32');
    const able = backendsAbleToRun(spec).join(', ');
    issues.push({
      path: 'requirements.backends',
      message: `no allowed backend can run this job (${spec.kind} of inputs[${index}].dtype ${spec.inputs[index]?.dtype ?? '?'} runs on ${able} only)`,
    });
  }
  return issues;
}
