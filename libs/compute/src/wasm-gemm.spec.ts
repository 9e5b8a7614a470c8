import { describe, expect, it } from 'vitest';

import { seededValues } from './seeded.js';
import { loadTf } from './tf-loader.js';
import { GEMM_KC, GEMM_MAX_BYTES, WasmGemm, gemmBytes, gemmModule } from './wasm-gemm.js';
import {
  GEMM_KEEP_BYTES,
  GEMM_MIN_MACS,
  prefersGemm,
  wasmGemmMemoryBytes,
  gemmBatchMatMul,
  gemmFusedMatMul,
  useWasmMatmulKernel,
  wasmMatmulKernelFromEnv,
} from './wasm-matmul.js';

/** op(A) · op(B) in float64, the independent reference. */
function reference(
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  ta: boolean,
  tb: boolean,
): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let kk = 0; kk < k; kk++)
        s += (ta ? a[kk * m + i] : a[i * k + kk]) * (tb ? b[j * k + kk] : b[kk * n + j]);
      c[i * n + j] = s;
    }
  }
  return c;
}

/** Largest |x − ref| relative to sqrt(k) (float32 sums of k products of values in [-1, 1)). */
function worstError(x: ArrayLike<number>, ref: Float64Array, k: number): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(x[i] - ref[i]));
  return worst / Math.sqrt(Math.max(k, 1));
}

describe('WasmGemm', () => {
  it('assembles a valid module', () => {
    expect(gemmModule().subarray(0, 4)).toEqual(new Uint8Array([0, 0x61, 0x73, 0x6d]));
  });

  it('multiplies every shape and transposition like a float64 reference, writing only its output', () => {
    const gemm = new WasmGemm();
    // Edges (not multiples of 4 rows or 8 columns), one and several k blocks, vectors.
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [3, 5, 7],
      [4, 8, 16],
      [5, 9, GEMM_KC + 1],
      [33, 17, 2 * GEMM_KC + 3],
      [64, 64, 64],
      [1, 100, 50],
      [100, 1, 50],
    ];
    for (const [m, n, k] of shapes) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          // Operands at an offset inside larger arrays, the output between sentinels.
          const a = seededValues(m * k + 3, m * 131 + k);
          const b = seededValues(k * n + 5, n * 17 + k);
          const out = new Float32Array(m * n + 4).fill(42);
          gemm.multiply(
            { data: a, offset: 3, transposed: ta },
            { data: b, offset: 5, transposed: tb },
            m,
            n,
            k,
            out,
            2,
          );
          const ref = reference(a.subarray(3), b.subarray(5), m, n, k, ta, tb);
          expect(
            worstError(out.subarray(2, 2 + m * n), ref, k),
            `${m}×${k}·${k}×${n} ${ta} ${tb}`,
          ).toBeLessThan(1e-6);
          expect([out[0], out[1], out[m * n + 2], out[m * n + 3]]).toEqual([42, 42, 42, 42]);
        }
      }
    }
  });

  it('gives zeros for k = 0, and grows its memory once for a larger product', () => {
    const gemm = new WasmGemm();
    const out = new Float32Array(6).fill(7);
    gemm.multiply(
      { data: new Float32Array(0), offset: 0, transposed: false },
      { data: new Float32Array(0), offset: 0, transposed: false },
      2,
      3,
      0,
      out,
      0,
    );
    expect(Array.from(out)).toEqual([0, 0, 0, 0, 0, 0]);
    const before = gemm.memoryBytes;
    const n = 300;
    const a = seededValues(n * n, 1);
    const big = new Float32Array(n * n);
    gemm.multiply(
      { data: a, offset: 0, transposed: false },
      { data: a, offset: 0, transposed: true },
      n,
      n,
      n,
      big,
      0,
    );
    expect(gemm.memoryBytes).toBeGreaterThanOrEqual(gemmBytes(n, n, n));
    expect(gemm.memoryBytes).toBeGreaterThan(before);
    const grown = gemm.memoryBytes;
    gemm.multiply(
      { data: a, offset: 0, transposed: false },
      { data: a, offset: 0, transposed: false },
      n,
      n,
      n,
      big,
      0,
    );
    expect(gemm.memoryBytes).toBe(grown);
  });

  it('refuses a product needing more than its memory cap before touching anything', () => {
    const gemm = new WasmGemm();
    const tiny = { data: new Float32Array(1), offset: 0, transposed: false };
    expect(gemmBytes(20_000, 20_000, 1)).toBeGreaterThan(GEMM_MAX_BYTES);
    expect(() => gemm.multiply(tiny, tiny, 20_000, 20_000, 1, new Float32Array(1), 0)).toThrow(RangeError);
  });
});

describe('the wasm backend’s BatchMatMul through WasmGemm', () => {
  it('matches the reference for 2-D, transposed, batched and broadcast products, leaking no tensor', async () => {
    const { tf, matmulKernel } = await loadTf('wasm');
    expect(matmulKernel).toBe('gemm');
    const before = tf.memory().numTensors;
    // Large enough that gemm takes every one of these products (checked below), with edges.
    const m = 202;
    const k = 530;
    const n = 70;
    for (const [ta, tb] of [
      [false, false],
      [true, true],
    ] as const)
      expect(prefersGemm(m, n, k, ta, tb)).toBe(true);
    const aData = seededValues(3 * m * k, 5);
    const bData = seededValues(3 * k * n, 6);
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const a = tf.tensor2d(aData.subarray(0, m * k), ta ? [k, m] : [m, k]);
      const b = tf.tensor2d(bData.subarray(0, k * n), tb ? [n, k] : [k, n]);
      const c = tf.matMul(a, b, ta, tb);
      expect(c.shape).toEqual([m, n]);
      const ref = reference(aData.subarray(0, m * k), bData.subarray(0, k * n), m, n, k, ta, tb);
      expect(worstError(c.dataSync(), ref, k)).toBeLessThan(1e-6);
      tf.dispose([a, b, c]);
    }
    // Same batch on both sides, and a 2-D b broadcast over a's batch.
    const a3 = tf.tensor3d(aData, [3, m, k]);
    const b3 = tf.tensor3d(bData, [3, k, n]);
    const b2 = tf.tensor2d(bData.subarray(0, k * n), [k, n]);
    const c3 = tf.matMul(a3, b3);
    const batched = c3.dataSync();
    const c3b = tf.matMul(a3, b2);
    const broadcast = c3b.dataSync();
    for (let i = 0; i < 3; i++) {
      const ai = aData.subarray(i * m * k, (i + 1) * m * k);
      const refBatched = reference(ai, bData.subarray(i * k * n, (i + 1) * k * n), m, n, k, false, false);
      const refBroadcast = reference(ai, bData.subarray(0, k * n), m, n, k, false, false);
      expect(worstError(batched.subarray(i * m * n, (i + 1) * m * n), refBatched, k)).toBeLessThan(1e-6);
      expect(worstError(broadcast.subarray(i * m * n, (i + 1) * m * n), refBroadcast, k)).toBeLessThan(1e-6);
    }
    tf.dispose([a3, b3, b2, c3, c3b]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('leaves small, non-float32 and broadcasting products to the original kernel, and can be switched back', async () => {
    const { tf } = await loadTf('wasm');
    const gemm = new (await import('./wasm-gemm.js')).WasmGemm();
    const backend = tf.backend();
    const small = { a: tf.zeros([8, 8]), b: tf.zeros([8, 8]) };
    const attrs = { transposeA: false, transposeB: false };
    expect(gemmBatchMatMul(gemm, { inputs: small, backend, attrs })).toBeNull();
    const ints = { a: tf.zeros([64, 64], 'int32'), b: tf.zeros([64, 64], 'int32') };
    expect(gemmBatchMatMul(gemm, { inputs: ints, backend, attrs })).toBeNull();
    const bcast = { a: tf.zeros([2, 256, 256]), b: tf.zeros([1, 256, 256]) }; // large enough for gemm
    expect(gemmBatchMatMul(gemm, { inputs: bcast, backend, attrs })).toBeNull();
    tf.dispose([small.a, small.b, ints.a, ints.b, bcast.a, bcast.b]);

    const a = tf.tensor2d(seededValues(128 * 128, 9), [128, 128]);
    const withGemm = tf.matMul(a, a).dataSync();
    useWasmMatmulKernel(tf, 'xnnpack');
    const withXnnpack = tf.matMul(a, a).dataSync();
    useWasmMatmulKernel(tf, 'gemm');
    let worst = 0;
    for (let i = 0; i < withGemm.length; i++) worst = Math.max(worst, Math.abs(withGemm[i] - withXnnpack[i]));
    expect(worst).toBeLessThan(1e-4);
    a.dispose();
  });

  it('runs tf.fused.matMul (bias, then activation) like the reference, and leaves other activations to XNNPACK', async () => {
    const { tf } = await loadTf('wasm');
    const before = tf.memory().numTensors;
    const m = 202;
    const k = 530;
    const n = 70;
    const aData = seededValues(m * k, 11);
    const bData = seededValues(k * n, 12);
    const biasData = seededValues(n, 13);
    const product = reference(aData, bData, m, n, k, false, false);
    const expected: Record<string, (v: number) => number> = {
      linear: (v) => v,
      relu: (v) => Math.max(v, 0),
      relu6: (v) => Math.min(Math.max(v, 0), 6),
      leakyrelu: (v) => (v < 0 ? 0.1 * v : v),
      sigmoid: (v) => 1 / (1 + Math.exp(-v)),
    };
    const a = tf.tensor2d(aData, [m, k]);
    const b = tf.tensor2d(bData, [k, n]);
    const bias = tf.tensor1d(biasData);
    // Scale up so relu6 clips some values.
    const a8 = tf.mul(a, 8) as typeof a;
    for (const [activation, f] of Object.entries(expected)) {
      for (const scale of [1, 8]) {
        const c = tf.fused.matMul({
          a: scale === 1 ? a : a8,
          b,
          bias,
          activation: activation as 'linear',
          leakyreluAlpha: 0.1,
        });
        const ref = Float64Array.from(product, (v, i) => f(scale * v + biasData[i % n]));
        expect(worstError(c.dataSync(), ref, k), `${activation} ×${scale}`).toBeLessThan(1e-6 * scale);
        c.dispose();
      }
    }
    const args = (activation: string, biasTensor: typeof bias | null) => ({
      inputs: { a, b, bias: biasTensor },
      backend: tf.backend(),
      attrs: { transposeA: false, transposeB: false, activation },
    });
    const gemm = new (await import('./wasm-gemm.js')).WasmGemm();
    expect(gemmFusedMatMul(gemm, args('sigmoid', bias))).toBeNull();
    const wrongBias = tf.tensor1d(seededValues(5, 1));
    expect(gemmFusedMatMul(gemm, args('relu', wrongBias))).toBeNull();
    const handled = gemmFusedMatMul(gemm, args('relu', bias));
    expect(handled?.shape).toEqual([m, n]);
    if (handled) tf.engine().disposeTensor(tf.engine().makeTensorFromTensorInfo(handled));
    tf.dispose([a, b, bias, a8, wrongBias]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('takes the products it was measured to win: large plain ones, and transposed ones but a row times Bᵀ', () => {
    expect(prefersGemm(1024, 1024, 1024, false, false)).toBe(true);
    expect(prefersGemm(128, 1024, 1024, false, false)).toBe(true);
    expect(prefersGemm(1, 1024, 1024, false, false)).toBe(false);
    expect(prefersGemm(16, 1024, 1024, false, false)).toBe(false);
    expect(prefersGemm(128, 128, 128, false, false)).toBe(false);
    expect(prefersGemm(64, 64, 64, true, false)).toBe(true);
    expect(prefersGemm(8, 1024, 1024, false, true)).toBe(true);
    expect(prefersGemm(1, 1024, 1024, true, false)).toBe(true);
    expect(prefersGemm(1, 1024, 1024, false, true)).toBe(false);
    expect(prefersGemm(32, 32, 32, true, true)).toBe(false);
    expect(GEMM_MIN_MACS).toBe(64 ** 3);
  });

  it('runs a product too large for the thread’s kept instance on a throwaway one', async () => {
    const { tf } = await loadTf('wasm');
    const n = 4200; // an outer product: 4200² floats of kernel memory, over GEMM_KEEP_BYTES
    expect(gemmBytes(n, n, 1)).toBeGreaterThan(GEMM_KEEP_BYTES);
    expect(prefersGemm(n, n, 1, false, false)).toBe(true);
    const col = seededValues(n, 21);
    const row = seededValues(n, 22);
    const a = tf.tensor2d(col, [n, 1]);
    const b = tf.tensor2d(row, [1, n]);
    const c = tf.matMul(a, b);
    const out = c.dataSync();
    for (const [i, j] of [
      [0, 0],
      [n - 1, n - 1],
      [1234, 4000],
    ])
      expect(out[i * n + j]).toBeCloseTo(col[i] * row[j], 6);
    expect(wasmGemmMemoryBytes()).toBeLessThanOrEqual(GEMM_KEEP_BYTES);
    tf.dispose([a, b, c]);
  });

  it('reads GPUMESH_WASM_MATMUL, refusing anything but gemm and xnnpack', () => {
    expect(wasmMatmulKernelFromEnv({})).toBe('gemm');
    expect(wasmMatmulKernelFromEnv({ GPUMESH_WASM_MATMUL: ' XNNPACK ' })).toBe('xnnpack');
    expect(() => wasmMatmulKernelFromEnv({ GPUMESH_WASM_MATMUL: 'fast' })).toThrow(/gemm or xnnpack/);
  });
});
