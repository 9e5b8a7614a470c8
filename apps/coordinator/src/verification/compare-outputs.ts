import { decodeTensor, type TensorWire } from '#protocol';

/** Relative L2 bound for float outputs of honest backends (wasm vs cpu measured here; see issue 5). */
export const FLOAT_RELATIVE_L2_TOLERANCE = 1e-4;
/** Absolute floor so all-near-zero outputs compare sensibly. */
export const FLOAT_ABSOLUTE_TOLERANCE = 1e-6;

export interface Agreement {
  agree: boolean;
  /** Why not, naming the tensor. */
  reason?: string;
  /** Largest relative L2 difference seen across float tensors. */
  maxRelativeL2: number;
}

/**
 * Compares two providers' outputs: same names, dtypes and shapes; integer and bool tensors exactly;
 * float tensors within a relative L2 bound (GPUs and SIMD paths differ in the last bits).
 */
export function compareOutputs(a: readonly TensorWire[], b: readonly TensorWire[]): Agreement {
  let maxRelativeL2 = 0;
  const byName = new Map(b.map((t) => [t.name, t]));
  if (a.length !== b.length)
    return { agree: false, reason: `${a.length} outputs vs ${b.length}`, maxRelativeL2 };
  for (const ta of a) {
    const tb = byName.get(ta.name);
    if (!tb) return { agree: false, reason: `output ${ta.name} missing`, maxRelativeL2 };
    if (ta.dtype !== tb.dtype || ta.shape.join('x') !== tb.shape.join('x')) {
      return { agree: false, reason: `output ${ta.name}: dtype/shape differ`, maxRelativeL2 };
    }
    const va = decodeTensor(ta).values;
    const vb = decodeTensor(tb).values;
    if (ta.dtype !== 'float32') {
      for (let i = 0; i < va.length; i++) {
        if (va[i] !== vb[i])
          return { agree: false, reason: `output ${ta.name}[${i}] differs`, maxRelativeL2 };
      }
      continue;
    }
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < va.length; i++) {
      const x = va[i];
      const y = vb[i];
      if (Number.isNaN(x) !== Number.isNaN(y))
        return { agree: false, reason: `output ${ta.name}: NaN mismatch`, maxRelativeL2 };
      if (Number.isNaN(x)) continue;
      diff += (x - y) ** 2;
      norm += x * x;
    }
    const rel = Math.sqrt(diff) / Math.max(Math.sqrt(norm), FLOAT_ABSOLUTE_TOLERANCE);
    maxRelativeL2 = Math.max(maxRelativeL2, rel);
    if (rel > FLOAT_RELATIVE_L2_TOLERANCE && Math.sqrt(diff) > FLOAT_ABSOLUTE_TOLERANCE) {
      return {
        agree: false,
        reason: `output ${ta.name}: relative L2 difference ${rel.toExponential(2)}`,
        maxRelativeL2,
      };
    }
  }
  return { agree: true, maxRelativeL2 };
}
