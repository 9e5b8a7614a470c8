// Loads TensorFlow.js with one backend in the current thread (main thread or an executor worker).
// Deliberately free of value imports from @gpumesh/protocol so worker threads start fast.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

import type { Backend } from '@gpumesh/protocol';

import type { Tf } from './tf.js';
import { installNavigatorGpu, requestWebgpuAdapter, type WebgpuAdapterInfo } from './webgpu.js';
import { useWasmMatmulKernel, wasmMatmulKernelFromEnv, type WasmMatmulKernel } from './wasm-matmul.js';
import { useWebgpuMatmulKernel, webgpuMatmulKernelFor, type WebgpuMatmulKernel } from './webgpu-matmul.js';

export type { Tf } from './tf.js';

/** npm package that provides each backend. */
export const BACKEND_PACKAGES: Readonly<Record<Backend, string>> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
  webgpu: '@tensorflow/tfjs-backend-webgpu',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs',
};

/** tfjs's own name of each backend (tfjs-node and tfjs-node-gpu both register `tensorflow`). */
export const TFJS_BACKEND_NAMES: Readonly<Record<Backend, string>> = {
  'tensorflow-gpu': 'tensorflow',
  tensorflow: 'tensorflow',
  webgpu: 'webgpu',
  wasm: 'wasm',
  cpu: 'cpu',
};

const require = createRequire(import.meta.url);

/** Absolute path of `pkg`'s entry point, or null when it is not installed. */
export function resolvePackage(pkg: string): string | null {
  try {
    return require.resolve(pkg);
  } catch {
    return null;
  }
}

/** Directory (with trailing slash) holding tfjs-backend-wasm's `.wasm` binaries in node_modules. */
export function wasmBinaryDir(): string {
  const entry = resolvePackage('@tensorflow/tfjs-backend-wasm');
  if (entry === null) throw new Error('@tensorflow/tfjs-backend-wasm is not installed');
  return `${dirname(entry)}/`;
}

export interface LoadedTf {
  readonly tf: Tf;
  readonly backend: Backend;
  /** Version of the package providing the backend. */
  readonly version: string;
  /** wasm only: SIMD and multithreading as the backend detected them. */
  readonly simd?: boolean;
  readonly threads?: boolean;
  /** wasm only: the kernel of large float32 matmuls (GPUMESH_WASM_MATMUL, see wasm-matmul.ts). */
  readonly matmulKernel?: WasmMatmulKernel;
  /** webgpu only: the kernel of float32 matmuls (GPUMESH_WEBGPU_MATMUL, see webgpu-matmul.ts). */
  readonly webgpuMatmulKernel?: WebgpuMatmulKernel;
  /** webgpu only: the adapter Dawn opened. */
  readonly adapter?: WebgpuAdapterInfo;
}

async function importDynamic(pkg: string): Promise<unknown> {
  // A variable specifier keeps TypeScript from requiring the optional packages at compile time.
  const specifier: string = pkg;
  return (await import(specifier)) as unknown;
}

const loaded = new Map<Backend, LoadedTf>();

/**
 * Sets NVIDIA_TF32_OVERRIDE=0 (unless the operator set it) so cuBLAS/cuDNN compute float32 in full
 * float32. Call on the main thread before any thread loads libtensorflow.
 */
export function disableTf32(): void {
  process.env.NVIDIA_TF32_OVERRIDE ??= '0';
}

/**
 * Loads tfjs with `backend` active in this thread (once per thread; later calls reuse it). Throws when
 * the package is missing or the backend fails to initialise.
 */
export async function loadTf(
  backend: Backend,
  options: { readonly adapterName?: string } = {},
): Promise<LoadedTf> {
  const cached = loaded.get(backend);
  if (cached) {
    await cached.tf.setBackend(TFJS_BACKEND_NAMES[backend]);
    return cached;
  }
  let result: LoadedTf;
  if (backend === 'tensorflow' || backend === 'tensorflow-gpu') {
    // TensorFlow runs float32 matmuls and convolutions in TF32 (10-bit mantissa) on Ampere and newer
    // GPUs unless told not to; honest results would then miss the verification bounds (see
    // docs/verification.md). Only effective on the main thread (a worker's process.env is a copy).
    disableTf32();
    const pkg = BACKEND_PACKAGES[backend];
    if (resolvePackage(pkg) === null) throw new Error(`${pkg} is not installed`);
    const mod = (await importDynamic(pkg)) as Tf & { default?: Tf; version?: Record<string, string> };
    const tf = (typeof mod.setBackend === 'function' ? mod : mod.default) as Tf;
    if (!(await tf.setBackend('tensorflow')))
      throw new Error(`${pkg} loaded but the tensorflow backend failed`);
    await tf.ready();
    const v = tf.version as Record<string, string | undefined>;
    result = { tf, backend, version: v['tfjs-node'] ?? v['tfjs-core'] ?? 'unknown' };
  } else {
    const tf = await import('@tensorflow/tfjs');
    // Production mode: no debug checks and no "install tfjs-node" banner in every worker.
    tf.env().set('PROD', true);
    if (backend === 'webgpu') {
      const choice = await requestWebgpuAdapter(options);
      installNavigatorGpu(choice);
      const pkg = BACKEND_PACKAGES.webgpu;
      if (resolvePackage(pkg) === null) throw new Error(`${pkg} is not installed`);
      await importDynamic(pkg);
      const { version } = require(`${pkg}/package.json`) as { version: string };
      if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend failed to initialise');
      await tf.ready();
      // gpumesh's WGSL matmul where it was measured faster (a software adapter), else tfjs's.
      const webgpuMatmulKernel = webgpuMatmulKernelFor(choice.info.software);
      useWebgpuMatmulKernel(tf, webgpuMatmulKernel);
      result = { tf, backend, version, adapter: choice.info, webgpuMatmulKernel };
    } else if (backend === 'wasm') {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // In Node the wasm backend reads the binaries from this path with fs; no fetch, no network.
      wasm.setWasmPaths(wasmBinaryDir());
      if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
      await tf.ready();
      const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
      // The gemm kernel is SIMD code: without SIMD, tfjs's own kernel (its scalar build) stays.
      const matmulKernel = simd ? wasmMatmulKernelFromEnv() : 'xnnpack';
      useWasmMatmulKernel(tf, matmulKernel);
      result = {
        matmulKernel,
        tf,
        backend,
        version: wasm.version_wasm,
        simd,
        threads: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'),
      };
    } else {
      if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
      await tf.ready();
      result = { tf, backend, version: tf.version_core };
    }
  }
  loaded.set(backend, result);
  return result;
}
