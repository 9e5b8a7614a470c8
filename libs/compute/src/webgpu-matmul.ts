// gpumesh's own WGSL matmul for the webgpu backend, registered in front of tfjs-backend-webgpu's
// BatchMatMul (tf.matMul and what builds on it; the original runs whatever this one declines). Each
// invocation keeps an 8 × 8 block of C in registers (8 rows × 2 vec4 columns, fully unrolled) and reads
// A and B straight from storage, four k steps per loop turn; a workgroup of 8 × 8 invocations covers a
// 64 × 64 tile. Measured on Mesa's llvmpipe (docs/benchmarks.md): tfjs's kernels reach ~5 % of the
// adapter's FMA ceiling there; this one ~2.4× tfjs's. The same register blocking with workgroup
// shared-memory tiles ran no faster than tfjs on llvmpipe (each barrier switches every invocation's
// coroutine), so on llvmpipe the tile stays in registers and the CPU's caches. Real GPUs were not
// measured: there tfjs's kernel stays unless GPUMESH_WEBGPU_MATMUL=gpumesh asks for this one.
import type * as tfTypes from '@tensorflow/tfjs';

import type { Tf } from './tf.js';

/** Which kernel runs the webgpu backend's float32 matmuls. */
export type WebgpuMatmulKernel = 'gpumesh' | 'tfjs';

/** Rows of C per invocation. */
export const WEBGPU_MM_ROWS = 8;
/** vec4 columns of C per invocation (8 floats). */
export const WEBGPU_MM_VEC4_COLS = 2;
/** k steps unrolled per loop turn. */
export const WEBGPU_MM_K_UNROLL = 4;
/** Invocations per workgroup: x (columns) × y (rows). */
export const WEBGPU_MM_WORKGROUP: readonly [number, number, number] = [8, 8, 1];
/** Below this many multiply-adds tfjs's kernel keeps the product (launch cost dominates). */
export const WEBGPU_MM_MIN_MACS = 32 * 32 * 32;

/** The WGSL body (tfjs's program prelude declares A, B, result, uniforms and the invocation ids). */
export function webgpuMatmulSource(
  rows = WEBGPU_MM_ROWS,
  cols4 = WEBGPU_MM_VEC4_COLS,
  unroll = WEBGPU_MM_K_UNROLL,
): string {
  const decl: string[] = [];
  for (let i = 0; i < rows; i++)
    for (let v = 0; v < cols4; v++) decl.push(`var c${i}_${v} = vec4<f32>(0.0);`);
  const step = (offset: string): string => {
    let s = '{\n';
    for (let v = 0; v < cols4; v++) s += `let b${v} = B[bBase + (k + ${offset}) * n4 + col${v}];\n`;
    for (let i = 0; i < rows; i++) {
      s += `{ let a = vec4<f32>(A[aBase + row${i} * K + k + ${offset}]);\n`;
      for (let v = 0; v < cols4; v++) s += `c${i}_${v} = fma(a, b${v}, c${i}_${v});\n`;
      s += '}\n';
    }
    return `${s}}\n`;
  };
  let unrolled = '';
  for (let u = 0; u < unroll; u++) unrolled += step(String(u));
  const rowDecl: string[] = [];
  for (let i = 0; i < rows; i++) rowDecl.push(`let row${i} = min(row + ${i}, M - 1);`);
  const colDecl: string[] = [];
  for (let v = 0; v < cols4; v++) colDecl.push(`let col${v} = min(col4 + ${v}, n4 - 1);`);
  let store = '';
  for (let i = 0; i < rows; i++) {
    store += `if (row + ${i} < M) {\n`;
    for (let v = 0; v < cols4; v++) {
      store += `if (col4 + ${v} < n4) { result[cBase + (row + ${i}) * n4 + col4 + ${v}] = c${i}_${v}; }\n`;
    }
    store += '}\n';
  }
  return `
fn main() {
  let M = uniforms.dimAOuter;
  let n4 = uniforms.dimBOuter / 4;
  let K = uniforms.dimInner;
  let batch = i32(globalId.z);
  let aBase = batch * uniforms.batchStrideA;
  let bBase = batch * uniforms.batchStrideB4;
  let cBase = batch * M * n4;
  let row = i32(globalId.y) * ${rows};
  let col4 = i32(globalId.x) * ${cols4};
  ${rowDecl.join('\n  ')}
  ${colDecl.join('\n  ')}
  ${decl.join('\n  ')}
  let kMain = K - K % ${unroll};
  var k = 0;
  for (; k < kMain; k += ${unroll}) {
${unrolled}  }
  for (; k < K; k++) {
${step('0')}  }
${store}}
`;
}

/** A program in tfjs-backend-webgpu's shape (its WebGPUProgram interface, which it does not export). */
export class GpumeshMatMulProgram {
  readonly variableNames = ['A', 'B'];
  readonly variableComponents = [1, 4];
  readonly outputComponent = 4;
  readonly uniforms =
    'dimAOuter : i32, dimBOuter : i32, dimInner : i32, batchStrideA : i32, batchStrideB4 : i32,';
  readonly workgroupSize: [number, number, number] = [...WEBGPU_MM_WORKGROUP];
  readonly dispatchLayout = { x: [2], y: [1], z: [0] };
  readonly dispatch: [number, number, number];
  readonly outputShape: number[];
  readonly shaderKey = `gpumeshMatMul_${WEBGPU_MM_ROWS}_${WEBGPU_MM_VEC4_COLS}_${WEBGPU_MM_K_UNROLL}`;

  constructor(batch: number, m: number, n: number) {
    this.outputShape = [batch, m, n];
    this.dispatch = [
      Math.ceil(n / 4 / (WEBGPU_MM_VEC4_COLS * this.workgroupSize[0])),
      Math.ceil(m / (WEBGPU_MM_ROWS * this.workgroupSize[1])),
      batch,
    ];
  }

  getUserCode(): string {
    return webgpuMatmulSource();
  }
}

interface WebgpuBackendLike {
  runWebGPUProgram(
    program: GpumeshMatMulProgram,
    inputs: tfTypes.TensorInfo[],
    dtype: 'float32',
    uniforms: { type: 'int32'; data: number[] }[],
  ): tfTypes.TensorInfo;
}

interface MatMulArgs {
  readonly inputs: { readonly a: tfTypes.TensorInfo; readonly b: tfTypes.TensorInfo };
  readonly backend: unknown;
  readonly attrs: { readonly transposeA: boolean; readonly transposeB: boolean };
}

const size = (dims: readonly number[]): number => dims.reduce((p, d) => p * d, 1);

/**
 * The product through GpumeshMatMulProgram, or null to leave it to tfjs: not float32, a transposed
 * operand, a column count that is not a multiple of 4 (B and C are read as vec4), batch dimensions
 * that broadcast other than "one side has one", or too small to gain. The result is [...batch, m, n]
 * like tfjs's (a reshape is metadata only on this backend).
 */
export function webgpuBatchMatMul(tf: Tf, args: MatMulArgs): tfTypes.TensorInfo | null {
  const { a, b } = args.inputs;
  if (args.attrs.transposeA || args.attrs.transposeB) return null;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  if (a.shape.length < 2 || b.shape.length < 2) return null;
  const m = a.shape[a.shape.length - 2];
  const k = a.shape[a.shape.length - 1];
  const n = b.shape[b.shape.length - 1];
  if (b.shape[b.shape.length - 2] !== k || n % 4 !== 0 || m * n * k < WEBGPU_MM_MIN_MACS) return null;
  const batchA = size(a.shape.slice(0, -2));
  const batchB = size(b.shape.slice(0, -2));
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return null;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  if (batchA === batchB && batchA > 1 && outerA.join() !== outerB.join()) return null;
  const batch = Math.max(batchA, batchB);
  const backend = args.backend as WebgpuBackendLike;
  const program = new GpumeshMatMulProgram(batch, m, n);
  const out = backend.runWebGPUProgram(program, [a, b], 'float32', [
    { type: 'int32', data: [m] },
    { type: 'int32', data: [n] },
    { type: 'int32', data: [k] },
    { type: 'int32', data: [batchA === 1 ? 0 : m * k] },
    { type: 'int32', data: [batchB === 1 ? 0 : (k * n) / 4] },
  ]);
  const outer = batchA >= batchB ? outerA : outerB;
  const shape = [...outer, m, n];
  // The program's output is [batch, m, n]; give it the inputs' batch dimensions with the backend's own
  // Reshape kernel (metadata only: it shares the buffer) and release the 3-D view, as tfjs does.
  const reshape = tf.getKernel('Reshape', 'webgpu')?.kernelFunc as unknown as
    | ((a: {
        inputs: { x: tfTypes.TensorInfo };
        backend: unknown;
        attrs: { shape: number[] };
      }) => tfTypes.TensorInfo)
    | undefined;
  if (reshape === undefined) throw new Error('the webgpu backend has no Reshape kernel');
  const reshaped = reshape({ inputs: { x: out }, backend, attrs: { shape } });
  (backend as unknown as { disposeData(id: object): void }).disposeData(out.dataId);
  return reshaped;
}

/** Kernels replaced in this thread, by tfjs instance. */
const installed = new WeakMap<object, WebgpuMatmulKernel>();

/**
 * Makes `kernel` run the webgpu backend's BatchMatMul in this thread: 'gpumesh' registers
 * webgpuBatchMatMul in front of the original kernel, 'tfjs' restores the original.
 */
export function useWebgpuMatmulKernel(tf: Tf, kernel: WebgpuMatmulKernel): void {
  const current = installed.get(tf) ?? 'tfjs';
  if (current === kernel) return;
  const config = tf.getKernel('BatchMatMul', 'webgpu') as
    (tfTypes.KernelConfig & { original?: tfTypes.KernelConfig }) | undefined;
  if (!config) throw new Error('the webgpu backend has no BatchMatMul kernel to replace');
  const original = config.original ?? config;
  tf.unregisterKernel('BatchMatMul', 'webgpu');
  if (kernel === 'tfjs') {
    tf.registerKernel(original);
  } else {
    const originalFn = original.kernelFunc as unknown as (args: unknown) => tfTypes.TensorInfo;
    const replacement: tfTypes.KernelConfig & { original: tfTypes.KernelConfig } = {
      ...original,
      kernelFunc: ((args: unknown) =>
        webgpuBatchMatMul(tf, args as MatMulArgs) ?? originalFn(args)) as unknown as tfTypes.KernelFunc,
      original,
    };
    tf.registerKernel(replacement);
  }
  installed.set(tf, kernel);
}

/**
 * The kernel for this adapter: GPUMESH_WEBGPU_MATMUL=gpumesh or tfjs when set; otherwise gpumesh's on
 * a software adapter (where it was measured faster) and tfjs's on a GPU (not measured here).
 */
export function webgpuMatmulKernelFor(
  software: boolean,
  env: NodeJS.ProcessEnv = process.env,
): WebgpuMatmulKernel {
  const value = env.GPUMESH_WEBGPU_MATMUL?.trim().toLowerCase();
  if (value === 'gpumesh' || value === 'tfjs') return value;
  if (value !== undefined && value !== '') {
    throw new Error(
      `GPUMESH_WEBGPU_MATMUL must be gpumesh or tfjs, got ${JSON.stringify(env.GPUMESH_WEBGPU_MATMUL)}`,
    );
  }
  return software ? 'gpumesh' : 'tfjs';
}
