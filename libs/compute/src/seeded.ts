// Reproducible test and benchmark data, shared by the agent's checks, the benches and the tests.

/** Deterministic pseudo-random float32 values in [-1, 1) (xorshift32), for reproducible checks. */
export function seededValues(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}
