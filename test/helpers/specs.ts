import { encodeTensor } from '@gpumesh/protocol';

/** A valid matmul job spec: a (m×k) · b (k×n), filled with small deterministic values. */
export function matmulSpec(m: number, k: number, n: number, maxPricePerUnit = '1'): Record<string, unknown> {
  const a = Float32Array.from({ length: m * k }, (_, i) => ((i % 7) - 3) / 4);
  const b = Float32Array.from({ length: k * n }, (_, i) => ((i % 5) - 2) / 3);
  return {
    version: 1,
    kind: 'matmul',
    inputs: [encodeTensor('a', 'float32', [m, k], a), encodeTensor('b', 'float32', [k, n], b)],
    requirements: {},
    maxPricePerUnit,
    redundancy: 1,
    deadlineSeconds: 60,
  };
}
