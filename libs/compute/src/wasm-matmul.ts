// Routes the wasm backend's float32 BatchMatMul (tf.matMul and what builds on it) and _FusedMatMul
// (tf.fused.matMul: Dense layers) through WasmGemm (wasm-gemm.ts) when the product is large enough to
// gain from it; everything else keeps tfjs-backend-wasm's own kernels (XNNPACK). Jobs still run
// through TensorFlow.js: this replaces two kernels in its registry, in the thread that loads the wasm
// backend.
import type * as tfTypes from '@tensorflow/tfjs';

import type { Tf } from './tf.js';
import { GEMM_MAX_BYTES, WasmGemm, gemmBytes } from './wasm-gemm.js';

/** Which kernel runs the wasm backend's large float32 matmuls. */
export type WasmMatmulKernel = 'gemm' | 'xnnpack';

/** Below this many multiply-adds (M·N·K) XNNPACK's kernel keeps every product. */
export const GEMM_MIN_MACS = 64 * 64 * 64;

/**
 * Whether WasmGemm beats tfjs-backend-wasm's kernel on this product, from measurements (1024-class
 * shapes, 2026-11-25, XNNPACK time / gemm time): without transposes XNNPACK's kernel packs nothing and
 * wins on skinny products (1×1024×1024: 0.11, 16×1024×1024: 0.60, 64×64×64: 0.81, 128³: 0.95) while
 * gemm pays for packing B once a call and wins from M ≥ 128, N ≥ 64 and ≈ 192³ multiply-adds
 * (192³ ×1.09, 128×1024×1024 ×1.07, 512³ ×1.34, 1024³ ×1.37); with a transposed operand tfjs's
 * kernel takes a slow path (64³ ×6.4–7.9, 512³ ×15–35, 8×1024×1024 ×2.5–18) except for a single row
 * times a transposed B (1×1024×1024 ×0.34).
 */
export function prefersGemm(
  m: number,
  n: number,
  k: number,
  transposeA: boolean,
  transposeB: boolean,
): boolean {
  const macs = m * n * k;
  if (macs < GEMM_MIN_MACS) return false;
  if (transposeA || transposeB) return m >= 4 || !transposeB;
  return m >= 128 && n >= 64 && macs >= 192 ** 3;
}

/** The wasm backend's view of its heap, as the kernel uses it. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: 'float32'): tfTypes.TensorInfo;
  typedArrayFromHeap(info: tfTypes.TensorInfo): Float32Array;
}

interface MatMulArgs {
  readonly inputs: { readonly a: tfTypes.TensorInfo; readonly b: tfTypes.TensorInfo };
  readonly backend: unknown;
  readonly attrs: { readonly transposeA: boolean; readonly transposeB: boolean };
}

const sameDims = (x: readonly number[], y: readonly number[]): boolean =>
  x.length === y.length && x.every((d, i) => d === y[i]);
const size = (dims: readonly number[]): number => dims.reduce((p, d) => p * d, 1);

/**
 * The product through `gemm`, or null to leave it to the original kernel: not float32, too small,
 * batch dimensions that broadcast other than "one side has none", or more memory than the kernel takes.
 */
export function gemmBatchMatMul(gemm: WasmGemm, args: MatMulArgs): tfTypes.TensorInfo | null {
  const { a, b } = args.inputs;
  const { transposeA, transposeB } = args.attrs;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const aRank = a.shape.length;
  const bRank = b.shape.length;
  if (aRank < 2 || bRank < 2) return null;
  const m = transposeA ? a.shape[aRank - 1] : a.shape[aRank - 2];
  const k = transposeA ? a.shape[aRank - 2] : a.shape[aRank - 1];
  const kB = transposeB ? b.shape[bRank - 1] : b.shape[bRank - 2];
  const n = transposeB ? b.shape[bRank - 2] : b.shape[bRank - 1];
  if (k !== kB) return null; // the original kernel reports the mismatch
  const bytes = gemmBytes(m, n, k);
  if (!prefersGemm(m, n, k, transposeA, transposeB) || bytes > GEMM_MAX_BYTES) return null;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  let outer: number[];
  if (sameDims(outerA, outerB) || outerB.length === 0) outer = outerA;
  else if (outerA.length === 0) outer = outerB;
  else return null;
  const batch = size(outer);
  // A product larger than the thread's instance keeps gets an instance of its own, freed with it.
  const kernel = bytes > GEMM_KEEP_BYTES ? new WasmGemm() : gemm;
  kernel.reserve(m, n, k); // before the output exists: a failure here leaves nothing behind
  const backend = args.backend as WasmBackendLike;
  // Allocate first: a heap that grows detaches earlier views.
  const out = backend.makeOutput([...outer, m, n], 'float32');
  const outData = backend.typedArrayFromHeap(out);
  const aData = backend.typedArrayFromHeap(a);
  const bData = backend.typedArrayFromHeap(b);
  const aStride = outerA.length === 0 ? 0 : m * k;
  const bStride = outerB.length === 0 ? 0 : k * n;
  for (let i = 0; i < batch; i++) {
    kernel.multiply(
      { data: aData, offset: i * aStride, transposed: transposeA },
      { data: bData, offset: i * bStride, transposed: transposeB },
      m,
      n,
      k,
      outData,
      i * m * n,
    );
  }
  return out;
}

interface FusedMatMulArgs {
  readonly inputs: {
    readonly a: tfTypes.TensorInfo;
    readonly b: tfTypes.TensorInfo;
    readonly bias?: tfTypes.TensorInfo | null;
    readonly preluActivationWeights?: tfTypes.TensorInfo | null;
  };
  readonly backend: unknown;
  readonly attrs: {
    readonly transposeA: boolean;
    readonly transposeB: boolean;
    readonly activation: string;
    readonly leakyreluAlpha?: number;
  };
}

/** Activations applied after the product here; the others (prelu, elu, sigmoid) stay with XNNPACK. */
const ACTIVATIONS: Readonly<Record<string, (v: number, alpha: number) => number>> = {
  linear: (v) => v,
  relu: (v) => (v < 0 ? 0 : v),
  relu6: (v) => (v < 0 ? 0 : v > 6 ? 6 : v),
  leakyrelu: (v, alpha) => (v < 0 ? alpha * v : v),
};

/**
 * tf.fused.matMul (what a Dense layer runs): activation(op(a) · op(b) + bias) through `gemm`, or null
 * for the original kernel. The bias must be one value or one per output column (rank 1, as the
 * original requires).
 */
export function gemmFusedMatMul(gemm: WasmGemm, args: FusedMatMulArgs): tfTypes.TensorInfo | null {
  const { a, b, bias, preluActivationWeights } = args.inputs;
  const { transposeA, transposeB, activation, leakyreluAlpha } = args.attrs;
  const activate = ACTIVATIONS[activation];
  if (activate === undefined || preluActivationWeights) return null;
  const n = transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
  if (
    bias &&
    (bias.dtype !== 'float32' || bias.shape.length !== 1 || (bias.shape[0] !== n && bias.shape[0] !== 1))
  )
    return null;
  const out = gemmBatchMatMul(gemm, {
    inputs: { a, b },
    backend: args.backend,
    attrs: { transposeA, transposeB },
  });
  if (out === null) return null;
  if (activation === 'linear' && !bias) return out;
  const backend = args.backend as WasmBackendLike;
  const data = backend.typedArrayFromHeap(out);
  const biasData = bias ? backend.typedArrayFromHeap(bias) : null;
  const perColumn = biasData !== null && biasData.length === n;
  const alpha = leakyreluAlpha ?? 0.2;
  for (let i = 0, j = 0; i < data.length; i++, j = j + 1 === n ? 0 : j + 1) {
    const v = biasData === null ? data[i] : data[i] + biasData[perColumn ? j : 0];
    data[i] = activate(v, alpha);
  }
  return out;
}

/**
 * Largest working memory the thread's kernel instance grows to and keeps (a 2048² product needs 19 MiB,
 * 4096² 71 MiB); WebAssembly memory never shrinks, so larger products use a throwaway instance.
 */
export const GEMM_KEEP_BYTES = 64 * 2 ** 20;

/** Bytes held by this thread's kernel instance (for the executor's memory accounting). */
export function wasmGemmMemoryBytes(): number {
  return threadGemm?.memoryBytes ?? 0;
}

/** Kernels replaced in this thread, by tfjs instance: installing twice keeps the first original. */
const installed = new WeakMap<object, WasmMatmulKernel>();
/** This thread's kernel instance (its memory grows to the largest product and is reused). */
let threadGemm: WasmGemm | undefined;

/**
 * Makes `kernel` run the wasm backend's BatchMatMul in this thread: 'gemm' registers WasmGemm in front
 * of the original kernel, 'xnnpack' restores the original. Call after the wasm backend is loaded.
 */
export function useWasmMatmulKernel(tf: Tf, kernel: WasmMatmulKernel): void {
  const current = installed.get(tf) ?? 'xnnpack';
  if (current === kernel) return;
  threadGemm ??= new WasmGemm();
  const gemm = threadGemm;
  swapKernel(
    tf,
    'BatchMatMul',
    kernel === 'gemm' ? (args) => gemmBatchMatMul(gemm, args as MatMulArgs) : null,
  );
  swapKernel(
    tf,
    '_FusedMatMul',
    kernel === 'gemm' ? (args) => gemmFusedMatMul(gemm, args as FusedMatMulArgs) : null,
  );
  installed.set(tf, kernel);
}

/**
 * Registers `first` in front of the wasm backend's original `kernelName` (which runs whenever `first`
 * returns null), or with null restores the original.
 */
function swapKernel(
  tf: Tf,
  kernelName: string,
  first: ((args: unknown) => tfTypes.TensorInfo | null) | null,
): void {
  const config = tf.getKernel(kernelName, 'wasm') as
    (tfTypes.KernelConfig & { original?: tfTypes.KernelConfig }) | undefined;
  if (!config) throw new Error(`the wasm backend has no ${kernelName} kernel to replace`);
  const original = config.original ?? config;
  tf.unregisterKernel(kernelName, 'wasm');
  if (first === null) {
    tf.registerKernel(original);
    return;
  }
  const originalFn = original.kernelFunc as unknown as (args: unknown) => tfTypes.TensorInfo;
  const replacement: tfTypes.KernelConfig & { original: tfTypes.KernelConfig } = {
    ...original,
    kernelFunc: ((args: unknown) => first(args) ?? originalFn(args)) as unknown as tfTypes.KernelFunc,
    original,
  };
  tf.registerKernel(replacement);
}

/** The kernel the environment asks for: GPUMESH_WASM_MATMUL=xnnpack keeps tfjs's own; default gemm. */
export function wasmMatmulKernelFromEnv(env: NodeJS.ProcessEnv = process.env): WasmMatmulKernel {
  const value = env.GPUMESH_WASM_MATMUL?.trim().toLowerCase();
  if (value === undefined || value === '' || value === 'gemm') return 'gemm';
  if (value === 'xnnpack') return 'xnnpack';
  throw new Error(
    `GPUMESH_WASM_MATMUL must be gemm or xnnpack, got ${JSON.stringify(env.GPUMESH_WASM_MATMUL)}`,
  );
}
