export * from './pool.js';
export type {
  EpochProgress,
  ExecutorErrorCode,
  ModelArtifact,
  RawTensor,
  TrainSettings,
  WorkerMemory,
} from './messages.js';
export { EXECUTOR_ERROR_CODES } from '@gpumesh/compute';
export { adapterForSlot, confirmWebgpuAdapters, planWebgpuAdapters } from './adapters.js';
