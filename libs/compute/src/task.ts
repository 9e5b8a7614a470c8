// The pure description of a compute task as the kernels take it: decoded tensors, model artifacts and
// training settings. Type-only imports from @gpumesh/protocol: executor workers must not pay for loading zod.
import type { DType } from '@gpumesh/protocol';

/** A decoded tensor as kernels take and return it (and as it crosses a thread boundary). */
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

/**
 * Why a task failed. BAD_INPUT, MODEL_LOAD_FAILED and UNSUPPORTED_OP are the job's own fault: every
 * backend fails it the same way (`INPUT_FAULT_ERROR_CODES` in libs/protocol, which the agent sends as
 * its `error` frame's code); the others are this provider's (transient, or a limit of its own).
 */
export const EXECUTOR_ERROR_CODES = [
  'BAD_INPUT',
  'MODEL_LOAD_FAILED',
  'UNSUPPORTED_OP',
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
