// Messages between the executor pool (main thread) and its worker threads. Type-only imports from
// #protocol: workers must not pay for loading zod and the protocol library.
import type { Backend, DType } from '#protocol';

/** A decoded tensor as it crosses the thread boundary (its buffer is transferred, not copied). */
export interface RawTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly values: Float32Array | Int32Array | Uint8Array;
}

/** A model artifact in memory: the model.json content and the concatenated weight shards. */
export interface ModelArtifact {
  readonly format: 'layers' | 'graph';
  /** model.json as text or parsed; `weightsManifest` paths are ignored (nothing is fetched). */
  readonly modelJson: string | Record<string, unknown>;
  readonly weights: Uint8Array;
}

export interface TrainSettings {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly optimizer: 'sgd' | 'adam';
  readonly loss: 'meanSquaredError' | 'categoricalCrossentropy' | 'binaryCrossentropy';
}

export type WorkerTask =
  | {
      readonly kind: 'matmul';
      readonly inputs: readonly RawTensor[];
      readonly transposeA: boolean;
      readonly transposeB: boolean;
    }
  | {
      readonly kind: 'inference';
      readonly inputs: readonly RawTensor[];
      readonly model: ModelArtifact;
      readonly outputs?: readonly string[];
      readonly batchSize?: number;
    }
  | {
      readonly kind: 'train';
      readonly inputs: readonly RawTensor[];
      readonly model: ModelArtifact;
      readonly params: TrainSettings;
    };

export const EXECUTOR_ERROR_CODES = [
  'BAD_INPUT',
  'MODEL_LOAD_FAILED',
  'EXECUTION_FAILED',
  'TIMEOUT',
  'CANCELLED',
  'MEMORY_LIMIT',
  'WORKER_CRASHED',
  'WORKER_INIT_FAILED',
  'CLOSED',
] as const;
export type ExecutorErrorCode = (typeof EXECUTOR_ERROR_CODES)[number];

/** Per-epoch progress of a train task (inference and matmul report none). */
export interface EpochProgress {
  readonly epoch: number;
  readonly epochs: number;
  readonly loss?: number;
}

export interface WorkerMemory {
  readonly numTensors: number;
  readonly numBytes: number;
  readonly numDataBuffers: number;
  /** wasm backend: size of the WebAssembly heap (it grows and never shrinks). */
  readonly wasmHeapBytes?: number;
  readonly jsHeapUsedBytes: number;
}

export interface WorkerInit {
  readonly backend: Backend;
  readonly memoryLimitMb: number;
  /** Set when the worker runs from TypeScript through worker-bootstrap.mjs. */
  readonly entry?: string;
}

export type ToWorker =
  | { readonly type: 'run'; readonly id: number; readonly task: WorkerTask }
  | { readonly type: 'memory'; readonly id: number };

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
