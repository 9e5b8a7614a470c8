// Reference results computed in this thread from a job spec, with the same kernels the provider
// agent's executor runs: the coordinator's tie-breaking recompute and the offline evidence checker
// use it. @gpumesh/protocol is imported lazily so executor workers that only need the kernels stay light.
import { createHash } from 'node:crypto';

import type { JobSpec, TensorWire } from '@gpumesh/protocol';

import { evaluateTrainLoss, runKernel, TaskError } from './kernels.js';
import type { ModelArtifact, RawTensor, WorkerTask } from './task.js';
import { loadTf } from './tf-loader.js';

/** Backends a reference may be computed on (both run on the CPU of any machine, no GPU needed). */
export type ReferenceBackend = 'wasm' | 'cpu';

export interface ComputeReferenceOptions {
  /** Model artifacts; the one whose content hash is `spec.model.hash` is used (inference and train). */
  readonly artifacts?: readonly ModelArtifact[];
  /** Default `cpu`: plain JavaScript with float64 accumulation inside blocks, the same on every machine. */
  readonly backend?: ReferenceBackend;
  /** Refuse (`TaskError` BAD_INPUT) a spec that costs more work units than this. */
  readonly maxWorkUnits?: bigint;
}

/**
 * Content hash of a model artifact, byte-identical to `hashArtifact` of @gpumesh/p2p (the name jobs use in
 * `spec.model.hash`): SHA-256 over the UTF-8 of `canonicalJson(modelJson)` followed by the weights.
 */
export async function artifactHash(artifact: ModelArtifact): Promise<string> {
  const { canonicalJson } = await import('@gpumesh/protocol');
  const json =
    typeof artifact.modelJson === 'string' ? (JSON.parse(artifact.modelJson) as unknown) : artifact.modelJson;
  return createHash('sha256')
    .update(new TextEncoder().encode(canonicalJson(json)))
    .update(artifact.weights)
    .digest('hex');
}

/**
 * The kernel task a spec describes (inputs already decoded). Throws `TaskError` BAD_INPUT when a model
 * job comes without its artifact or with one of the wrong format.
 */
export function taskFromSpec(spec: JobSpec, inputs: RawTensor[], model?: ModelArtifact): WorkerTask {
  if (spec.kind === 'matmul') {
    return {
      kind: 'matmul',
      inputs,
      transposeA: spec.params.transposeA ?? false,
      transposeB: spec.params.transposeB ?? false,
    };
  }
  if (!model) throw new TaskError('BAD_INPUT', `${spec.kind} job needs its model artifact`);
  if (model.format !== spec.model.format) {
    throw new TaskError(
      'BAD_INPUT',
      `the spec declares a ${spec.model.format} model, the artifact is ${model.format}`,
    );
  }
  return spec.kind === 'inference'
    ? { kind: 'inference', inputs, model, outputs: spec.outputs, batchSize: spec.params.batchSize }
    : { kind: 'train', inputs, model, params: spec.params };
}

/** The artifact among `artifacts` whose content hash is `hash`, or undefined. */
export async function findArtifact(
  artifacts: readonly ModelArtifact[],
  hash: string,
): Promise<ModelArtifact | undefined> {
  for (const a of artifacts) if ((await artifactHash(a)) === hash) return a;
  return undefined;
}

/**
 * Computes a job's outputs from its spec on `backend` in this thread, in the executor's names and
 * order. Throws `TaskError` (BAD_INPUT, MODEL_LOAD_FAILED, EXECUTION_FAILED) when it cannot.
 */
export async function computeReference(
  spec: JobSpec,
  options: ComputeReferenceOptions = {},
): Promise<TensorWire[]> {
  const protocol = await import('@gpumesh/protocol');
  let model: ModelArtifact | undefined;
  if (spec.kind !== 'matmul') {
    model = await findArtifact(options.artifacts ?? [], spec.model.hash);
    if (!model) throw new TaskError('BAD_INPUT', `no artifact with hash ${spec.model.hash} was given`);
  }
  if (options.maxWorkUnits !== undefined) {
    let units: bigint;
    try {
      units = protocol.workUnitsForSpec(spec, model?.modelJson);
    } catch (err) {
      throw new TaskError('BAD_INPUT', `cannot price the job: ${(err as Error).message}`);
    }
    if (units > options.maxWorkUnits) {
      throw new TaskError(
        'BAD_INPUT',
        `the job costs ${units} work units, over the reference budget of ${options.maxWorkUnits}`,
      );
    }
  }
  const inputs: RawTensor[] = [];
  for (const wire of spec.inputs) {
    if ('ref' in wire) {
      throw new TaskError('BAD_INPUT', `input ${wire.name} is by ref: the reference does not fetch those`);
    }
    try {
      inputs.push(protocol.decodeTensor(wire));
    } catch (err) {
      throw new TaskError('BAD_INPUT', (err as Error).message);
    }
  }
  const task = taskFromSpec(spec, inputs, model);
  const { tf } = await loadTf(options.backend ?? 'cpu');
  const result = await runKernel(tf, task);
  return result.outputs.map((o) => protocol.encodeTensor(o.name, o.dtype, o.shape, o.values as Float32Array));
}

/**
 * The training loss a train job's model reaches with each set of weights in `candidates` (train
 * outputs, `weights/<name>` tensors; `null`: the artifact's untrained weights), over the job's own
 * `x`, `y` and loss function, on `backend` in this thread. Undecodable or incomplete sets score
 * +Infinity. Throws `TaskError` (BAD_INPUT, MODEL_LOAD_FAILED, EXECUTION_FAILED) when it cannot run.
 */
export async function computeTrainLosses(
  spec: JobSpec,
  candidates: readonly (readonly TensorWire[] | null)[],
  options: Omit<ComputeReferenceOptions, 'maxWorkUnits'> = {},
): Promise<number[]> {
  if (spec.kind !== 'train') throw new TaskError('BAD_INPUT', `a ${spec.kind} job has no training loss`);
  const protocol = await import('@gpumesh/protocol');
  const model = await findArtifact(options.artifacts ?? [], spec.model.hash);
  if (!model) throw new TaskError('BAD_INPUT', `no artifact with hash ${spec.model.hash} was given`);
  const decode = (wire: TensorWire): RawTensor | null => {
    try {
      return protocol.decodeTensor(wire);
    } catch {
      return null;
    }
  };
  let inputs: RawTensor[];
  const byRef = spec.inputs.find((wire) => 'ref' in wire);
  if (byRef)
    throw new TaskError('BAD_INPUT', `input ${byRef.name} is by ref: the reference does not fetch those`);
  try {
    inputs = spec.inputs.map((wire) => protocol.decodeTensor(wire));
  } catch (err) {
    throw new TaskError('BAD_INPUT', (err as Error).message);
  }
  const sets = candidates.map((set) => {
    if (set === null) return null;
    const decoded = set.map(decode);
    // A tensor that does not decode leaves its weight missing: that set scores +Infinity.
    return decoded.filter((t): t is RawTensor => t !== null);
  });
  const task = taskFromSpec(spec, inputs, model);
  if (task.kind !== 'train') throw new TaskError('BAD_INPUT', 'not a train task');
  const { tf } = await loadTf(options.backend ?? 'cpu');
  return evaluateTrainLoss(tf, task, sets);
}
