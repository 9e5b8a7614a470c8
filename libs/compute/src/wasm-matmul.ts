// Routes the wasm backend's float32 BatchMatMul (tf.matMul and what builds on it) through WasmGemm
// (wasm-gemm.ts) when the product is large enough to gain from it; everything else keeps
// tfjs-backend-wasm's own kernel (XNNPACK). Jobs still run through TensorFlow.js: this replaces one
// kernel in its registry, in the thread that loads the wasm backend.
import type * as tfTypes from '@tensorflow/tfjs';

import type { Tf } from './tf-loader.js';
import { GEMM_MAX_BYTES, WasmGemm, gemmBytes } from './wasm-gemm.js';

/** Which kernel runs the wasm backend's large float32 matmuls. */
export type WasmMatmulKernel = 'gemm' | 'xnnpack';

/** Below this many multiply-adds (M·N·K) XNNPACK's kernel keeps the product: packing would not pay. */
export const GEMM_MIN_MACS = 64 * 64 * 64;

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

type KernelFn = (args: MatMulArgs) => tfTypes.TensorInfo;

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
  if (m * n * k < GEMM_MIN_MACS || gemmBytes(m, n, k) > GEMM_MAX_BYTES) return null;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  let outer: number[];
  if (sameDims(outerA, outerB) || outerB.length === 0) outer = outerA;
  else if (outerA.length === 0) outer = outerB;
  else return null;
  const batch = size(outer);
  const backend = args.backend as WasmBackendLike;
  // Allocate first: a heap that grows detaches earlier views.
  const out = backend.makeOutput([...outer, m, n], 'float32');
  const outData = backend.typedArrayFromHeap(out);
  const aData = backend.typedArrayFromHeap(a);
  const bData = backend.typedArrayFromHeap(b);
  const aStride = outerA.length === 0 ? 0 : m * k;
  const bStride = outerB.length === 0 ? 0 : k * n;
  for (let i = 0; i < batch; i++) {
    gemm.multiply(
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
  const config = tf.getKernel('BatchMatMul', 'wasm');
  if (!config) throw new Error('the wasm backend has no BatchMatMul kernel to replace');
  const wrapped = config as tfTypes.KernelConfig & { original?: tfTypes.KernelConfig };
  tf.unregisterKernel('BatchMatMul', 'wasm');
  if (kernel === 'xnnpack') {
    tf.registerKernel(wrapped.original ?? config);
  } else {
    const original = config;
    const originalFn = original.kernelFunc as unknown as KernelFn;
    threadGemm ??= new WasmGemm();
    const gemm = threadGemm;
    const replacement: tfTypes.KernelConfig & { original: tfTypes.KernelConfig } = {
      ...original,
      kernelFunc: ((args: MatMulArgs) =>
        gemmBatchMatMul(gemm, args) ?? originalFn(args)) as unknown as tfTypes.KernelFunc,
      original,
    };
    tf.registerKernel(replacement);
  }
  installed.set(tf, kernel);
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
