// @gpumesh/compute: the TensorFlow.js job kernels and loader shared by the provider agent's executor, the
// coordinator's reference recompute and the offline evidence checker.
export * from './task.js';
export * from './tf-loader.js';
export * from './kernels.js';
export * from './reference.js';
export * from './reference-runner.js';
export * from './worker-entry.js';
export * from './simd-ceiling.js';
export * from './read-into.js';
export * from './wasm-gemm.js';
export * from './wasm-matmul.js';
export * from './seeded.js';
