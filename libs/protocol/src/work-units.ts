import { ProtocolValidationError } from './errors.js';
import { jobSampleCount, matmulDims, type JobSpec } from './job-spec.js';
import { estimateModelFlops } from './model-flops.js';

/** One work unit is one million floating-point operations (rounded up, minimum 1 per job). */
export const WORK_UNIT_FLOPS = 1_000_000n;

/** Training costs forward + backward (~2× forward) passes. */
export const TRAIN_FLOPS_MULTIPLIER = 3n;

/** Work units for a FLOP count: ceil(flops / WORK_UNIT_FLOPS), at least 1. */
export function flopsToWorkUnits(flops: bigint): bigint {
  if (flops <= 0n) return 1n;
  const units = (flops + WORK_UNIT_FLOPS - 1n) / WORK_UNIT_FLOPS;
  return units < 1n ? 1n : units;
}

/**
 * FLOPs a job costs, from its spec alone: matmul = 2·m·n·k (respecting transposes); inference =
 * model forward FLOPs × batch; train = 3 × forward FLOPs × samples × epochs. `modelFlopsPerSample`
 * (from `estimateModelFlops`) is required for inference and train.
 */
export function jobFlops(spec: JobSpec, modelFlopsPerSample?: bigint): bigint {
  if (spec.kind === 'matmul') {
    const a = spec.inputs.find((t) => t.name === 'a');
    const b = spec.inputs.find((t) => t.name === 'b');
    if (!a || !b) throw new ProtocolValidationError('INVALID_MESSAGE', 'matmul needs inputs "a" and "b"');
    const { m, n, kA } = matmulDims(a.shape, b.shape, spec.params.transposeA, spec.params.transposeB);
    return 2n * BigInt(m) * BigInt(n) * BigInt(kA);
  }
  if (modelFlopsPerSample === undefined) {
    throw new ProtocolValidationError(
      'INVALID_MODEL',
      `${spec.kind} jobs need the model's FLOPs to be priced`,
      [{ path: 'model', message: 'model FLOPs required' }],
    );
  }
  const samples = BigInt(jobSampleCount(spec));
  if (spec.kind === 'inference') return modelFlopsPerSample * samples;
  return TRAIN_FLOPS_MULTIPLIER * modelFlopsPerSample * samples * BigInt(spec.params.epochs);
}

/**
 * Work units (the cost basis) of a job. For inference and train pass the model's `model.json`
 * (whose hash is `spec.model.hash`); its FLOPs are estimated with `estimateModelFlops`.
 */
export function workUnitsForSpec(spec: JobSpec, modelJson?: unknown): bigint {
  if (spec.kind === 'matmul') return flopsToWorkUnits(jobFlops(spec));
  if (modelJson === undefined) {
    throw new ProtocolValidationError('INVALID_MODEL', `${spec.kind} jobs need the model.json to be priced`, [
      { path: 'model', message: 'model.json required' },
    ]);
  }
  return flopsToWorkUnits(jobFlops(spec, estimateModelFlops(modelJson, spec.model.format)));
}
