import { ProtocolValidationError } from './errors.js';
import type { ModelFormat } from './job-spec.js';

/**
 * Per-sample forward-pass FLOPs of a tfjs model, estimated from its model.json alone (weights are
 * never needed). Used to price inference and training jobs before they run.
 *
 * Layers models (`format: 'layers'`): walks `modelTopology.config.layers` (or
 * `modelTopology.model_config.config.layers`), propagating the per-sample shape from the input layer:
 * - Dense: 2 · in · units per leading position;
 * - Conv2D: 2 · kh · kw · cin · cout · outH · outW ('same' / 'valid' padding, strides, dilation);
 *   DepthwiseConv2D, SeparableConv2D and Conv1D likewise; LSTM / GRU / SimpleRNN by their gate matmuls;
 * - pooling: one FLOP per window element; activations and every other layer:
 *   `ELEMENTWISE_FLOPS_PER_ELEMENT` per output element (layer activations add the same on top).
 *
 * Graph models (`format: 'graph'`): sums MatMul / BatchMatMul / Conv2D / DepthwiseConv2dNative nodes
 * (fused variants included) whose operand shapes are known from `_output_shapes` / `shape` attributes
 * or the weights manifest. If any such node's shapes are unknown, the documented fallback is used for
 * the whole model: `GRAPH_FALLBACK_FLOPS_PER_WEIGHT_BYTE` (2) × total bytes of weights.
 */
export const ELEMENTWISE_FLOPS_PER_ELEMENT = 4n;
export const GRAPH_FALLBACK_FLOPS_PER_WEIGHT_BYTE = 2n;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function modelError(path: string, message: string): ProtocolValidationError {
  return new ProtocolValidationError('INVALID_MODEL', `invalid model: ${path}: ${message}`, [
    { path, message },
  ]);
}

function product(dims: readonly number[]): bigint {
  return dims.reduce((acc, d) => acc * BigInt(d), 1n);
}

function isDim(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

/** Detects the format from `format` ("layers-model" / "graph-model") or the topology's content. */
function detectFormat(model: Json, topology: Json): ModelFormat {
  if (model.format === 'graph-model') return 'graph';
  if (model.format === 'layers-model') return 'layers';
  return Array.isArray(topology.node) ? 'graph' : 'layers';
}

/** Estimates per-sample forward FLOPs of a tfjs `model.json`; throws `INVALID_MODEL` when it cannot. */
export function estimateModelFlops(modelJson: unknown, format?: ModelFormat): bigint {
  if (!isObject(modelJson)) throw modelError('(root)', 'expected model.json object');
  const topology = isObject(modelJson.modelTopology) ? modelJson.modelTopology : modelJson;
  const kind = format ?? detectFormat(modelJson, topology);
  let flops: bigint;
  try {
    flops = kind === 'graph' ? graphFlops(modelJson, topology) : layersFlops(topology);
  } catch (err) {
    if (err instanceof ProtocolValidationError) throw err;
    throw modelError(
      'modelTopology',
      `cannot be analysed (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  return flops > 0n ? flops : 1n;
}

// ---------------------------------------------------------------------------------------------
// Layers models

interface LayerEntry {
  readonly className: string;
  readonly name: string;
  readonly config: Json;
  readonly inbound: string[];
  readonly path: string;
}

function findLayers(topology: Json): { layers: unknown[]; path: string } {
  const candidates: [unknown, string][] = [
    [topology.config, 'modelTopology.config'],
    [
      isObject(topology.model_config) ? topology.model_config.config : undefined,
      'modelTopology.model_config.config',
    ],
  ];
  for (const [config, path] of candidates) {
    if (Array.isArray(config)) return { layers: config, path };
    if (isObject(config) && Array.isArray(config.layers))
      return { layers: config.layers, path: `${path}.layers` };
  }
  throw modelError('modelTopology', 'expected config.layers or model_config.config.layers');
}

/** Names of the layers feeding this one (Keras 2 nested arrays or Keras 3 `keras_history`). */
function inboundNames(raw: Json): string[] {
  const out: string[] = [];
  const visit = (v: unknown, depth: number): void => {
    if (depth > 6) return;
    if (Array.isArray(v)) {
      if (typeof v[0] === 'string' && typeof v[1] === 'number') out.push(v[0]);
      else for (const x of v) visit(x, depth + 1);
    } else if (isObject(v)) {
      if (Array.isArray(v.keras_history) && typeof v.keras_history[0] === 'string')
        out.push(v.keras_history[0]);
      else for (const x of Object.values(v)) visit(x, depth + 1);
    }
  };
  visit(raw.inbound_nodes, 0);
  return out;
}

function toLayerEntries(layers: unknown[], basePath: string): LayerEntry[] {
  return layers.map((raw, i) => {
    const path = `${basePath}[${i}]`;
    if (!isObject(raw) || typeof raw.class_name !== 'string' || !isObject(raw.config)) {
      throw modelError(path, 'expected layer { class_name, config }');
    }
    const name =
      typeof raw.name === 'string'
        ? raw.name
        : typeof raw.config.name === 'string'
          ? raw.config.name
          : `#${i}`;
    return { className: raw.class_name, name, config: raw.config, inbound: inboundNames(raw), path };
  });
}

/** Per-sample declared input shape (batch dimension dropped), or undefined. */
function declaredInputShape(config: Json): (number | null)[] | undefined {
  const batch = config.batch_input_shape ?? config.batch_shape;
  if (Array.isArray(batch)) return batch.slice(1) as (number | null)[];
  if (Array.isArray(config.input_shape)) return config.input_shape as (number | null)[];
  return undefined;
}

function pair(v: unknown, fallback: number): [number, number] {
  if (isDim(v)) return [v, v];
  if (Array.isArray(v) && isDim(v[0])) return [v[0], isDim(v[1]) ? v[1] : v[0]];
  return [fallback, fallback];
}

function single(v: unknown, fallback: number): number {
  if (isDim(v)) return v;
  if (Array.isArray(v) && isDim(v[0])) return v[0];
  return fallback;
}

function convOut(size: number, kernel: number, stride: number, dilation: number, padding: unknown): number {
  if (padding === 'same' || padding === 'causal') return Math.ceil(size / stride);
  const effective = (kernel - 1) * dilation + 1;
  return Math.floor((size - effective) / stride) + 1;
}

function known(shape: readonly (number | null)[] | undefined, layer: LayerEntry, need: string): number[] {
  if (!shape || !shape.every(isDim)) {
    throw modelError(
      layer.path,
      `${layer.className} "${layer.name}" needs a known ${need}; got [${(shape ?? []).join(',')}]`,
    );
  }
  return shape as number[];
}

/** Splits an NHWC-style per-sample shape into spatial dims and channels, honouring data_format. */
function spatial(shape: number[], config: Json, rank: number): { dims: number[]; channels: number } {
  if (config.data_format === 'channels_first') return { channels: shape[0], dims: shape.slice(1, 1 + rank) };
  return { dims: shape.slice(0, rank), channels: shape[rank] };
}

function withChannels(dims: number[], channels: number, config: Json): number[] {
  return config.data_format === 'channels_first' ? [channels, ...dims] : [...dims, channels];
}

type Shape = (number | null)[];

function activationCost(config: Json, outShape: Shape): bigint {
  const act = config.activation;
  if (act === undefined || act === null || act === 'linear') return 0n;
  return outShape.every(isDim) ? ELEMENTWISE_FLOPS_PER_ELEMENT * product(outShape as number[]) : 0n;
}

const SHAPE_PRESERVING_FREE = new Set([
  'InputLayer',
  'Dropout',
  'SpatialDropout2D',
  'GaussianNoise',
  'Masking',
]);

function layerStep(layer: LayerEntry, inputs: Shape[]): { flops: bigint; out: Shape } {
  const c = layer.config;
  const input = inputs[0];
  const elementwise = (shape: Shape): bigint =>
    shape.every(isDim) ? ELEMENTWISE_FLOPS_PER_ELEMENT * product(shape as number[]) : 0n;
  switch (layer.className) {
    case 'InputLayer': {
      const shape = declaredInputShape(c);
      if (!shape) throw modelError(layer.path, `InputLayer "${layer.name}" has no batch_input_shape`);
      return { flops: 0n, out: shape };
    }
    case 'Dense': {
      const shape = known(input, layer, 'input shape');
      const units = c.units;
      if (!isDim(units))
        throw modelError(layer.path, `Dense "${layer.name}": expected positive integer units`);
      const inSize = shape[shape.length - 1];
      const out = [...shape.slice(0, -1), units];
      const flops = 2n * BigInt(inSize) * BigInt(units) * product(shape.slice(0, -1));
      return { flops: flops + activationCost(c, out), out };
    }
    case 'Conv1D':
    case 'Conv2D':
    case 'DepthwiseConv2D':
    case 'SeparableConv2D': {
      const rank = layer.className === 'Conv1D' ? 1 : 2;
      const shape = known(input, layer, `${rank + 1}-D input shape`);
      if (shape.length !== rank + 1) {
        throw modelError(
          layer.path,
          `${layer.className} "${layer.name}": expected ${rank + 1}-D input, got [${shape.join(',')}]`,
        );
      }
      const { dims, channels: cin } = spatial(shape, c, rank);
      const kernel = rank === 1 ? [single(c.kernel_size, 1)] : pair(c.kernel_size, 1);
      const strides = rank === 1 ? [single(c.strides, 1)] : pair(c.strides, 1);
      const dilation = rank === 1 ? [single(c.dilation_rate, 1)] : pair(c.dilation_rate, 1);
      const outDims = dims.map((d, i) => convOut(d, kernel[i], strides[i], dilation[i], c.padding));
      if (!outDims.every(isDim))
        throw modelError(layer.path, `${layer.className} "${layer.name}": kernel larger than input`);
      const positions = product(outDims);
      const window = product(kernel);
      const multiplier = BigInt(isDim(c.depth_multiplier) ? c.depth_multiplier : 1);
      let flops: bigint;
      let cout: number;
      if (layer.className === 'DepthwiseConv2D') {
        cout = cin * Number(multiplier);
        flops = 2n * window * BigInt(cin) * multiplier * positions;
      } else {
        if (!isDim(c.filters))
          throw modelError(
            layer.path,
            `${layer.className} "${layer.name}": expected positive integer filters`,
          );
        cout = c.filters;
        flops =
          layer.className === 'SeparableConv2D'
            ? 2n * window * BigInt(cin) * multiplier * positions +
              2n * BigInt(cin) * multiplier * BigInt(cout) * positions
            : 2n * window * BigInt(cin) * BigInt(cout) * positions;
      }
      const out = withChannels(outDims, cout, c);
      return { flops: flops + activationCost(c, out), out };
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D':
    case 'MaxPooling1D':
    case 'AveragePooling1D': {
      const rank = layer.className.endsWith('1D') ? 1 : 2;
      const shape = known(input, layer, 'input shape');
      const { dims, channels } = spatial(shape, c, rank);
      const pool = rank === 1 ? [single(c.pool_size, 2)] : pair(c.pool_size, 2);
      const strides =
        c.strides === null || c.strides === undefined
          ? pool
          : rank === 1
            ? [single(c.strides, pool[0])]
            : pair(c.strides, pool[0]);
      const outDims = dims.map((d, i) => convOut(d, pool[i], strides[i], 1, c.padding));
      if (!outDims.every(isDim))
        throw modelError(layer.path, `${layer.className} "${layer.name}": pool larger than input`);
      const out = withChannels(outDims, channels, c);
      return { flops: product(out) * product(pool), out };
    }
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D':
    case 'GlobalAveragePooling1D':
    case 'GlobalMaxPooling1D': {
      const shape = known(input, layer, 'input shape');
      const channels = c.data_format === 'channels_first' ? shape[0] : shape[shape.length - 1];
      return { flops: product(shape), out: [channels] };
    }
    case 'Flatten': {
      const shape = known(input, layer, 'input shape');
      return { flops: 0n, out: [Number(product(shape))] };
    }
    case 'Reshape': {
      const target = c.target_shape;
      if (!Array.isArray(target))
        throw modelError(layer.path, `Reshape "${layer.name}": expected target_shape`);
      const shape = known(input, layer, 'input shape');
      const total = Number(product(shape));
      const fixed = (target as number[]).filter((d) => d !== -1).reduce((a, d) => a * d, 1);
      return { flops: 0n, out: (target as number[]).map((d) => (d === -1 ? total / fixed : d)) };
    }
    case 'Embedding': {
      const shape = known(input, layer, 'input shape');
      const dim = c.output_dim;
      if (!isDim(dim)) throw modelError(layer.path, `Embedding "${layer.name}": expected output_dim`);
      const out = [...shape, dim];
      return { flops: product(out), out };
    }
    case 'LSTM':
    case 'GRU':
    case 'SimpleRNN': {
      const shape = known(input, layer, '[timesteps, features] input shape');
      if (shape.length !== 2)
        throw modelError(layer.path, `${layer.className} "${layer.name}": expected [timesteps, features]`);
      const units = c.units;
      if (!isDim(units)) throw modelError(layer.path, `${layer.className} "${layer.name}": expected units`);
      const gates = layer.className === 'LSTM' ? 4n : layer.className === 'GRU' ? 3n : 1n;
      const [steps, features] = shape;
      const flops = BigInt(steps) * gates * 2n * BigInt(features + units) * BigInt(units);
      const out = c.return_sequences === true ? [steps, units] : [units];
      return { flops: flops + BigInt(steps) * gates * ELEMENTWISE_FLOPS_PER_ELEMENT * BigInt(units), out };
    }
    case 'Concatenate': {
      const shapes = inputs.map((s) => known(s, layer, 'input shapes'));
      const first = shapes[0];
      const axisRaw = typeof c.axis === 'number' ? c.axis : -1;
      // Axis counts the batch dimension; per-sample shapes do not.
      const axis = axisRaw < 0 ? first.length + axisRaw : axisRaw - 1;
      const out = [...first];
      out[axis] = shapes.reduce((acc, s) => acc + (s[axis] ?? 0), 0);
      return { flops: 0n, out };
    }
    default: {
      if (input === undefined)
        throw modelError(layer.path, `${layer.className} "${layer.name}" has no known input`);
      const flops = SHAPE_PRESERVING_FREE.has(layer.className)
        ? 0n
        : elementwise(input) * BigInt(Math.max(1, inputs.length));
      return { flops, out: input };
    }
  }
}

function layersFlops(topology: Json): bigint {
  const { layers: raw, path } = findLayers(topology);
  if (raw.length === 0) throw modelError(path, 'expected at least one layer');
  const layers = toLayerEntries(raw, path);
  const outputs = new Map<string, Shape>();
  let previous: Shape | undefined;
  let total = 0n;
  for (const layer of layers) {
    let inputs: Shape[];
    const fromGraph = layer.inbound.map((n) => outputs.get(n)).filter((s): s is Shape => s !== undefined);
    if (layer.className !== 'InputLayer' && declaredInputShape(layer.config) && previous === undefined) {
      inputs = [declaredInputShape(layer.config) as Shape];
    } else if (fromGraph.length > 0) {
      inputs = fromGraph;
    } else {
      inputs = previous === undefined ? [] : [previous];
    }
    const { flops, out } = layerStep(layer, inputs);
    total += flops;
    outputs.set(layer.name, out);
    previous = out;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Graph models

const DTYPE_BYTES: Readonly<Record<string, number>> = {
  float32: 4,
  int32: 4,
  float16: 2,
  uint16: 2,
  int16: 2,
  uint8: 1,
  int8: 1,
  bool: 1,
  complex64: 8,
  string: 1,
};

function dimsOf(shapeProto: unknown): number[] | undefined {
  if (!isObject(shapeProto)) return undefined;
  if (shapeProto.unknownRank === true) return undefined;
  const dims = Array.isArray(shapeProto.dim) ? shapeProto.dim : [];
  const out: number[] = [];
  for (const d of dims) {
    const size = isObject(d) ? Number(d.size ?? 1) : NaN;
    if (!Number.isFinite(size)) return undefined;
    out.push(size);
  }
  return out;
}

function weightEntries(model: Json): { name: string; shape: number[]; dtype: string }[] {
  const manifest = Array.isArray(model.weightsManifest) ? model.weightsManifest : [];
  const out: { name: string; shape: number[]; dtype: string }[] = [];
  for (const group of manifest) {
    if (!isObject(group) || !Array.isArray(group.weights)) continue;
    for (const w of group.weights) {
      if (isObject(w) && typeof w.name === 'string' && Array.isArray(w.shape)) {
        const shape = w.shape.filter((d): d is number => Number.isSafeInteger(d) && (d as number) >= 0);
        if (shape.length !== w.shape.length) continue;
        out.push({ name: w.name, shape, dtype: typeof w.dtype === 'string' ? w.dtype : 'float32' });
      }
    }
  }
  return out;
}

function stripInput(name: string): string {
  return name.replace(/^\^/, '').replace(/:\d+$/, '');
}

function attrBool(node: Json, key: string): boolean {
  const attr = isObject(node.attr) ? node.attr[key] : undefined;
  return isObject(attr) && attr.b === true;
}

function attrString(node: Json, key: string): string | undefined {
  const attr = isObject(node.attr) ? node.attr[key] : undefined;
  if (!isObject(attr) || typeof attr.s !== 'string') return undefined;
  return Buffer.from(attr.s, 'base64').toString('utf8');
}

function attrInts(node: Json, key: string): number[] | undefined {
  const attr = isObject(node.attr) ? node.attr[key] : undefined;
  if (!isObject(attr) || !isObject(attr.list) || !Array.isArray(attr.list.i)) return undefined;
  return attr.list.i.map((v) => Number(v));
}

/** Output shape a node declares via `_output_shapes`, a Placeholder `shape`, or a Const `value`. */
function declaredNodeShape(node: Json): number[] | undefined {
  const attr = isObject(node.attr) ? node.attr : {};
  const outShapes = attr._output_shapes;
  if (isObject(outShapes) && isObject(outShapes.list) && Array.isArray(outShapes.list.shape)) {
    return dimsOf(outShapes.list.shape[0]);
  }
  if (isObject(attr.shape) && isObject(attr.shape.shape)) return dimsOf(attr.shape.shape);
  if (isObject(attr.value) && isObject(attr.value.tensor)) return dimsOf(attr.value.tensor.tensorShape);
  return undefined;
}

/** Replaces a leading -1 (batch) by 1; undefined if any other dimension is unknown. */
function perSample(shape: number[] | undefined): number[] | undefined {
  if (!shape) return undefined;
  const out = shape.map((d, i) => (i === 0 && d === -1 ? 1 : d));
  return out.every(isDim) ? out : undefined;
}

function nodeFlops(node: Json, shapes: Map<string, number[]>): bigint | undefined {
  const op = String(node.op);
  const inputs = Array.isArray(node.input)
    ? node.input.filter((s): s is string => typeof s === 'string' && !s.startsWith('^'))
    : [];
  const shapeOf = (i: number): number[] | undefined => perSample(shapes.get(stripInput(inputs[i] ?? '')));
  if (op === 'MatMul' || op === '_FusedMatMul' || op === 'BatchMatMul' || op === 'BatchMatMulV2') {
    const a = shapeOf(0);
    const b = shapeOf(1);
    if (!a || !b || a.length < 2 || b.length < 2) return undefined;
    const ta = attrBool(node, 'transpose_a') || attrBool(node, 'adj_x');
    const tb = attrBool(node, 'transpose_b') || attrBool(node, 'adj_y');
    const [a0, a1] = a.slice(-2);
    const [b0, b1] = b.slice(-2);
    const m = ta ? a1 : a0;
    const k = ta ? a0 : a1;
    const n = tb ? b0 : b1;
    const batch = product(a.slice(0, -2));
    return 2n * BigInt(m) * BigInt(k) * BigInt(n) * batch;
  }
  if (
    op === 'Conv2D' ||
    op === '_FusedConv2D' ||
    op === 'DepthwiseConv2dNative' ||
    op === 'FusedDepthwiseConv2dNative'
  ) {
    const filter = shapeOf(1);
    if (!filter || filter.length !== 4) return undefined;
    const [kh, kw, cin, cout] = filter;
    const nchw = attrString(node, 'data_format') === 'NCHW';
    let out = perSample(declaredNodeShape(node));
    if (!out) {
      const input = shapeOf(0);
      const strides = attrInts(node, 'strides') ?? [1, 1, 1, 1];
      if (!input || input.length !== 4) return undefined;
      const [h, w] = nchw ? input.slice(2) : input.slice(1, 3);
      const [sh, sw] = nchw ? strides.slice(2) : strides.slice(1, 3);
      const pad = attrString(node, 'padding') === 'SAME' ? 'same' : 'valid';
      out = [1, convOut(h, kh, sh, 1, pad), convOut(w, kw, sw, 1, pad), 0];
    }
    if (out.length !== 4) return undefined;
    const [oh, ow] = nchw ? out.slice(2) : out.slice(1, 3);
    // Depthwise filters are [kh, kw, cin, multiplier]: the same product counts their MACs.
    return 2n * BigInt(kh) * BigInt(kw) * BigInt(cin) * BigInt(cout) * BigInt(oh) * BigInt(ow);
  }
  return 0n;
}

const COSTED_OPS = /MatMul|Conv2D|DepthwiseConv2dNative/;

function graphFlops(model: Json, topology: Json): bigint {
  if (!Array.isArray(topology.node)) throw modelError('modelTopology.node', 'expected array of graph nodes');
  const weights = weightEntries(model);
  const shapes = new Map<string, number[]>();
  for (const w of weights) shapes.set(w.name, w.shape);
  const nodes: Json[] = [];
  topology.node.forEach((n, i) => {
    if (!isObject(n) || typeof n.name !== 'string' || typeof n.op !== 'string') {
      throw modelError(`modelTopology.node[${i}]`, 'expected node { name, op }');
    }
    nodes.push(n);
    const declared = declaredNodeShape(n);
    if (declared && !shapes.has(n.name)) shapes.set(n.name, declared);
  });
  let total = 0n;
  let unknown = false;
  for (const node of nodes) {
    if (!COSTED_OPS.test(String(node.op))) continue;
    const flops = nodeFlops(node, shapes);
    if (flops === undefined) unknown = true;
    else total += flops;
  }
  if (!unknown && total > 0n) return total;
  const weightBytes = weights.reduce(
    (acc, w) => acc + product(w.shape) * BigInt(DTYPE_BYTES[w.dtype] ?? 4),
    0n,
  );
  if (weightBytes === 0n) {
    if (!unknown) return total;
    throw modelError(
      'weightsManifest',
      'node shapes are unknown and there is no weights manifest to fall back on',
    );
  }
  return weightBytes * GRAPH_FALLBACK_FLOPS_PER_WEIGHT_BYTE;
}
