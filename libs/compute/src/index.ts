// @gpumesh/compute: the TensorFlow.js job kernels and loader shared by the provider agent's executor, the
// coordinator's reference recompute and the offline evidence checker.
export {
  EXECUTOR_ERROR_CODES,
  type RawTensor,
  type ModelArtifact,
  type TrainSettings,
  type WorkerTask,
  type ExecutorErrorCode,
  type EpochProgress,
} from './task.js';
export {
  resolvePackage,
  wasmBinaryDir,
  disableTf32,
  loadTf,
  BACKEND_PACKAGES,
  type Tf,
  type LoadedTf,
} from './tf-loader.js';
export { runKernel, TaskError } from './kernels.js';
export { artifactHash, taskFromSpec, computeReference } from './reference.js';
export {
  ReferenceRunError,
  ReferenceRunner,
  type ReferenceFailureCode,
  type ReferenceRunnerOptions,
} from './reference-runner.js';
export { workerEntry } from './worker-entry.js';
export { ceilingProbe, measureWasmSimdCeiling } from './simd-ceiling.js';
export { readInto } from './read-into.js';
export { wasmGemmMemoryBytes, useWasmMatmulKernel, type WasmMatmulKernel } from './wasm-matmul.js';
export { seededValues } from './seeded.js';
export {
  describeWebgpuAdapter,
  ensureEglPlatform,
  isSoftwareAdapter,
  listWebgpuAdapters,
  nativeDawnBackend,
  parseDawnAdapterList,
  requestWebgpuAdapter,
  type DawnAdapterListing,
  type WebgpuAdapterInfo,
  type WebgpuAttempt,
  type WebgpuDawnBackend,
} from './webgpu.js';
export {
  GpumeshMatMulProgram,
  useWebgpuMatmulKernel,
  webgpuBatchMatMul,
  webgpuMatmulKernelFor,
  webgpuMatmulSource,
  type WebgpuMatmulKernel,
} from './webgpu-matmul.js';
export { measureWebgpuCeiling, webgpuCeilingSource, type WebgpuCeiling } from './webgpu-ceiling.js';
