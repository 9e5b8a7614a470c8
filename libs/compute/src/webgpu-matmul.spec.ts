import { describe, expect, it } from 'vitest';

import { webgpuCeilingSource } from './webgpu-ceiling.js';
import { GpumeshMatMulProgram, webgpuMatmulKernelFor, webgpuMatmulSource } from './webgpu-matmul.js';

describe('webgpu matmul kernel choice', () => {
  it('uses gpumesh’s kernel on a software adapter and tfjs’s on a GPU unless told', () => {
    expect(webgpuMatmulKernelFor(true, {})).toBe('gpumesh');
    expect(webgpuMatmulKernelFor(false, {})).toBe('tfjs');
    expect(webgpuMatmulKernelFor(false, { GPUMESH_WEBGPU_MATMUL: 'gpumesh' })).toBe('gpumesh');
    expect(webgpuMatmulKernelFor(true, { GPUMESH_WEBGPU_MATMUL: ' TFJS ' })).toBe('tfjs');
    expect(() => webgpuMatmulKernelFor(true, { GPUMESH_WEBGPU_MATMUL: 'cublas' })).toThrow(/gpumesh or tfjs/);
  });

  it('unrolls 8 rows × 2 vec4 columns of accumulators, with a tail loop for k and guarded stores', () => {
    const src = webgpuMatmulSource();
    expect(src.match(/var c\d+_\d+ = vec4<f32>\(0\.0\);/g)).toHaveLength(16);
    // 4 unrolled k steps plus the tail step, each 8 × 2 FMAs.
    expect(src.match(/fma\(/g)).toHaveLength(5 * 16);
    expect(src.match(/result\[/g)).toHaveLength(16);
    expect(src).toContain('for (; k < K; k++)');
  });

  it('dispatches one workgroup per 64 rows and 64 columns of each batch', () => {
    expect(new GpumeshMatMulProgram(1, 1024, 1024).dispatch).toEqual([16, 16, 1]);
    expect(new GpumeshMatMulProgram(3, 1, 4).dispatch).toEqual([1, 1, 3]);
  });

  it('writes one FMA per chain per loop turn in the ceiling kernel', () => {
    expect(webgpuCeilingSource(12).match(/fma\(/g)).toHaveLength(12);
  });
});
