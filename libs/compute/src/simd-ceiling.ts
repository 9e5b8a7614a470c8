// The float32 ceiling of 128-bit WebAssembly SIMD on this CPU, measured rather than assumed: a small
// WebAssembly module (assembled below, no toolchain needed) runs independent chains of f32x4.mul and
// f32x4.add, the two instructions a wasm SIMD matmul kernel is made of (wasm SIMD has no fused
// multiply-add), and counts 4 FLOP per instruction. The best mix of chains is the ceiling a wasm matmul
// can approach on one core.

/** Mixes of (multiply chains, add chains) tried; V8 keeps up to ~14 v128 values in x64 registers. */
export const CEILING_MIXES: readonly (readonly [number, number])[] = [
  [6, 6],
  [7, 6],
  [5, 7],
  [6, 4],
  [8, 4],
];

/** Instruction groups per loop iteration (amortises the loop's own counter and branch). */
export const CEILING_UNROLL = 4;

const SIMD = 0xfd;
const F32X4_SPLAT = 19;
const F32X4_EXTRACT_LANE = 31;
const F32X4_ADD = 228;
const F32X4_MUL = 230;

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function section(id: number, body: number[]): number[] {
  return [id, ...leb(body.length), ...body];
}

/**
 * A module exporting `peak(m: f32, c: f32, n: i32): f32`: `muls` chains start at splat(m) and are
 * multiplied by it, `adds` chains start at splat(c) and have it added, `CEILING_UNROLL` times per
 * iteration for `n` iterations; it returns the sum of every chain's lane 0 (so nothing is dead code).
 */
export function ceilingModule(muls: number, adds: number): Uint8Array {
  const first = 3; // locals 0..2 are the parameters
  const mLocal = first + muls + adds;
  const cLocal = mLocal + 1;
  const op = (code: number): number[] => [SIMD, ...leb(code)];
  const get = (i: number): number[] => [0x20, ...leb(i)];
  const set = (i: number): number[] => [0x21, ...leb(i)];
  const body: number[] = [0x01, ...leb(muls + adds + 2), 0x7b]; // v128 locals
  body.push(...get(0), ...op(F32X4_SPLAT), ...set(mLocal), ...get(1), ...op(F32X4_SPLAT), ...set(cLocal));
  for (let i = 0; i < muls; i++) body.push(...get(mLocal), ...set(first + i));
  for (let i = 0; i < adds; i++) body.push(...get(cLocal), ...set(first + muls + i));
  body.push(0x03, 0x40); // loop
  for (let u = 0; u < CEILING_UNROLL; u++) {
    for (let i = 0; i < Math.max(muls, adds); i++) {
      if (i < muls) body.push(...get(first + i), ...get(mLocal), ...op(F32X4_MUL), ...set(first + i));
      if (i < adds) {
        const l = first + muls + i;
        body.push(...get(l), ...get(cLocal), ...op(F32X4_ADD), ...set(l));
      }
    }
  }
  // n -= 1; br_if (n != 0) to the loop
  body.push(...get(2), 0x41, 1, 0x6b, 0x22, 2, 0x0d, 0, 0x0b);
  body.push(0x43, 0, 0, 0, 0); // f32.const 0
  for (let i = 0; i < muls + adds; i++) body.push(...get(first + i), ...op(F32X4_EXTRACT_LANE), 0, 0x92);
  body.push(0x0b);
  const name = [...Buffer.from('peak')];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, 3, 0x7d, 0x7d, 0x7f, 1, 0x7d]), // (f32, f32, i32) -> f32
    ...section(3, [1, 0]),
    ...section(7, [1, name.length, ...name, 0x00, 0]),
    ...section(10, [1, ...leb(body.length), ...body]),
  ]);
}

export type PeakFn = (m: number, c: number, iterations: number) => number;

/** The part of the WebAssembly global used here (this project's TypeScript libs do not declare it). */
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object) => { readonly exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export function ceilingKernel(muls: number, adds: number): PeakFn {
  const instance = new wasm.Instance(new wasm.Module(ceilingModule(muls, adds)));
  return instance.exports.peak as PeakFn;
}

export interface SimdCeiling {
  /** Best GFLOP/s over the mixes (4 FLOP per f32x4.mul or f32x4.add). */
  readonly gflops: number;
  readonly muls: number;
  readonly adds: number;
}

/**
 * A calibrated probe of one mix: each call runs about `roundMs` of the kernel and returns its GFLOP/s.
 * Interleaved with another measurement (a matmul), it gives a ratio that the machine's noise affects
 * on both sides alike.
 */
export function ceilingProbe(muls: number, adds: number, roundMs: number): () => number {
  const peak = ceilingKernel(muls, adds);
  const flopPerIteration = CEILING_UNROLL * (muls + adds) * 4;
  // Calibrate the iteration count to about roundMs (this also warms the optimised code up).
  let iterations = 10_000;
  for (;;) {
    const t0 = performance.now();
    peak(1, 0, iterations);
    const ms = performance.now() - t0;
    if (ms >= roundMs / 4 || iterations >= 2 ** 28) {
      iterations = Math.max(1, Math.min(2 ** 30, Math.round((iterations * roundMs) / Math.max(ms, 0.01))));
      break;
    }
    iterations *= 4;
  }
  return () => {
    const t0 = performance.now();
    // 1 and 0 keep every value finite and normal (denormals would slow the units down).
    peak(1, 0, iterations);
    return (flopPerIteration * iterations) / ((performance.now() - t0) * 1e6);
  };
}

/**
 * Measures the wasm SIMD float32 ceiling of the core this thread runs on: each mix in `CEILING_MIXES`
 * for `rounds` rounds of about `roundMs`, the best round of the best mix.
 */
export function measureWasmSimdCeiling(options: { roundMs?: number; rounds?: number } = {}): SimdCeiling {
  const roundMs = options.roundMs ?? 60;
  const rounds = options.rounds ?? 5;
  let best: SimdCeiling = { gflops: 0, muls: 0, adds: 0 };
  for (const [muls, adds] of CEILING_MIXES) {
    const probe = ceilingProbe(muls, adds, roundMs);
    for (let r = 0; r < rounds; r++) {
      const gflops = probe();
      if (gflops > best.gflops) best = { gflops, muls, adds };
    }
  }
  return best;
}
