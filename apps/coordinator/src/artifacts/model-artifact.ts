import { createHash } from 'node:crypto';
import { canonicalJson } from '@gpumesh/protocol';

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, float16: 2 };

/** Checks the shape of a tfjs model.json and that its weights manifest accounts for every weight byte. */
export function validateModelArtifact(
  format: 'layers' | 'graph',
  modelJson: Record<string, unknown>,
  weightBytes: number,
): string[] {
  const problems: string[] = [];
  const topology = modelJson.modelTopology;
  if (typeof topology !== 'object' || topology === null)
    problems.push('modelJson.modelTopology: required object');
  if (format === 'graph' && topology && !Array.isArray((topology as { node?: unknown }).node)) {
    problems.push('modelJson.modelTopology.node: a graph model needs its node list');
  }
  const manifest = modelJson.weightsManifest;
  if (!Array.isArray(manifest)) {
    problems.push('modelJson.weightsManifest: required array');
    return problems;
  }
  let expected = 0;
  manifest.forEach((group: unknown, g: number) => {
    const weights = (group as { weights?: unknown }).weights;
    if (!Array.isArray(weights)) {
      problems.push(`modelJson.weightsManifest[${g}].weights: required array`);
      return;
    }
    weights.forEach((w: unknown, i: number) => {
      const entry = w as { name?: unknown; shape?: unknown; dtype?: unknown };
      const shape = entry.shape;
      const size = typeof entry.dtype === 'string' ? DTYPE_BYTES[entry.dtype] : undefined;
      if (typeof entry.name !== 'string')
        problems.push(`modelJson.weightsManifest[${g}].weights[${i}].name: required string`);
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
        problems.push(`modelJson.weightsManifest[${g}].weights[${i}].shape: array of non-negative integers`);
        return;
      }
      if (size === undefined) {
        problems.push(
          `modelJson.weightsManifest[${g}].weights[${i}].dtype: one of ${Object.keys(DTYPE_BYTES).join(', ')}`,
        );
        return;
      }
      expected += (shape as number[]).reduce((a, d) => a * d, 1) * size;
    });
  });
  if (problems.length === 0 && expected !== weightBytes) {
    problems.push(`weights: the manifest describes ${expected} bytes but ${weightBytes} were sent`);
  }
  return problems;
}

/** The content address of a model: sha256(canonical model.json ‖ weights). */
export function artifactHash(modelJson: unknown, weights: Uint8Array): string {
  return createHash('sha256').update(canonicalJson(modelJson)).update(weights).digest('hex');
}
