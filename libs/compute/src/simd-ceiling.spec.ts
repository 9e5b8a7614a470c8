import { describe, expect, it } from 'vitest';

import {
  CEILING_MIXES,
  CEILING_UNROLL,
  ceilingKernel,
  ceilingModule,
  measureWasmSimdCeiling,
} from './simd-ceiling.js';

describe('wasm SIMD ceiling kernel', () => {
  it('assembles a module V8 compiles for every mix it measures', () => {
    for (const [muls, adds] of CEILING_MIXES) {
      expect(ceilingModule(muls, adds).subarray(0, 4)).toEqual(new Uint8Array([0, 0x61, 0x73, 0x6d]));
      expect(typeof ceilingKernel(muls, adds)).toBe('function');
    }
  });

  it('runs the chains it claims to run (so the FLOP count is true)', () => {
    // 3 iterations × CEILING_UNROLL steps: multiply chains reach 2^(1+12), add chains 1 + 12.
    const steps = 3 * CEILING_UNROLL;
    for (const [muls, adds] of [
      [6, 6],
      [8, 4],
      [2, 0],
    ] as const) {
      expect(ceilingKernel(muls, adds)(2, 1, 3)).toBe(muls * 2 ** (1 + steps) + adds * (1 + steps));
    }
  });

  it('measures a positive, finite ceiling and names the mix that reached it', () => {
    const c = measureWasmSimdCeiling({ roundMs: 5, rounds: 1 });
    expect(Number.isFinite(c.gflops) && c.gflops > 0).toBe(true);
    expect(CEILING_MIXES.some(([m, a]) => m === c.muls && a === c.adds)).toBe(true);
  });
});
