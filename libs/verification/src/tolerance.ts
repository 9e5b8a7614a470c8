// How far two honest float32 results of the same job may differ. Backends (tfjs cpu, wasm SIMD with
// any number of threads, GPUs) sum in different orders, fuse multiply-adds or not, and round at
// different points, so the last bits differ; a bound that scales with the op's size and with the
// magnitudes involved keeps honest providers safe and still catches wrong results. The constants
// come from bench/tolerance.bench.ts (measured spread × SAFETY_FACTOR); docs/verification.md has
// the method and the data.
import { estimateModelFlops, matmulDims, type JobSpec } from '#protocol';

/** float32 unit roundoff, 2^-24. */
export const FLOAT32_UNIT_ROUNDOFF = 2 ** -24;

/** Multiplier between the largest spread measured between honest backends and the bound we set. */
export const SAFETY_FACTOR = 16;

/**
 * matmul: |Δc_ij| ≤ MATMUL_ABS_COEFFICIENT · u · √K · ‖a_i‖·‖b_j‖ (row i of op(A), column j of
 * op(B); by Cauchy–Schwarz ‖a_i‖‖b_j‖ ≥ (|A||B|)_ij, the magnitude a rounding error scales with).
 */
export const MATMUL_ABS_COEFFICIENT = 2 * SAFETY_FACTOR;
/** matmul: ‖ΔC‖/‖C‖ ≤ MATMUL_REL_COEFFICIENT · u · √K (the relative check; see `relativeL2Floor`). */
export const MATMUL_REL_COEFFICIENT = 4 * SAFETY_FACTOR;

/**
 * inference: both bounds grow with √(FLOPs per output element) of the model and scale with the
 * largest output magnitude: |Δ| ≤ INFERENCE_COEFFICIENT · u · √f · max|y|, ‖Δ‖/‖y‖ ≤ INFERENCE_COEFFICIENT · u · √f.
 */
export const INFERENCE_COEFFICIENT = 4 * SAFETY_FACTOR;
/** FLOPs per output element assumed when the model.json is not at hand (conservative). */
export const DEFAULT_FLOPS_PER_OUTPUT = 1_000_000;

/**
 * train: rounding differences are fed back through every optimizer step, so the bound grows with
 * the number of steps (epochs × batches) on top of the per-step √f growth.
 */
export const TRAIN_COEFFICIENT = 8 * SAFETY_FACTOR;

/** A bound never drops below this relative L2 (a few ulps of float32), whatever the size. */
export const MIN_RELATIVE_L2_BOUND = 8 * FLOAT32_UNIT_ROUNDOFF;
/** Nor is it ever looser than this: a result 1e-3 away from the reference is wrong at any size. */
export const MAX_RELATIVE_L2_BOUND = 2e-4;
/** Relative L2 bound used when no job context is given (the historic flat bound). */
export const FLOAT_RELATIVE_L2_TOLERANCE = 1e-4;
/** Absolute floor so all-near-zero outputs compare sensibly. */
export const FLOAT_ABSOLUTE_TOLERANCE = 1e-6;

/** How the bound for one job's float outputs is derived. */
export type ToleranceModel =
  | {
      readonly kind: 'matmul';
      /** Inner dimension K. */
      readonly k: number;
      /** ‖row i of op(A)‖₂ for each output row, ‖column j of op(B)‖₂ for each output column. */
      readonly rowNorms: Float64Array;
      readonly colNorms: Float64Array;
      /** Per-element absolute coefficient (multiply by rowNorms[i]·colNorms[j]) and relative L2 bound. */
      readonly absCoefficient: number;
      readonly relativeL2: number;
    }
  | {
      readonly kind: 'scaled';
      /** Absolute bound per element = absCoefficient × max |value| of the tensor (both sides). */
      readonly absCoefficient: number;
      readonly relativeL2: number;
    };

function clampRel(rel: number): number {
  return Math.min(MAX_RELATIVE_L2_BOUND, Math.max(MIN_RELATIVE_L2_BOUND, rel));
}

function f32(values: Float32Array | Int32Array | Uint8Array): Float32Array | null {
  return values instanceof Float32Array ? values : null;
}

/** Decoded operands of a matmul spec, as the tolerance needs them. */
export interface MatmulOperands {
  readonly a: { readonly shape: readonly number[]; readonly values: Float32Array | Int32Array | Uint8Array };
  readonly b: { readonly shape: readonly number[]; readonly values: Float32Array | Int32Array | Uint8Array };
}

/** The matmul tolerance: per-element scale ‖a_i‖·‖b_j‖, coefficient √K. */
export function matmulTolerance(
  operands: MatmulOperands,
  transposeA = false,
  transposeB = false,
): ToleranceModel | null {
  const av = f32(operands.a.values);
  const bv = f32(operands.b.values);
  if (!av || !bv || operands.a.shape.length !== 2 || operands.b.shape.length !== 2) return null;
  const { m, n, kA, kB } = matmulDims(operands.a.shape, operands.b.shape, transposeA, transposeB);
  if (kA !== kB) return null;
  const [a0, a1] = operands.a.shape;
  const [b0, b1] = operands.b.shape;
  const rowNorms = new Float64Array(m);
  const colNorms = new Float64Array(n);
  // op(A)[i][k] = transposeA ? A[k][i] : A[i][k]; op(B)[k][j] = transposeB ? B[j][k] : B[k][j].
  for (let r = 0; r < a0; r++) {
    for (let c = 0; c < a1; c++) {
      const v = av[r * a1 + c];
      rowNorms[transposeA ? c : r] += v * v;
    }
  }
  for (let r = 0; r < b0; r++) {
    for (let c = 0; c < b1; c++) {
      const v = bv[r * b1 + c];
      colNorms[transposeB ? r : c] += v * v;
    }
  }
  for (let i = 0; i < m; i++) rowNorms[i] = Math.sqrt(rowNorms[i]);
  for (let j = 0; j < n; j++) colNorms[j] = Math.sqrt(colNorms[j]);
  const root = Math.sqrt(kA);
  return {
    kind: 'matmul',
    k: kA,
    rowNorms,
    colNorms,
    absCoefficient: MATMUL_ABS_COEFFICIENT * FLOAT32_UNIT_ROUNDOFF * root,
    relativeL2: clampRel(MATMUL_REL_COEFFICIENT * FLOAT32_UNIT_ROUNDOFF * root),
  };
}

/** Per-sample forward FLOPs of the model, or undefined when it cannot be estimated. */
function modelFlops(spec: JobSpec, modelJson: unknown): number | undefined {
  if (spec.kind === 'matmul' || modelJson === undefined) return undefined;
  try {
    const json = typeof modelJson === 'string' ? (JSON.parse(modelJson) as unknown) : modelJson;
    return Number(estimateModelFlops(json, spec.model.format));
  } catch {
    return undefined;
  }
}

/**
 * FLOPs per output element, the size an inference or train bound grows with: per-sample model FLOPs
 * over per-sample output elements (or `DEFAULT_FLOPS_PER_OUTPUT` without the model.json).
 */
export function flopsPerOutput(spec: JobSpec, outputElementsPerSample: number, modelJson?: unknown): number {
  const flops = modelFlops(spec, modelJson);
  if (flops === undefined || !Number.isFinite(flops)) return DEFAULT_FLOPS_PER_OUTPUT;
  return Math.max(1, flops / Math.max(1, outputElementsPerSample));
}

/** Optimizer steps of a train job: epochs × ⌈samples / batch size⌉. */
export function trainSteps(spec: Extract<JobSpec, { kind: 'train' }>): number {
  const x = spec.inputs.find((t) => t.name === 'x');
  const samples = x && x.shape.length > 0 ? x.shape[0] : 1;
  return spec.params.epochs * Math.ceil(samples / spec.params.batchSize);
}

/** Tolerance of an inference or train output whose per-sample size is `perSample` elements. */
export function modelTolerance(spec: JobSpec, perSample: number, modelJson?: unknown): ToleranceModel {
  const root = Math.sqrt(flopsPerOutput(spec, perSample, modelJson));
  if (spec.kind === 'train') {
    const growth = root * Math.sqrt(trainSteps(spec));
    const c = TRAIN_COEFFICIENT * FLOAT32_UNIT_ROUNDOFF * growth;
    return { kind: 'scaled', absCoefficient: c, relativeL2: clampRel(c) };
  }
  const c = INFERENCE_COEFFICIENT * FLOAT32_UNIT_ROUNDOFF * root;
  return { kind: 'scaled', absCoefficient: c, relativeL2: clampRel(c) };
}

/** Without a job context: the historic flat relative bound, absolute bound from it × max |value|. */
export const DEFAULT_TOLERANCE: ToleranceModel = {
  kind: 'scaled',
  absCoefficient: FLOAT_RELATIVE_L2_TOLERANCE * 4,
  relativeL2: FLOAT_RELATIVE_L2_TOLERANCE,
};
