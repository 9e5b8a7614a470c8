export * from './command.js';
export * from './gpu-detect.js';
export * from './cuda-libs.js';
export * from './backend.js';
export * from './benchmark.js';
export * from './matmul-check.js';
export * from './matmul-sweep.js';
export * from './gpu-list.js';
export * from './advert-gpus.js';
export { BACKEND_PACKAGES, loadTf, wasmBinaryDir, type LoadedTf, type Tf } from '@gpumesh/compute';
export {
  describeWebgpuAdapter,
  requestWebgpuAdapter,
  resolvePackage,
  type WebgpuAdapterInfo,
  type WebgpuAttempt,
} from '@gpumesh/compute';
export * from './executor/index.js';
export * from './gpu-verdict.js';
