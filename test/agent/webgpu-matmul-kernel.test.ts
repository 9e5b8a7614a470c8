// gpumesh's WGSL matmul (libs/compute/src/webgpu-matmul.ts) on a real Dawn adapter (llvmpipe in CI),
// against float64 sums: odd shapes (edges of the 64 × 64 tiles, k not a multiple of the unroll),
// batches with and without broadcasting, and the shapes it declines (left to tfjs's kernel, which must
// still answer). Without an adapter the test fails in CI and skips with a message elsewhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GpumeshMatMulProgram,
  loadTf,
  seededValues,
  useWebgpuMatmulKernel,
  webgpuBatchMatMul,
  type LoadedTf,
} from '@gpumesh/compute';
import { WebgpuGate } from '../helpers/webgpu.js';

let loaded: LoadedTf | undefined;
const gate = new WebgpuGate('webgpu matmul kernel test');

/** Max |got - want| / (1 + |want|) against float64 sums of a batch of [m,k]·[k,n] products. */
function relError(
  got: Float32Array,
  a: Float32Array,
  b: Float32Array,
  dims: { batchA: number; batchB: number; m: number; k: number; n: number },
): number {
  const { batchA, batchB, m, k, n } = dims;
  const batch = Math.max(batchA, batchB);
  let worst = 0;
  for (let t = 0; t < batch; t++) {
    const ao = (batchA === 1 ? 0 : t) * m * k;
    const bo = (batchB === 1 ? 0 : t) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[ao + i * k + p] * b[bo + p * n + j];
        worst = Math.max(worst, Math.abs(got[t * m * n + i * n + j] - s) / (1 + Math.abs(s)));
      }
    }
  }
  return worst;
}

describe('gpumesh WGSL matmul on the webgpu backend', () => {
  beforeAll(async () => {
    if ((await gate.open()) === undefined) return;
    loaded = await loadTf('webgpu');
  }, 60_000);

  afterAll(() => {
    if (loaded) useWebgpuMatmulKernel(loaded.tf, 'tfjs');
  });

  const need = (ctx: { skip: (note?: string) => void }): LoadedTf => gate.need(ctx, loaded);

  it.for([
    { batchA: 1, batchB: 1, m: 64, k: 64, n: 64 },
    { batchA: 1, batchB: 1, m: 77, k: 131, n: 92 },
    { batchA: 1, batchB: 1, m: 200, k: 33, n: 140 },
    { batchA: 3, batchB: 3, m: 37, k: 45, n: 20 },
    { batchA: 2, batchB: 1, m: 65, k: 40, n: 68 },
    { batchA: 1, batchB: 4, m: 50, k: 41, n: 36 },
  ])('agrees with float64 on $batchA×[$m,$k] · $batchB×[$k,$n]', async (dims, ctx) => {
    const { tf } = need(ctx);
    useWebgpuMatmulKernel(tf, 'gpumesh');
    const { batchA, batchB, m, k, n } = dims;
    const av = Float32Array.from(seededValues(batchA * m * k, 11 + m));
    const bv = Float32Array.from(seededValues(batchB * k * n, 13 + n));
    const shape = (batch: number, r: number, c: number): number[] =>
      batch === 1 && batchA === batchB ? [r, c] : [batch, r, c];
    const before = tf.memory().numTensors;
    const got = tf.tidy(() =>
      tf.matMul(tf.tensor(av, shape(batchA, m, k)), tf.tensor(bv, shape(batchB, k, n))),
    );
    expect(got.shape).toEqual([...(batchA === 1 && batchB === 1 ? [] : [Math.max(batchA, batchB)]), m, n]);
    const values = (await got.data()) as Float32Array;
    got.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(relError(values, av, bv, dims)).toBeLessThan(1e-5);
  });

  it('takes the product it is made for and declines the rest, which tfjs still answers', async (ctx) => {
    const { tf } = need(ctx);
    useWebgpuMatmulKernel(tf, 'gpumesh');
    const backend = tf.backend();
    const args = (a: number[], b: number[], transposeB = false) => ({
      inputs: { a: tf.zeros(a), b: tf.zeros(b) },
      backend,
      attrs: { transposeA: false, transposeB },
    });
    const taken = args([64, 64], [64, 64]);
    const out = webgpuBatchMatMul(tf, taken);
    expect(out?.shape).toEqual([64, 64]);
    if (out) backend.disposeData(out.dataId);
    expect(webgpuBatchMatMul(tf, args([64, 64], [64, 62]))).toBeNull(); // n not a multiple of 4
    expect(webgpuBatchMatMul(tf, args([64, 64], [64, 64], true))).toBeNull(); // transposed
    expect(webgpuBatchMatMul(tf, args([8, 8], [8, 8]))).toBeNull(); // too small to gain
    const av = Float32Array.from(seededValues(64 * 64, 5));
    const bv = Float32Array.from(seededValues(64 * 62, 6));
    const product = tf.tidy(() => tf.matMul(tf.tensor(av, [64, 64]), tf.tensor(bv, [64, 62])));
    const declined = await product.data();
    product.dispose();
    expect(
      relError(declined as Float32Array, av, bv, { batchA: 1, batchB: 1, m: 64, k: 64, n: 62 }),
    ).toBeLessThan(1e-5);
    expect(new GpumeshMatMulProgram(1, 65, 68).dispatch).toEqual([2, 2, 1]); // 17 vec4 columns in 16-wide tiles, 65 rows in 64-row tiles;
  });
});
