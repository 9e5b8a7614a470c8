// The job kinds, run on the tfjs backend of the current thread. Every tensor created here is disposed
// before returning (inputs, intermediates, models, optimizers); results leave as typed arrays.
import type * as tfTypes from '@tensorflow/tfjs';

import type { EpochProgress, ExecutorErrorCode, ModelArtifact, RawTensor, WorkerTask } from './task.js';
import { readInto, type TensorArray } from './read-into.js';
import type { Tf } from './tf.js';

export class TaskError extends Error {
  constructor(
    readonly code: ExecutorErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TaskError';
  }
}

export interface KernelResult {
  readonly outputs: RawTensor[];
  readonly lossHistory?: number[];
}

export interface KernelHooks {
  readonly onProgress?: (progress: EpochProgress) => void;
  /**
   * Memory for an output of `bytes` bytes (8-byte aligned), or undefined for a fresh array. An
   * executor worker hands out its reused shared output memory, so large results cost no page faults.
   */
  readonly allocateOutput?: (bytes: number) => Uint8Array | undefined;
}

const WIRE_NAME = /[^A-Za-z0-9_.:/-]/g;

/** A tensor name made acceptable on the wire (letters, digits and _ . : / -, at most 128). */
export function wireName(name: string): string {
  const cleaned = name.replace(WIRE_NAME, '_').slice(0, 128);
  return cleaned === '' ? 'output' : cleaned;
}

function toTensor(tf: Tf, t: RawTensor): tfTypes.Tensor {
  return tf.tensor(t.values, [...t.shape], t.dtype);
}

/**
 * Whether tensor reads on the active backend return a fresh array of their own (wasm slices its heap);
 * others (cpu) may hand out the backend's own storage, which must be copied before it leaves the thread.
 */
function readsFreshArrays(tf: Tf): boolean {
  return tf.getBackend() === 'wasm';
}

const ARRAYS = { float32: Float32Array, int32: Int32Array, bool: Uint8Array } as const;

async function toRaw(
  tf: Tf,
  name: string,
  t: tfTypes.Tensor,
  allocate?: KernelHooks['allocateOutput'],
): Promise<RawTensor> {
  if (t.dtype !== 'float32' && t.dtype !== 'int32' && t.dtype !== 'bool') {
    throw new TaskError(
      'EXECUTION_FAILED',
      `output "${name}" has dtype ${t.dtype}, which the wire cannot carry`,
    );
  }
  const ArrayType = ARRAYS[t.dtype];
  const raw = (values: TensorArray): RawTensor => ({
    name: wireName(name),
    dtype: t.dtype as RawTensor['dtype'],
    shape: [...t.shape],
    values,
  });
  const target = allocate?.(t.size * ArrayType.BYTES_PER_ELEMENT);
  if (target) {
    const values = new ArrayType(target.buffer as ArrayBuffer, target.byteOffset, t.size);
    await readInto(tf, t, values);
    return raw(values);
  }
  const data = (await t.data()) as TensorArray;
  // A 1024² output copied again costs ≈ 10 ms in page faults on a VM: keep a fresh array as it is.
  const fresh =
    readsFreshArrays(tf) &&
    data instanceof ArrayType &&
    data.byteOffset === 0 &&
    data.buffer.byteLength === data.byteLength;
  return raw(fresh ? data : ArrayType.from(data as never));
}

function input(task: WorkerTask, name: string): RawTensor {
  const t = task.inputs.find((i) => i.name === name);
  if (!t) throw new TaskError('BAD_INPUT', `missing input "${name}"`);
  return t;
}

function runMatmul(
  tf: Tf,
  task: Extract<WorkerTask, { kind: 'matmul' }>,
  hooks: KernelHooks,
): Promise<KernelResult> {
  const a = input(task, 'a');
  const b = input(task, 'b');
  if (a.shape.length !== 2 || b.shape.length !== 2) {
    throw new TaskError('BAD_INPUT', `matmul inputs must be 2-D, got a[${a.shape}] and b[${b.shape}]`);
  }
  if (a.dtype === 'bool' || b.dtype === 'bool' || a.dtype !== b.dtype) {
    throw new TaskError(
      'BAD_INPUT',
      `matmul needs two float32 or two int32 inputs, got ${a.dtype} and ${b.dtype}`,
    );
  }
  const kA = task.transposeA ? a.shape[0] : a.shape[1];
  const kB = task.transposeB ? b.shape[1] : b.shape[0];
  if (kA !== kB) {
    throw new TaskError(
      'BAD_INPUT',
      `matmul shape mismatch: a[${a.shape}]${task.transposeA ? 'ᵀ' : ''} · b[${b.shape}]${task.transposeB ? 'ᵀ' : ''} has inner dimensions ${kA} and ${kB}`,
    );
  }
  if (a.dtype === 'int32') {
    return Promise.resolve({ outputs: [int32Matmul(a, b, task, hooks.allocateOutput)] });
  }
  const c = tf.tidy(() =>
    tf.matMul(
      toTensor(tf, a) as tfTypes.Tensor2D,
      toTensor(tf, b) as tfTypes.Tensor2D,
      task.transposeA,
      task.transposeB,
    ),
  );
  return toRaw(tf, 'c', c, hooks.allocateOutput)
    .then((raw) => ({ outputs: [raw] }))
    .finally(() => c.dispose());
}

/** `m` (rows × cols, row-major) transposed into a fresh array. */
function transposed(m: Int32Array, rows: number, cols: number): Int32Array {
  const t = new Int32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j];
  return t;
}

/**
 * An int32 matmul, the same on every backend: exact products and sums modulo 2³² (two's-complement
 * wrap-around, as TensorFlow's int32 MatMul kernels compute), in JavaScript. No tfjs kernel fits:
 * tfjs-backend-wasm refuses int32 ("BatchMatMul for non non-float32 tensors not yet supported"),
 * tfjs-backend-webgpu computes it in float32 (16777217 + 1 gives 16777216, an overflow saturates at
 * 2147483520), and tfjs's cpu backend sums in float64 (inexact once products pass 2⁵³). Outputs are
 * compared exactly (int32), so every backend and the coordinator's reference must agree to the bit.
 */
export function int32Matmul(
  a: RawTensor,
  b: RawTensor,
  task: { readonly transposeA?: boolean; readonly transposeB?: boolean },
  allocate?: KernelHooks['allocateOutput'],
): RawTensor {
  const av = a.values as Int32Array;
  const bv = b.values as Int32Array;
  const m = task.transposeA ? a.shape[1] : a.shape[0];
  const k = task.transposeA ? a.shape[0] : a.shape[1];
  const n = task.transposeB ? b.shape[0] : b.shape[1];
  const left = task.transposeA ? transposed(av, a.shape[0], a.shape[1]) : av; // m × k
  const right = task.transposeB ? transposed(bv, b.shape[0], b.shape[1]) : bv; // k × n
  const target = allocate?.(m * n * 4);
  const c = target
    ? new Int32Array(target.buffer as ArrayBuffer, target.byteOffset, m * n)
    : new Int32Array(m * n);
  c.fill(0);
  for (let i = 0; i < m; i++) {
    const out = i * n;
    for (let p = 0; p < k; p++) {
      const x = left[i * k + p];
      if (x === 0) continue;
      const row = p * n;
      for (let j = 0; j < n; j++) c[out + j] = (c[out + j] + Math.imul(x, right[row + j])) | 0;
    }
  }
  return { name: 'c', dtype: 'int32', shape: [m, n], values: c };
}

interface ModelJson {
  readonly format?: string;
  readonly modelTopology: object;
  readonly weightsManifest: readonly { readonly weights: readonly tfTypes.io.WeightsManifestEntry[] }[];
  readonly [key: string]: unknown;
}

const DTYPE_BYTES: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

function parseModelJson(model: ModelArtifact): ModelJson {
  let json: unknown;
  try {
    json = typeof model.modelJson === 'string' ? JSON.parse(model.modelJson) : model.modelJson;
  } catch (err) {
    throw new TaskError('MODEL_LOAD_FAILED', `model.json is not JSON: ${(err as Error).message}`);
  }
  const j = json as Partial<ModelJson> | null;
  if (
    j === null ||
    typeof j !== 'object' ||
    typeof j.modelTopology !== 'object' ||
    j.modelTopology === null
  ) {
    throw new TaskError('MODEL_LOAD_FAILED', 'model.json has no modelTopology object');
  }
  if (!Array.isArray(j.weightsManifest) || !j.weightsManifest.every((g) => Array.isArray(g?.weights))) {
    throw new TaskError('MODEL_LOAD_FAILED', 'model.json has no valid weightsManifest');
  }
  const expected = model.format === 'layers' ? 'layers-model' : 'graph-model';
  if (j.format !== undefined && j.format !== expected) {
    throw new TaskError(
      'MODEL_LOAD_FAILED',
      `model.json says format "${j.format}", but the job declares "${model.format}"`,
    );
  }
  return j as ModelJson;
}

function weightBytes(spec: tfTypes.io.WeightsManifestEntry): number | null {
  const count = spec.shape.reduce((n, d) => n * d, 1);
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const size = DTYPE_BYTES[dtype];
  return size === undefined ? null : count * size;
}

function memoryHandler(tf: Tf, model: ModelArtifact): tfTypes.io.IOHandler {
  const json = parseModelJson(model);
  const weightSpecs = json.weightsManifest.flatMap((g) => [...g.weights]);
  const sizes = weightSpecs.map(weightBytes);
  if (sizes.every((s) => s !== null)) {
    const total = sizes.reduce((a: number, b) => a + (b ?? 0), 0);
    if (total !== model.weights.byteLength) {
      throw new TaskError(
        'MODEL_LOAD_FAILED',
        `weights are ${model.weights.byteLength} bytes but the manifest describes ${total}`,
      );
    }
  }
  const weightData = model.weights.slice().buffer;
  // Models are data: fromMemory never fetches, and no custom layer/op is ever registered here.
  return tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs,
    weightData,
    format: json.format as string | undefined,
    ...(json.signature === undefined ? {} : { signature: json.signature as object }),
    ...(json.modelInitializer === undefined ? {} : { modelInitializer: json.modelInitializer as object }),
  });
}

async function loadLayers(tf: Tf, model: ModelArtifact): Promise<tfTypes.LayersModel> {
  if (model.format !== 'layers') throw new TaskError('MODEL_LOAD_FAILED', 'expected a layers model');
  const handler = memoryHandler(tf, model);
  try {
    return await tf.loadLayersModel(handler, { strict: true });
  } catch (err) {
    throw new TaskError('MODEL_LOAD_FAILED', `cannot load layers model: ${(err as Error).message}`);
  }
}

async function loadGraph(tf: Tf, model: ModelArtifact): Promise<tfTypes.GraphModel> {
  const handler = memoryHandler(tf, model);
  try {
    return await tf.loadGraphModel(handler);
  } catch (err) {
    throw new TaskError('MODEL_LOAD_FAILED', `cannot load graph model: ${(err as Error).message}`);
  }
}

/** Pairs the job's inputs with the model's input names (a single input may have any name). */
function bindInputs(modelInputs: readonly string[], task: WorkerTask): RawTensor[] {
  if (modelInputs.length === 1 && task.inputs.length === 1) return [task.inputs[0]];
  const names = new Set(task.inputs.map((i) => i.name));
  const missing = modelInputs.filter((n) => !names.has(n));
  if (missing.length > 0 || task.inputs.length !== modelInputs.length) {
    throw new TaskError(
      'BAD_INPUT',
      `model expects inputs [${modelInputs.join(', ')}], job gives [${task.inputs.map((i) => i.name).join(', ')}]`,
    );
  }
  return modelInputs.map((n) => task.inputs.find((i) => i.name === n) as RawTensor);
}

/**
 * A model op's failure as a TaskError: the input's fault (BAD_INPUT: shapes, ranks, dtypes the model
 * does not take; UNSUPPORTED_OP: an op tfjs-converter maps on no backend) or this provider's
 * (EXECUTION_FAILED: anything else, e.g. a kernel its backend lacks).
 */
export function executionError(err: unknown): TaskError {
  if (err instanceof TaskError) return err;
  const e = err as Error;
  const message = e.message ?? String(err);
  if (/^Tensorflow Op is not supported/i.test(message)) return new TaskError('UNSUPPORTED_OP', message);
  const bad = e.name === 'ValueError' || /shape|rank|dtype|expected/i.test(message);
  return new TaskError(bad ? 'BAD_INPUT' : 'EXECUTION_FAILED', message);
}

/** Input and output names of a layers model (a Sequential model keeps them on an internal model). */
function layersIo(tf: Tf, model: tfTypes.LayersModel): { inputs: string[]; outputs: string[] } {
  if (model instanceof tf.Sequential || model.outputNames.length === 0) {
    const first = model.layers[0]?.name ?? 'input';
    const last = model.layers[model.layers.length - 1]?.name ?? 'output';
    return { inputs: [`${first}_input`], outputs: [last] };
  }
  return { inputs: model.inputNames, outputs: model.outputNames };
}

async function runInference(
  tf: Tf,
  task: Extract<WorkerTask, { kind: 'inference' }>,
  hooks: KernelHooks,
): Promise<KernelResult> {
  if (task.model.format === 'layers') {
    const model = await loadLayers(tf, task.model);
    let outs: tfTypes.Tensor[] = [];
    try {
      const io = layersIo(tf, model);
      const wanted = task.outputs ?? io.outputs;
      const unknown = wanted.filter((n) => !io.outputs.includes(n));
      if (unknown.length > 0) {
        throw new TaskError(
          'BAD_INPUT',
          `unknown outputs ${unknown.join(', ')}; model has ${io.outputs.join(', ')}`,
        );
      }
      const bound = bindInputs(io.inputs, task);
      try {
        outs = tf.tidy(() => {
          const xs = bound.map((t) => toTensor(tf, t));
          const y = model.predict(xs.length === 1 ? xs[0] : xs, { batchSize: task.batchSize });
          return Array.isArray(y) ? y : [y];
        });
      } catch (err) {
        throw executionError(err);
      }
      const outputs: RawTensor[] = [];
      for (const name of wanted)
        outputs.push(await toRaw(tf, name, outs[io.outputs.indexOf(name)], hooks.allocateOutput));
      return { outputs };
    } finally {
      tf.dispose(outs);
      model.dispose();
    }
  }
  const model = await loadGraph(tf, task.model);
  const feeds: tfTypes.NamedTensorMap = {};
  let outs: tfTypes.Tensor[] = [];
  try {
    const inputNames = model.inputs.map((i) => i.name);
    const bound = bindInputs(inputNames, task);
    bound.forEach((t, i) => (feeds[inputNames[i]] = toTensor(tf, t)));
    const wanted = task.outputs ? [...task.outputs] : model.outputs.map((o) => o.name);
    try {
      let y: tfTypes.Tensor | tfTypes.Tensor[];
      try {
        y = model.execute(feeds, wanted);
      } catch (err) {
        // Graphs with control flow or dynamic shapes only run asynchronously.
        if (!/executeAsync/.test((err as Error).message ?? '')) throw err;
        y = await model.executeAsync(feeds, wanted);
      }
      outs = Array.isArray(y) ? y : [y];
    } catch (err) {
      throw executionError(err);
    }
    const outputs: RawTensor[] = [];
    for (let i = 0; i < wanted.length; i++)
      outputs.push(await toRaw(tf, wanted[i], outs[i], hooks.allocateOutput));
    return { outputs };
  } finally {
    tf.dispose(outs);
    tf.dispose(Object.values(feeds));
    model.dispose();
  }
}

async function runTrain(
  tf: Tf,
  task: Extract<WorkerTask, { kind: 'train' }>,
  hooks: KernelHooks,
): Promise<KernelResult> {
  if (task.model.format !== 'layers') throw new TaskError('BAD_INPUT', 'train needs a layers model');
  const model = await loadLayers(tf, task.model);
  const p = task.params;
  const optimizer = p.optimizer === 'adam' ? tf.train.adam(p.learningRate) : tf.train.sgd(p.learningRate);
  const x = toTensor(tf, input(task, 'x'));
  const y = toTensor(tf, input(task, 'y'));
  try {
    model.compile({ optimizer, loss: p.loss });
    let history: tfTypes.History;
    try {
      history = await model.fit(x, y, {
        epochs: p.epochs,
        batchSize: p.batchSize,
        // Deterministic: redundant providers must be able to agree on the trained weights.
        shuffle: false,
        verbose: 0,
        callbacks: {
          onEpochEnd: (epoch: number, logs?: tfTypes.Logs) => {
            hooks.onProgress?.({ epoch: epoch + 1, epochs: p.epochs, loss: logs?.loss });
          },
        },
      });
    } catch (err) {
      throw executionError(err);
    }
    const outputs: RawTensor[] = [];
    const names = trainedWeightNames(model);
    for (const [i, w] of model.weights.entries()) {
      outputs.push(await toRaw(tf, names[i], w.read(), hooks.allocateOutput));
    }
    const lossHistory = (history.history.loss ?? []).map((v) => Number(v));
    return { outputs, lossHistory };
  } finally {
    x.dispose();
    y.dispose();
    model.dispose();
    optimizer.dispose();
  }
}

/**
 * The output name of each of a model's weights after training, `weights/<name>`: named by the
 * variable's original name, because tfjs makes `name` unique per thread (`lin/kernel_3` on the fourth
 * load of a model), which would differ between two honest runs of the same job.
 */
function trainedWeightNames(model: tfTypes.LayersModel): string[] {
  const seen = new Set<string>();
  return model.weights.map((w, i) => {
    const base = w.originalName ?? w.name;
    const name = seen.has(base) ? `${base}#${i}` : base;
    seen.add(name);
    return wireName(`weights/${name}`);
  });
}

/**
 * The training loss (the job's own loss function over its whole `x`, `y`) of the model with each set
 * of weights in `candidates` (a train job's outputs; `null`: the artifact's untrained weights). A set
 * that lacks a weight, has one of another shape or leads to a non-finite loss scores +Infinity. This
 * judges two trainings by what they achieved, where their weights may have drifted apart.
 */
export async function evaluateTrainLoss(
  tf: Tf,
  task: Extract<WorkerTask, { kind: 'train' }>,
  candidates: readonly (readonly RawTensor[] | null)[],
): Promise<number[]> {
  if (task.model.format !== 'layers') throw new TaskError('BAD_INPUT', 'train needs a layers model');
  const model = await loadLayers(tf, task.model);
  const x = toTensor(tf, input(task, 'x'));
  const y = toTensor(tf, input(task, 'y'));
  const names = trainedWeightNames(model);
  const initial = model.weights.map((w) => w.read().clone());
  try {
    model.compile({ optimizer: 'sgd', loss: task.params.loss });
    const losses: number[] = [];
    for (const candidate of candidates) {
      const byName = new Map((candidate ?? []).map((t) => [t.name, t]));
      const values: tfTypes.Tensor[] = [];
      let complete = true;
      for (const [i, w] of model.weights.entries()) {
        if (candidate === null) {
          values.push(initial[i]);
          continue;
        }
        const t = byName.get(names[i]);
        if (!t || t.dtype !== 'float32' || t.shape.join('x') !== w.shape.join('x')) {
          complete = false;
          break;
        }
        values.push(toTensor(tf, t));
      }
      if (!complete) {
        if (candidate !== null) tf.dispose(values);
        losses.push(Number.POSITIVE_INFINITY);
        continue;
      }
      model.weights.forEach((w, i) => w.write(values[i]));
      const result = model.evaluate(x, y, { batchSize: task.params.batchSize, verbose: 0 });
      const scalar = Array.isArray(result) ? result[0] : result;
      const loss = Number((await scalar.data())[0]);
      tf.dispose(result);
      if (candidate !== null) tf.dispose(values);
      losses.push(Number.isFinite(loss) ? loss : Number.POSITIVE_INFINITY);
    }
    return losses;
  } catch (err) {
    if (err instanceof TaskError) throw err;
    throw executionError(err);
  } finally {
    tf.dispose(initial);
    x.dispose();
    y.dispose();
    model.dispose();
  }
}

/** Runs one task on `tf`'s active backend; throws `TaskError` with a code for anything that fails. */
export async function runKernel(tf: Tf, task: WorkerTask, hooks: KernelHooks = {}): Promise<KernelResult> {
  switch (task.kind) {
    case 'matmul':
      return runMatmul(tf, task, hooks).catch((err: unknown) => Promise.reject(executionError(err)));
    case 'inference':
      return runInference(tf, task, hooks);
    case 'train':
      return runTrain(tf, task, hooks);
  }
}
