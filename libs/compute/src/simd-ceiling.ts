// The float32 ceiling of 128-bit WebAssembly SIMD on this CPU, measured rather than assumed: a small
// WebAssembly module (assembled below, no toolchain needed) runs independent chains of f32x4.mul and
// f32x4.add, the two instructions a wasm SIMD matmul kernel is made of (wasm SIMD has no fused
// multiply-add), and counts 4 FLOP per instruction. The best mix of chains is the ceiling a wasm matmul
// can approach on one core.

import {
  F32,
  I32,
  SIMD_OP,
  V128,
  WASM_HEADER,
  instantiate,
  leb,
  localGet,
  localSet,
  name,
  section,
  simd,
} from './wasm-bytes.js';

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

/**
 * A module exporting `peak(m: f32, c: f32, n: i32): f32`: `muls` chains start at splat(m) and are
 * multiplied by it, `adds` chains start at splat(c) and have it added, `CEILING_UNROLL` times per
 * iteration for `n` iterations; it returns the sum of every chain's lane 0 (so nothing is dead code).
 */
export function ceilingModule(muls: number, adds: number): Uint8Array {
  const first = 3; // locals 0..2 are the parameters
  const mLocal = first + muls + adds;
  const cLocal = mLocal + 1;
  const body: number[] = [0x01, ...leb(muls + adds + 2), V128]; // v128 locals
  body.push(
    ...localGet(0),
    ...simd(SIMD_OP.f32x4Splat),
    ...localSet(mLocal),
    ...localGet(1),
    ...simd(SIMD_OP.f32x4Splat),
    ...localSet(cLocal),
  );
  for (let i = 0; i < muls; i++) body.push(...localGet(mLocal), ...localSet(first + i));
  for (let i = 0; i < adds; i++) body.push(...localGet(cLocal), ...localSet(first + muls + i));
  body.push(0x03, 0x40); // loop
  for (let u = 0; u < CEILING_UNROLL; u++) {
    for (let i = 0; i < Math.max(muls, adds); i++) {
      if (i < muls)
        body.push(
          ...localGet(first + i),
          ...localGet(mLocal),
          ...simd(SIMD_OP.f32x4Mul),
          ...localSet(first + i),
        );
      if (i < adds) {
        const l = first + muls + i;
        body.push(...localGet(l), ...localGet(cLocal), ...simd(SIMD_OP.f32x4Add), ...localSet(l));
      }
    }
  }
  // n -= 1; br_if (n != 0) to the loop
  body.push(...localGet(2), 0x41, 1, 0x6b, 0x22, 2, 0x0d, 0, 0x0b);
  body.push(0x43, 0, 0, 0, 0); // f32.const 0
  for (let i = 0; i < muls + adds; i++)
    body.push(...localGet(first + i), ...simd(SIMD_OP.f32x4ExtractLane), 0, 0x92);
  body.push(0x0b);
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [1, 0x60, 3, F32, F32, I32, 1, F32]), // (f32, f32, i32) -> f32
    ...section(3, [1, 0]),
    ...section(7, [1, ...name('peak'), 0x00, 0]),
    ...section(10, [1, ...leb(body.length), ...body]),
  ]);
}

export type PeakFn = (m: number, c: number, iterations: number) => number;

export function ceilingKernel(muls: number, adds: number): PeakFn {
  return instantiate(ceilingModule(muls, adds)).peak as PeakFn;
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
