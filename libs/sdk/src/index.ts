export * from './generated.js';
export { GpumeshApiError, GpumeshClient, type GpumeshClientOptions } from './client.js';
export { decodeTensor, tensor, type TensorInput } from './tensor.js';
