// The TensorFlow.js module's type, apart from the loader so that the kernels it installs (wasm-matmul)
// can name it without importing the loader back.
export type Tf = typeof import('@tensorflow/tfjs');
