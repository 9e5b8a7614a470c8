import { decodeTensor, encodeTensor, matmulDims, type JobSpec, type TensorWire } from '#protocol';

/** The coordinator cannot compute this job itself (its kind needs the #compute runtime). */
export class ReferenceUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReferenceUnavailableError';
  }
}

/** Kinds the coordinator computes itself today (canaries are made only of these). */
export const REFERENCE_KINDS: readonly JobSpec['kind'][] = ['matmul'];

export function canComputeReference(spec: JobSpec): boolean {
  return REFERENCE_KINDS.includes(spec.kind);
}

/**
 * The coordinator's own answer to a job, in float64 accumulation rounded to the wire dtype (the
 * provider agent names the matmul output `c`). Interface of `#compute`'s `computeReference(spec,
 * { artifacts?, backend? })`; inference and train arrive with that library (H1a), until then they
 * throw ReferenceUnavailableError and their disagreements are broken by a further provider only.
 */
export function computeReference(spec: JobSpec): Promise<TensorWire[]> {
  if (spec.kind !== 'matmul') {
    return Promise.reject(
      new ReferenceUnavailableError(`no coordinator reference for ${spec.kind} jobs yet`),
    );
  }
  const a = spec.inputs.find((t) => t.name === 'a');
  const b = spec.inputs.find((t) => t.name === 'b');
  if (!a || !b) return Promise.reject(new ReferenceUnavailableError('matmul needs inputs a and b'));
  const ta = spec.params.transposeA ?? false;
  const tb = spec.params.transposeB ?? false;
  const { m, n, kA: k } = matmulDims(a.shape, b.shape, ta, tb);
  const av = decodeTensor(a).values;
  const bv = decodeTensor(b).values;
  const [, a1] = a.shape;
  const [, b1] = b.shape;
  const isInt = a.dtype === 'int32';
  const out = isInt ? new Int32Array(m * n) : new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let x = 0; x < k; x++) {
        const va = Number(ta ? av[x * a1 + i] : av[i * a1 + x]);
        const vb = Number(tb ? bv[j * b1 + x] : bv[x * b1 + j]);
        s += va * vb;
      }
      out[i * n + j] = isInt ? s | 0 : s;
    }
  }
  return Promise.resolve([encodeTensor('c', a.dtype === 'int32' ? 'int32' : 'float32', [m, n], out)]);
}
