// How far two honest float32 results of the same job may differ. Backends (tfjs cpu, wasm SIMD with
// any number of threads, GPUs) sum in different orders, fuse multiply-adds or not, and round at
// different points, so the last bits differ; a bound that scales with the op's size and with the
// magnitudes involved keeps honest providers safe and still catches wrong results. The constants
// come from bench/tolerance.bench.ts (measured spread × SAFETY_FACTOR); docs/verification.md has
// the method and the data.
import { estimateModelFlops, matmulDims, type JobSpec } from '@gpumesh/protocol';

/** float32 unit roundoff, 2^-24. */
export const FLOAT32_UNIT_ROUNDOFF = 2 ** -24;

/** Multiplier between the largest spread measured between honest backends and the bound we set. */
export const SAFETY_FACTOR = 16;

/**
 * matmul growth with the inner dimension K and the coherence q = ‖C‖/‖R‖ of the data (R_ij =
 * ‖a_i‖·‖b_j‖, row i of op(A) and column j of op(B); by Cauchy–Schwarz R ≥ |A||B|, the magnitude a
 * rounding error scales with): g = √K + MATMUL_COHERENT_GROWTH · q · K^¾. Zero-mean data (q ≈ 1/√K)
 * rounds randomly; coherent data (all-positive or constant inputs, q ≈ 1) rounds the same way at every
 * step and the spread between summation orders grew like K^¾ in the measurements (constant inputs,
 * K = 1024…65536: at most 2.06 · u · K^¾ · R).
 *   per element:  |Δc_ij| ≤ SAFETY_FACTOR · u · g · R_ij
 *   relative L2:  ‖ΔC‖ / ‖C‖ ≤ SAFETY_FACTOR · u · max(1, q · g)
 */
export const MATMUL_COHERENT_GROWTH = 2;

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
export const TRAIN_COEFFICIENT = 16 * SAFETY_FACTOR;

/** A bound never drops below this relative L2 (a few ulps of float32), whatever the size. */
export const MIN_RELATIVE_L2_BOUND = 8 * FLOAT32_UNIT_ROUNDOFF;
/** Nor is it ever looser than this: past 1 % nothing is verified by comparison any more. */
export const MAX_RELATIVE_L2_BOUND = 1e-2;
/** Relative L2 bound used when no job context is given (the historic flat bound). */
export const FLOAT_RELATIVE_L2_TOLERANCE = 1e-4;
/** Absolute floor of the historic flat comparison (kept for its callers). */
export const FLOAT_ABSOLUTE_TOLERANCE = 1e-6;
/**
 * Smallest per-element bound: below float32's normal range (1.2e-38) nothing is meaningful, and an
 * exactly-zero scale (a zero row of A, an all-zero output) must not make the bound 0/0.
 */
export const ABSOLUTE_FLOOR = 1e-30;

/** How the bound for one job's float outputs is derived. */
export type ToleranceModel =
  | {
      readonly kind: 'matmul';
      /** Inner dimension K. */
      readonly k: number;
      /** ‖row i of op(A)‖₂ for each output row, ‖column j of op(B)‖₂ for each output column. */
      readonly rowNorms: Float64Array;
      readonly colNorms: Float64Array;
      /** ‖R‖_F = ‖rowNorms‖·‖colNorms‖. */
      readonly normR: number;
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
  let sumR = 0;
  let sumK = 0;
  for (let i = 0; i < m; i++) {
    sumR += rowNorms[i];
    rowNorms[i] = Math.sqrt(rowNorms[i]);
  }
  for (let j = 0; j < n; j++) {
    sumK += colNorms[j];
    colNorms[j] = Math.sqrt(colNorms[j]);
  }
  return { kind: 'matmul', k: kA, rowNorms, colNorms, normR: Math.sqrt(sumR) * Math.sqrt(sumK) };
}

/**
 * The matmul bounds once the coherence q = ‖C‖/‖R‖ is known (from the smaller of the two results, so
 * a result cannot loosen its own bound by inflating itself).
 */
export function matmulBounds(k: number, coherence: number): { absCoefficient: number; relativeL2: number } {
  const q = Math.min(1, Math.max(0, coherence));
  const growth = Math.sqrt(k) + MATMUL_COHERENT_GROWTH * q * k ** 0.75;
  return {
    absCoefficient: SAFETY_FACTOR * FLOAT32_UNIT_ROUNDOFF * growth,
    relativeL2: clampRel(SAFETY_FACTOR * FLOAT32_UNIT_ROUNDOFF * Math.max(1, q * growth)),
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
