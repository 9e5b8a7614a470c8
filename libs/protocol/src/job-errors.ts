// Whose fault a failed job is, as both sides of the job protocol read it, and what the spec alone
// says about where it can run.
import { BACKENDS, type Backend } from './backend.js';
import type { JobSpec } from './job-spec.js';

/**
 * The `error` frame codes by which an agent says a job it accepted cannot run at all: the failure
 * is deterministic, the input's fault (a dtype the op does not take, inputs whose shapes do not fit
 * the model, a layer or op TensorFlow.js does not know, a model that does not load), and every
 * honest provider fails it the same way. Any other code (TIMEOUT, MEMORY_LIMIT, WORKER_CRASHED,
 * EXECUTION_FAILED, CANCELLED, a failed artifact fetch, ...) is the provider's: transient, or a
 * limit of that provider, and another provider may succeed.
 */
export const INPUT_FAULT_ERROR_CODES = ['BAD_INPUT', 'MODEL_LOAD_FAILED', 'UNSUPPORTED_OP'] as const;
export type InputFaultErrorCode = (typeof INPUT_FAULT_ERROR_CODES)[number];

/** `input`: the job's own fault (deterministic); `provider`: the provider's (transient). */
export type JobErrorFault = 'input' | 'provider';

/** Whose fault an agent's `error` frame code says a failure is (unknown codes: the provider's). */
export function jobErrorFault(code: string): JobErrorFault {
  return (INPUT_FAULT_ERROR_CODES as readonly string[]).includes(code) ? 'input' : 'provider';
}

/**
 * Backends whose kernels run an int32 matmul: TensorFlow's (CPU, and the GPU build's host kernels)
 * and tfjs's cpu backend. tfjs-backend-wasm's BatchMatMul takes float32 only.
 */
const INT32_MATMUL_BACKENDS: readonly Backend[] = ['tensorflow-gpu', 'tensorflow', 'cpu'];

/**
 * The backends that can run `spec` at all, whatever the job asks for: every backend, except an
 * int32 matmul (INT32_MATMUL_BACKENDS). A job whose `requirements.backends` allows none of them can
 * never run; placement offers a job only to providers on one of them.
 */
export function backendsAbleToRun(spec: JobSpec): readonly Backend[] {
  if (spec.kind === 'matmul' && spec.inputs.some((t) => t.dtype === 'int32')) return INT32_MATMUL_BACKENDS;
  return BACKENDS;
}

/** The backends a job may be placed on: those that can run it and that it allows (empty: none). */
export function placeableBackends(spec: JobSpec): readonly Backend[] {
  const able = backendsAbleToRun(spec);
  const asked = spec.requirements.backends;
  if (asked === undefined || asked.length === 0) return able;
  return able.filter((b) => asked.includes(b));
}
