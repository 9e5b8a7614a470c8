// Cheap sanity checks of a provider's result, run before anything else looks at it: junk that no
// honest run of the spec can produce (Inf or NaN from finite inputs, a shape the spec rules out, a
// tensor that does not decode) is refused at once, without a reference or another provider.
import {
  decodeTensor,
  isTensorRef,
  type DecodedTensor,
  type JobSpec,
  type TensorWire,
} from '@gpumesh/protocol';

/** Why a result is junk. */
export type SanityFailureCode =
  | 'NO_OUTPUTS'
  | 'BAD_OUTPUT_TENSOR'
  | 'BAD_OUTPUT_NAME'
  | 'BAD_OUTPUT_DTYPE'
  | 'BAD_OUTPUT_SHAPE'
  | 'NON_FINITE_OUTPUT';

export type SanityResult =
  { readonly ok: true } | { readonly ok: false; readonly code: SanityFailureCode; readonly reason: string };

/** The largest finite float32. */
export const FLOAT32_MAX = 3.4028234663852886e38;
/**
 * A matmul may honestly overflow to ±Inf only when K · max|a| · max|b| comes within this factor of
 * FLOAT32_MAX (each dot product is at most that in magnitude; the factor absorbs rounding).
 */
export const MATMUL_OVERFLOW_MARGIN = 2;
/** Most outputs an inference result may name when the spec names none (the spec's own cap). */
export const MAX_INFERENCE_OUTPUTS = 64;

const OK: SanityResult = { ok: true };

function fail(code: SanityFailureCode, reason: string): SanityResult {
  return { ok: false, code, reason };
}

/** The values of a float tensor, or null for integer and bool tensors (always finite). */
function floats(t: DecodedTensor): Float32Array | null {
  return t.dtype === 'float32' ? (t.values as Float32Array) : null;
}

/** Index of the first non-finite value, or -1. */
function firstNonFinite(values: Float32Array | null): number {
  if (!values) return -1;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}

function maxAbs(values: Float32Array | Int32Array | Uint8Array): number {
  let m = 0;
  for (const v of values) {
    const a = Math.abs(v);
    if (a > m) m = a;
  }
  return m;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function decodeAll(outputs: readonly (TensorWire | DecodedTensor)[]): DecodedTensor[] | SanityResult {
  const decoded: DecodedTensor[] = [];
  for (const [i, t] of outputs.entries()) {
    if ('values' in t) {
      decoded.push(t); // an output by ref, read from the coordinator's store
      continue;
    }
    try {
      decoded.push(decodeTensor(t));
    } catch (err) {
      const name = typeof (t as { name?: unknown }).name === 'string' ? t.name : `#${i}`;
      return fail(
        'BAD_OUTPUT_TENSOR',
        `output ${name}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 300),
      );
    }
  }
  const names = new Set(decoded.map((t) => t.name));
  if (names.size !== decoded.length) return fail('BAD_OUTPUT_NAME', 'two outputs share a name');
  return decoded;
}

function checkMatmul(spec: Extract<JobSpec, { kind: 'matmul' }>, out: DecodedTensor[]): SanityResult {
  const wireA = spec.inputs.find((t) => t.name === 'a');
  const wireB = spec.inputs.find((t) => t.name === 'b');
  // Inputs by ref carry dtype and shape but no values here (they were checked finite at submit).
  const byRef = (wireA !== undefined && isTensorRef(wireA)) || (wireB !== undefined && isTensorRef(wireB));
  const a = wireA !== undefined && isTensorRef(wireA) ? wireA : decodeTensor(wireA);
  const b = wireB !== undefined && isTensorRef(wireB) ? wireB : decodeTensor(wireB);
  if (out.length !== 1 || out[0].name !== 'c') {
    return fail(
      'BAD_OUTPUT_NAME',
      `a matmul returns one output named c, got [${out.map((t) => t.name).join(', ')}]`,
    );
  }
  const c = out[0];
  if (c.dtype !== a.dtype) {
    return fail('BAD_OUTPUT_DTYPE', `c: expected ${a.dtype} (the inputs' dtype), got ${c.dtype}`);
  }
  const ta = spec.params.transposeA ?? false;
  const tb = spec.params.transposeB ?? false;
  const m = ta ? a.shape[1] : a.shape[0];
  const k = ta ? a.shape[0] : a.shape[1];
  const n = tb ? b.shape[0] : b.shape[1];
  if (!sameShape(c.shape, [m, n])) {
    return fail('BAD_OUTPUT_SHAPE', `c: expected shape [${m}, ${n}], got [${c.shape.join(', ')}]`);
  }
  // Without the values of a ref input the overflow bound is unknown: a non-finite c is not judged
  // here (redundant copies and tie-breaks still compare it).
  if (byRef || 'ref' in a || 'ref' in b) return OK;
  const af = floats(a);
  const bf = floats(b);
  if (firstNonFinite(af) >= 0 || firstNonFinite(bf) >= 0) return OK; // Inf in, Inf out is honest
  const at = firstNonFinite(floats(c));
  if (at < 0) return OK;
  // Finite inputs: every dot product is at most K · max|a| · max|b| in magnitude.
  const bound = k * maxAbs(a.values) * maxAbs(b.values);
  if (bound * MATMUL_OVERFLOW_MARGIN < FLOAT32_MAX) {
    return fail(
      'NON_FINITE_OUTPUT',
      `c[${at}] is ${String((c.values as Float32Array)[at])} but the inputs are finite and no element can exceed ${bound.toPrecision(3)}`,
    );
  }
  return OK;
}

function checkInference(
  spec: Extract<JobSpec, { kind: 'inference' }>,
  out: DecodedTensor[],
  inputsFinite: boolean,
): SanityResult {
  if (spec.outputs !== undefined) {
    const expected = [...spec.outputs].sort();
    const got = out.map((t) => t.name).sort();
    if (got.length !== expected.length || got.some((n, i) => n !== expected[i])) {
      return fail(
        'BAD_OUTPUT_NAME',
        `expected the outputs the spec names [${spec.outputs.join(', ')}], got [${out.map((t) => t.name).join(', ')}]`,
      );
    }
  } else if (out.length > MAX_INFERENCE_OUTPUTS) {
    return fail('BAD_OUTPUT_NAME', `${out.length} outputs; at most ${MAX_INFERENCE_OUTPUTS}`);
  }
  const first = spec.inputs[0];
  const batch = first.shape.length > 0 ? first.shape[0] : undefined;
  for (const t of out) {
    if (batch !== undefined && (t.shape.length === 0 || t.shape[0] !== batch)) {
      return fail(
        'BAD_OUTPUT_SHAPE',
        `${t.name}: expected the batch dimension ${batch} first (the batch of input ${first.name}), got shape [${t.shape.join(', ')}]`,
      );
    }
    if (!inputsFinite) continue;
    const at = firstNonFinite(floats(t));
    if (at >= 0) {
      return fail(
        'NON_FINITE_OUTPUT',
        `${t.name}[${at}] is ${String((t.values as Float32Array)[at])} from finite inputs`,
      );
    }
  }
  return OK;
}

function checkTrain(out: DecodedTensor[]): SanityResult {
  // A diverging training run may honestly end in NaN weights: only names are checked.
  const bad = out.find((t) => !t.name.startsWith('weights/'));
  if (bad) return fail('BAD_OUTPUT_NAME', `${bad.name}: a train job returns weights/<name> tensors only`);
  return OK;
}

/**
 * Whether `outputs` could be an honest result of `spec`: every output decodes (no duplicate
 * names); a matmul returns exactly `c` of the inputs' dtype and shape [m, n], finite unless the inputs
 * are not or K·max|a|·max|b| reaches float32's range; an inference result has the outputs the spec
 * names (when it names them), each with the input batch as its first dimension, finite when the
 * inputs are (model weights are assumed finite: the coordinator does not load them here); a train
 * result returns `weights/…` tensors only. Pure and cheap: one pass over the tensors.
 */
export function checkResultSanity(
  spec: JobSpec,
  outputs: readonly (TensorWire | DecodedTensor)[],
): SanityResult {
  if (!Array.isArray(outputs) || outputs.length === 0) return fail('NO_OUTPUTS', 'the result has no outputs');
  const decoded = decodeAll(outputs);
  if (!Array.isArray(decoded)) return decoded;
  switch (spec.kind) {
    case 'matmul':
      return checkMatmul(spec, decoded);
    case 'inference': {
      // inputs by ref were checked finite when the job was submitted
      const inputsFinite = spec.inputs.every(
        (t) => isTensorRef(t) || firstNonFinite(floats(decodeTensor(t))) < 0,
      );
      return checkInference(spec, decoded, inputsFinite);
    }
    case 'train':
      return checkTrain(decoded);
  }
}
