// Messages between the executor pool (main thread) and its worker threads. Type-only imports from
// @gpumesh/protocol and @gpumesh/compute's task types: workers must not pay for loading zod and the protocol library.
import type { Backend } from '@gpumesh/protocol';
import type { EpochProgress, ExecutorErrorCode, RawTensor, WorkerTask } from '@gpumesh/compute';

export type {
  EpochProgress,
  ExecutorErrorCode,
  ModelArtifact,
  RawTensor,
  TrainSettings,
  WorkerTask,
} from '@gpumesh/compute';

export interface WorkerMemory {
  readonly numTensors: number;
  readonly numBytes: number;
  readonly numDataBuffers: number;
  /** wasm backend: size of the WebAssembly heap (it grows and never shrinks). */
  readonly wasmHeapBytes?: number;
  /** webgpu backend: bytes held in GPU buffers (tfjs's buffer pool). */
  readonly gpuBufferBytes?: number;
  readonly jsHeapUsedBytes: number;
}

export interface WorkerInit {
  readonly backend: Backend;
  readonly memoryLimitMb: number;
  /** Set when the worker runs from TypeScript through @gpumesh/compute's ts-worker-bootstrap.mjs. */
  readonly entry?: string;
  /** webgpu: open the adapter whose device name contains this (one executor per adapter). */
  readonly adapterName?: string;
}

export type ToWorker =
  | { readonly type: 'run'; readonly id: number; readonly task: WorkerTask }
  | { readonly type: 'memory'; readonly id: number }
  /** Exit at the next turn of the event loop (webgpu: terminating inside a Dawn call aborts the process). */
  | { readonly type: 'exit' };

export type FromWorker =
  | {
      readonly type: 'ready';
      readonly backend: Backend;
      readonly version: string;
      readonly simd?: boolean;
      readonly threads?: boolean;
    }
  | { readonly type: 'init-error'; readonly message: string }
  | { readonly type: 'progress'; readonly id: number; readonly progress: EpochProgress }
  | {
      readonly type: 'result';
      readonly id: number;
      readonly outputs: readonly RawTensor[];
      readonly lossHistory?: readonly number[];
      readonly runMs: number;
    }
  | {
      readonly type: 'error';
      readonly id: number;
      readonly code: ExecutorErrorCode;
      readonly message: string;
      /** The worker's state is suspect (e.g. memory limit breached): replace it. */
      readonly fatal: boolean;
    }
  | { readonly type: 'memory'; readonly id: number; readonly memory: WorkerMemory };
