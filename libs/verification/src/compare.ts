// Tolerance-aware comparison of two results of the same job: names, dtypes and shapes must match;
// int32 and bool tensors exactly; float32 tensors within a relative-L2 and a max-abs bound derived
// from the job (see tolerance.ts); NaN and ±Inf must sit at the same places on both sides.
import {
  decodeTensor,
  isTensorRef,
  type DecodedTensor,
  type JobSpec,
  type TensorWire,
} from '@gpumesh/protocol';

import {
  DEFAULT_TOLERANCE,
  ABSOLUTE_FLOOR,
  matmulBounds,
  matmulTolerance,
  modelTolerance,
  type ToleranceModel,
} from './tolerance.js';

/** What the bound is derived from: the job's spec (kind, shapes, inner dimension, inputs). */
export interface CompareContext {
  readonly spec: JobSpec;
  /** The model's model.json (inference/train): its FLOPs per output set the bound; optional. */
  readonly modelJson?: unknown;
}

export interface Bound {
  readonly relativeL2: number;
  readonly absolute: number;
}

/** One tensor's figures (floats; integer and bool tensors show zeros when equal). */
export interface TensorAgreement {
  readonly name: string;
  readonly agree: boolean;
  readonly reason?: string;
  readonly relativeL2: number;
  readonly maxAbs: number;
  readonly bound: Bound;
  /** How far inside its bounds the tensor is: min(bound / observed) over both checks (< 1 fails; Infinity when identical). */
  readonly margin: number;
}

export interface Agreement {
  agree: boolean;
  /** Why not, naming the tensor (and the element for exact and non-finite mismatches). */
  reason?: string;
  /** Largest relative L2 difference seen across float tensors (denominator floored, see `compareOutputs`). */
  maxRelativeL2: number;
  /** Largest absolute element difference seen across float tensors. */
  maxAbs: number;
  /** The bound of the tensor that decided: the first that failed, else the one closest to its bound. */
  bound: Bound;
  /** Smallest tensor margin (see `TensorAgreement.margin`); below 1 the outputs disagree. */
  margin: number;
  /** Per-tensor figures, in the order of `a`. */
  tensors: TensorAgreement[];
}

const EXACT: Bound = { relativeL2: 0, absolute: 0 };

function fail(
  reason: string,
  tensors: TensorAgreement[],
  maxRelativeL2: number,
  maxAbs: number,
  bound: Bound,
): Agreement {
  // A float tensor that failed its bound has a margin below 1; any other failure (names, shapes,
  // dtypes, exact or non-finite mismatches) has none.
  const last = tensors[tensors.length - 1];
  const margin = last !== undefined && !last.agree ? last.margin : 0;
  return { agree: false, reason, maxRelativeL2, maxAbs, bound, margin, tensors };
}

/** An output as compared: on the wire, or already decoded (an output by ref read from the store). */
export type ComparedTensor = TensorWire | DecodedTensor;

function decode(t: ComparedTensor, side: string): DecodedTensor | string {
  if ('values' in t) return t;
  try {
    return decodeTensor(t);
  } catch (err) {
    return `${side} output ${t.name}: ${(err as Error).message}`;
  }
}

/** The tolerance model of each float output, from the context (null: the flat default). */
function toleranceFor(
  context: CompareContext | undefined,
  tensor: DecodedTensor,
  decodedInputs: Map<string, DecodedTensor>,
): ToleranceModel {
  if (!context) return DEFAULT_TOLERANCE;
  const spec = context.spec;
  if (spec.kind === 'matmul') {
    const a = decodedInputs.get('a');
    const b = decodedInputs.get('b');
    if (a && b) {
      const model = matmulTolerance({ a, b }, spec.params.transposeA, spec.params.transposeB);
      if (model) return model;
    }
    return DEFAULT_TOLERANCE;
  }
  // Per-sample elements: everything after the batch (first) dimension for inference outputs; a
  // trained weight tensor is one "sample".
  const perSample =
    spec.kind === 'inference' && tensor.shape.length > 1
      ? tensor.shape.slice(1).reduce((n, d) => n * d, 1)
      : spec.kind === 'inference'
        ? 1
        : tensor.shape.reduce((n, d) => n * d, 1);
  return modelTolerance(spec, perSample, context.modelJson);
}

interface FloatFigures {
  readonly relativeL2: number;
  readonly maxAbs: number;
  readonly bound: Bound;
  /** max over elements of |Δ| / bound at that element (> 1 fails). */
  readonly absRatio: number;
  readonly reason?: string;
}

function describeValue(v: number): string {
  return Number.isNaN(v) ? 'NaN' : String(v);
}

/** Compares two float32 arrays under `model`; `shape` names elements in reasons. */
function compareFloats(
  name: string,
  x: Float32Array,
  y: Float32Array,
  shape: readonly number[],
  model: ToleranceModel,
  scaleOverride?: number,
): FloatFigures {
  const n = x.length;
  // Magnitude scale of 'scaled' models: the largest finite |value| on either side (train: of all
  // the trained weights, so a small bias tensor is not held to its own tiny magnitude).
  let scale = scaleOverride ?? 0;
  if (model.kind === 'scaled' && scaleOverride === undefined) {
    for (let i = 0; i < n; i++) {
      const ax = Math.abs(x[i]);
      const ay = Math.abs(y[i]);
      if (Number.isFinite(ax) && ax > scale) scale = ax;
      if (Number.isFinite(ay) && ay > scale) scale = ay;
    }
  }
  const cols = shape.length >= 1 ? shape[shape.length - 1] : 1;
  let absCoefficient: number;
  let relBound: number;
  if (model.kind === 'matmul') {
    let nx = 0;
    let ny = 0;
    for (let i = 0; i < n; i++) {
      if (Number.isFinite(x[i])) nx += x[i] * x[i];
      if (Number.isFinite(y[i])) ny += y[i] * y[i];
    }
    const q = model.normR > 0 ? Math.sqrt(Math.min(nx, ny)) / model.normR : 0;
    ({ absCoefficient, relativeL2: relBound } = matmulBounds(model.k, q));
  } else {
    absCoefficient = model.absCoefficient;
    relBound = model.relativeL2;
  }
  let diff2 = 0;
  let normX = 0;
  let normY = 0;
  let maxAbs = 0;
  let absRatio = 0;
  let worstBound = 0;
  let worstIndex = -1;
  let sumBound2 = 0;
  for (let i = 0; i < n; i++) {
    const a = x[i];
    const b = y[i];
    if (!Number.isFinite(a) || !Number.isFinite(b)) {
      if (Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b))) continue;
      return {
        relativeL2: Number.POSITIVE_INFINITY,
        maxAbs: Number.POSITIVE_INFINITY,
        bound: { relativeL2: relBound, absolute: 0 },
        absRatio: Number.POSITIVE_INFINITY,
        reason: `output ${name}[${i}]: ${describeValue(a)} vs ${describeValue(b)} (non-finite values differ)`,
      };
    }
    const d = Math.abs(a - b);
    const bound =
      model.kind === 'matmul'
        ? absCoefficient * model.rowNorms[Math.floor(i / cols)] * model.colNorms[i % cols]
        : absCoefficient * scale;
    const elementBound = Math.max(bound, ABSOLUTE_FLOOR);
    diff2 += d * d;
    normX += a * a;
    normY += b * b;
    sumBound2 += elementBound * elementBound;
    if (d > maxAbs) maxAbs = d;
    const ratio = d / elementBound;
    if (ratio > absRatio || worstIndex < 0) {
      if (ratio > absRatio) absRatio = ratio;
      worstBound = elementBound;
      worstIndex = i;
    }
  }
  // Relative L2 with the denominator floored: when the outputs are small next to the magnitudes that
  // went into them (cancellation), ‖Δ‖/‖y‖ means nothing and the element bounds decide. For matmul the
  // floor is √(Σ bound²)/(relBound·√K), for model outputs √(Σ bound²)/relBound.
  const floor = Math.sqrt(sumBound2) / relBound / (model.kind === 'matmul' ? Math.sqrt(model.k) : 1);
  const relativeL2 = Math.sqrt(diff2) / Math.max(Math.sqrt(normX), Math.sqrt(normY), floor, Number.MIN_VALUE);
  const bound: Bound = { relativeL2: relBound, absolute: worstBound };
  if (absRatio > 1) {
    return {
      relativeL2,
      maxAbs,
      bound,
      absRatio,
      reason: `output ${name}[${worstIndex}]: |Δ| ${(absRatio * worstBound).toExponential(2)} over the bound ${worstBound.toExponential(2)}`,
    };
  }
  if (relativeL2 > relBound) {
    return {
      relativeL2,
      maxAbs,
      bound,
      absRatio,
      reason: `output ${name}: relative L2 difference ${relativeL2.toExponential(2)} over the bound ${relBound.toExponential(2)}`,
    };
  }
  return { relativeL2, maxAbs, bound, absRatio };
}

/** Largest finite |value| over the float32 tensors of `tensors` (undecodable ones are skipped). */
function largestMagnitude(tensors: readonly ComparedTensor[]): number {
  let scale = 0;
  for (const t of tensors) {
    if (t.dtype !== 'float32') continue;
    const d = decode(t, '');
    if (typeof d === 'string') continue;
    for (const v of d.values as Float32Array) {
      const abs = Math.abs(v);
      if (Number.isFinite(abs) && abs > scale) scale = abs;
    }
  }
  return scale;
}

/**
 * Compares two results of one job. Without `context` float tensors get the flat
 * `FLOAT_RELATIVE_L2_TOLERANCE`; with it, the bounds scale with the op (matmul: inner dimension K and
 * the operands' row/column norms; inference: model FLOPs per output; train: also optimizer steps).
 */
export function compareOutputs(
  a: readonly ComparedTensor[],
  b: readonly ComparedTensor[],
  context?: CompareContext,
): Agreement {
  const tensors: TensorAgreement[] = [];
  let maxRelativeL2 = 0;
  let maxAbs = 0;
  let decidingBound: Bound = EXACT;
  let closest = -1;
  if (a.length !== b.length) {
    return fail(`${a.length} outputs vs ${b.length}`, tensors, maxRelativeL2, maxAbs, decidingBound);
  }
  const names = new Set<string>();
  for (const t of a) {
    if (names.has(t.name)) return fail(`output ${t.name} appears twice`, tensors, 0, 0, EXACT);
    names.add(t.name);
  }
  const byName = new Map(b.map((t) => [t.name, t]));
  const decodedInputs = new Map<string, DecodedTensor>();
  if (context?.spec.kind === 'matmul') {
    for (const input of context.spec.inputs) {
      // inputs by ref carry no values here: their outputs get the bound without the inputs' norms
      if (isTensorRef(input)) continue;
      const d = decode(input, 'input');
      if (typeof d !== 'string') decodedInputs.set(input.name, d);
    }
  }
  const trainScale = context?.spec.kind === 'train' ? largestMagnitude([...a, ...b]) : undefined;
  for (const ta of a) {
    const tb = byName.get(ta.name);
    if (!tb) return fail(`output ${ta.name} missing`, tensors, maxRelativeL2, maxAbs, decidingBound);
    if (ta.dtype !== tb.dtype) {
      return fail(
        `output ${ta.name}: dtype ${ta.dtype} vs ${tb.dtype}`,
        tensors,
        maxRelativeL2,
        maxAbs,
        decidingBound,
      );
    }
    if (ta.shape.join('x') !== tb.shape.join('x')) {
      return fail(
        `output ${ta.name}: shape [${ta.shape.join(',')}] vs [${tb.shape.join(',')}]`,
        tensors,
        maxRelativeL2,
        maxAbs,
        decidingBound,
      );
    }
    const da = decode(ta, 'first');
    if (typeof da === 'string') return fail(da, tensors, maxRelativeL2, maxAbs, decidingBound);
    const db = decode(tb, 'second');
    if (typeof db === 'string') return fail(db, tensors, maxRelativeL2, maxAbs, decidingBound);
    if (da.dtype !== 'float32') {
      const va = da.values;
      const vb = db.values;
      for (let i = 0; i < va.length; i++) {
        if (va[i] !== vb[i]) {
          const reason = `output ${ta.name}[${i}]: ${va[i]} vs ${vb[i]} (${da.dtype} must match exactly)`;
          tensors.push({
            name: ta.name,
            agree: false,
            reason,
            relativeL2: 0,
            maxAbs: 0,
            bound: EXACT,
            margin: 0,
          });
          return fail(reason, tensors, maxRelativeL2, maxAbs, EXACT);
        }
      }
      tensors.push({
        name: ta.name,
        agree: true,
        relativeL2: 0,
        maxAbs: 0,
        bound: EXACT,
        margin: Number.POSITIVE_INFINITY,
      });
      continue;
    }
    const model = toleranceFor(context, da, decodedInputs);
    const figures = compareFloats(
      ta.name,
      da.values as Float32Array,
      db.values as Float32Array,
      da.shape,
      model,
      trainScale,
    );
    maxRelativeL2 = Math.max(maxRelativeL2, figures.relativeL2);
    maxAbs = Math.max(maxAbs, figures.maxAbs);
    const closeness = Math.max(figures.absRatio, figures.relativeL2 / figures.bound.relativeL2);
    tensors.push({
      name: ta.name,
      agree: figures.reason === undefined,
      reason: figures.reason,
      relativeL2: figures.relativeL2,
      maxAbs: figures.maxAbs,
      bound: figures.bound,
      margin: closeness === 0 ? Number.POSITIVE_INFINITY : 1 / closeness,
    });
    if (figures.reason !== undefined) {
      return fail(figures.reason, tensors, maxRelativeL2, maxAbs, figures.bound);
    }
    if (closeness > closest) {
      closest = closeness;
      decidingBound = figures.bound;
    }
  }
  const margin = Math.min(Number.POSITIVE_INFINITY, ...tensors.map((t) => t.margin));
  return { agree: true, maxRelativeL2, maxAbs, bound: decidingBound, margin, tensors };
}
