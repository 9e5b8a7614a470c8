// Tolerance benchmark: how far apart do honest backends land on the same job? Runs matmul (several
// sizes, large K, zero-mean, positive, constant and mixed-magnitude inputs), inference (layers and
// graph models) and train jobs on every backend that really differs here — tfjs `cpu`, `wasm` with
// SIMD, `wasm` without SIMD (each in its own worker thread) — plus, for matmul, float32 summation
// orders a GPU may use (sequential with and without FMA, pairwise tree, exact float64), and reports
// per case the largest spread between any two of them beside the bound @gpumesh/verification sets and the
// margin (bound / observed; must stay ≥ 1, the safety factor is what we aim for). Executor worker
// counts do not enter: each task runs whole on one worker thread, and wasm has no threads in Node.
//   npm run bench -- --only tolerance        (or: node dist/bench/tolerance.bench.js after a build)
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import type * as tfTypes from '@tensorflow/tfjs';

import {
  loadTf,
  requestWebgpuAdapter,
  runKernel,
  useWasmMatmulKernel,
  type ModelArtifact,
  type RawTensor,
  type Tf,
  type WorkerTask,
} from '@gpumesh/compute';
import {
  decodeTensor,
  encodeTensor,
  estimateModelFlops,
  parseJobSpec,
  type JobSpec,
  type JobSpecInput,
  type TensorWire,
} from '@gpumesh/protocol';
import {
  compareOutputs,
  FLOAT32_UNIT_ROUNDOFF,
  SAFETY_FACTOR,
  type CompareContext,
} from '@gpumesh/verification';

// wasm-simd is tfjs's own SIMD kernels (XNNPACK); wasm-gemm the same backend with gpumesh's matmul kernel
// (wasm-gemm.ts), what agents run by default.
// webgpu: tfjs-backend-webgpu on Dawn (here Mesa's llvmpipe through OpenGL ES: WGSL shaders, another
// summation order); included when an adapter can be had.
type Variant = 'cpu' | 'wasm-simd' | 'wasm-gemm' | 'wasm-nosimd' | 'webgpu';
const CPU_VARIANTS: readonly Variant[] = ['cpu', 'wasm-simd', 'wasm-gemm', 'wasm-nosimd'];

async function tfjsVariants(): Promise<readonly Variant[]> {
  try {
    await requestWebgpuAdapter();
    return [...CPU_VARIANTS, 'webgpu'];
  } catch (err) {
    console.warn(`tolerance bench: no webgpu variant (${(err as Error).message})`);
    return CPU_VARIANTS;
  }
}

interface Case {
  readonly name: string;
  readonly kind: 'matmul' | 'inference' | 'train';
  readonly spec: JobSpec;
  readonly model?: ModelArtifact;
  readonly size: Record<string, number>;
}

// ---------------------------------------------------------------------------------------------
// Inputs

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

type Distribution = 'uniform' | 'positive' | 'constant' | 'mixed';

function values(count: number, seed: number, dist: Distribution): Float32Array {
  const rnd = xorshift(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    if (dist === 'uniform') out[i] = rnd() * 2 - 1;
    else if (dist === 'positive') out[i] = rnd();
    else if (dist === 'constant') out[i] = 0.1;
    else out[i] = (rnd() * 2 - 1) * 10 ** (rnd() * 6 - 3);
  }
  return out;
}

function spec(input: Record<string, unknown>): JobSpec {
  return parseJobSpec({ version: 1, maxPricePerUnit: '1', ...input } as JobSpecInput);
}

function matmulCase(m: number, k: number, n: number, dist: Distribution, seed: number): Case {
  const a = encodeTensor('a', 'float32', [m, k], values(m * k, seed, dist));
  const b = encodeTensor('b', 'float32', [k, n], values(k * n, seed + 1, dist));
  return {
    name: `matmul ${m}x${k}x${n} ${dist}`,
    kind: 'matmul',
    spec: spec({ kind: 'matmul', inputs: [a, b] }),
    size: { m, k, n },
  };
}

// ---------------------------------------------------------------------------------------------
// Models (built with the cpu backend, saved as model.json + weights like tfjs-converter lays them out)

async function saveLayers(tf: Tf, model: tfTypes.LayersModel): Promise<ModelArtifact> {
  let saved: tfTypes.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!saved?.weightSpecs || !saved.weightData) throw new Error('nothing saved');
  const parts = Array.isArray(saved.weightData) ? saved.weightData : [saved.weightData];
  const weights = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    weights.set(new Uint8Array(p), o);
    o += p.byteLength;
  }
  return {
    format: 'layers',
    modelJson: {
      format: 'layers-model',
      modelTopology: saved.modelTopology as Record<string, unknown>,
      weightsManifest: [{ paths: ['w.bin'], weights: saved.weightSpecs }],
    },
    weights,
  };
}

/** Deterministic Glorot-ish weights for every variable of `model`. */
function seedWeights(tf: Tf, model: tfTypes.LayersModel, seed: number): void {
  let s = seed;
  model.setWeights(
    model.getWeights().map((w) => {
      const fanIn = w.shape.length > 1 ? w.shape.slice(0, -1).reduce((a, b) => a * b, 1) : 1;
      const v = values(w.size, s++, 'uniform').map(
        (x) => x * Math.sqrt(6 / (fanIn + w.shape[w.shape.length - 1])),
      );
      return tf.tensor(v, w.shape);
    }),
  );
}

function mlp(tf: Tf, widths: number[], activation: 'relu' | 'tanh'): tfTypes.LayersModel {
  const model = tf.sequential();
  for (let i = 1; i < widths.length; i++) {
    model.add(
      tf.layers.dense({
        ...(i === 1 ? { inputShape: [widths[0]] } : {}),
        units: widths[i],
        activation: i === widths.length - 1 ? 'linear' : activation,
      }),
    );
  }
  return model;
}

function convNet(tf: Tf): tfTypes.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 16, kernelSize: 3, activation: 'relu' }));
  model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  model.add(tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu' }));
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
  return model;
}

/** The repo's hand-written graph model fixture shape (y = x·W + b), here with a wide W. */
function graphArtifact(inDim: number, outDim: number, seed: number): ModelArtifact {
  const f = { type: 'DT_FLOAT' };
  const dims = (d: number[]): { dim: { size: string }[] } => ({ dim: d.map((s) => ({ size: String(s) })) });
  const modelJson = {
    format: 'graph-model',
    generatedBy: '2.9.1',
    convertedBy: 'tolerance-bench',
    modelTopology: {
      node: [
        { name: 'x', op: 'Placeholder', attr: { dtype: f, shape: { shape: dims([-1, inDim]) } } },
        {
          name: 'W',
          op: 'Const',
          attr: { dtype: f, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: dims([inDim, outDim]) } } },
        },
        {
          name: 'b',
          op: 'Const',
          attr: { dtype: f, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: dims([outDim]) } } },
        },
        {
          name: 'MatMul',
          op: 'MatMul',
          input: ['x', 'W'],
          attr: { T: f, transpose_a: { b: false }, transpose_b: { b: false } },
        },
        { name: 'Add', op: 'AddV2', input: ['MatMul', 'b'], attr: { T: f } },
        { name: 'Relu', op: 'Relu', input: ['Add'], attr: { T: f } },
        { name: 'Identity', op: 'Identity', input: ['Relu'], attr: { T: f } },
      ],
      library: {},
      versions: { producer: 1119 },
    },
    weightsManifest: [
      {
        paths: ['w.bin'],
        weights: [
          { name: 'W', shape: [inDim, outDim], dtype: 'float32' },
          { name: 'b', shape: [outDim], dtype: 'float32' },
        ],
      },
    ],
  };
  const w = values(inDim * outDim, seed, 'uniform').map((v) => v / Math.sqrt(inDim));
  const b = values(outDim, seed + 1, 'uniform').map((v) => v * 0.1);
  const weights = new Uint8Array(Float32Array.from([...w, ...b]).buffer);
  return { format: 'graph', modelJson, weights };
}

async function modelCases(): Promise<Case[]> {
  const { loadTf } = await import('@gpumesh/compute');
  const { tf } = await loadTf('cpu');
  const { artifactHash } = await import('@gpumesh/compute');
  const cases: Case[] = [];
  const ref = async (m: ModelArtifact): Promise<{ hash: string; format: 'layers' | 'graph' }> => ({
    hash: await artifactHash(m),
    format: m.format,
  });
  const infer = async (
    name: string,
    model: ModelArtifact,
    x: TensorWire,
    size: Record<string, number>,
  ): Promise<void> => {
    cases.push({
      name,
      kind: 'inference',
      model,
      size,
      spec: spec({ kind: 'inference', inputs: [x], model: await ref(model) }),
    });
  };
  // The repo's executor fixtures: a 4→3→2 dense model and the affine graph model; then larger ones.
  const small = mlp(tf, [4, 3, 2], 'relu');
  seedWeights(tf, small, 11);
  await infer(
    'inference layers dense 4-3-2 (fixture shape)',
    await saveLayers(tf, small),
    encodeTensor('x', 'float32', [8, 4], values(32, 12, 'uniform')),
    { depth: 2 },
  );
  const deep = mlp(tf, [256, 512, 512, 512, 10], 'tanh');
  seedWeights(tf, deep, 21);
  await infer(
    'inference layers mlp 256-512x3-10 tanh',
    await saveLayers(tf, deep),
    encodeTensor('x', 'float32', [32, 256], values(32 * 256, 22, 'uniform')),
    { depth: 4 },
  );
  const wide = mlp(tf, [2048, 1024, 10], 'relu');
  seedWeights(tf, wide, 31);
  await infer(
    'inference layers mlp 2048-1024-10 relu',
    await saveLayers(tf, wide),
    encodeTensor('x', 'float32', [16, 2048], values(16 * 2048, 32, 'positive')),
    { depth: 2 },
  );
  const conv = convNet(tf);
  seedWeights(tf, conv, 41);
  await infer(
    'inference layers conv 28x28 (2 conv + dense)',
    await saveLayers(tf, conv),
    encodeTensor('x', 'float32', [16, 28, 28, 1], values(16 * 784, 42, 'positive')),
    { depth: 3 },
  );
  await infer(
    'inference graph affine 3-2 (fixture shape)',
    graphArtifact(3, 2, 51),
    encodeTensor('x', 'float32', [4, 3], values(12, 52, 'uniform')),
    { depth: 1 },
  );
  await infer(
    'inference graph affine 4096-256',
    graphArtifact(4096, 256, 61),
    encodeTensor('x', 'float32', [8, 4096], values(8 * 4096, 62, 'uniform')),
    { depth: 1 },
  );
  // Training: the fixture's linear model (y = 2x + 1) and an MLP regression, sgd and adam.
  const train = async (
    name: string,
    model: tfTypes.LayersModel,
    seed: number,
    samples: number,
    inDim: number,
    outDim: number,
    params: Record<string, unknown>,
  ): Promise<void> => {
    seedWeights(tf, model, seed);
    const artifact = await saveLayers(tf, model);
    const x = values(samples * inDim, seed + 1, 'uniform');
    const y = inDim === 1 ? x.map((v) => 2 * v + 1) : values(samples * outDim, seed + 2, 'uniform');
    cases.push({
      name,
      kind: 'train',
      model: artifact,
      size: { samples, epochs: params.epochs as number, batchSize: params.batchSize as number },
      spec: spec({
        kind: 'train',
        inputs: [
          encodeTensor('x', 'float32', [samples, inDim], x),
          encodeTensor('y', 'float32', [samples, outDim], y),
        ],
        model: await ref(artifact),
        params,
      }),
    });
  };
  await train('train linear 1-1 sgd (fixture shape)', mlp(tf, [1, 1], 'relu'), 71, 64, 1, 1, {
    epochs: 20,
    batchSize: 16,
    learningRate: 0.1,
    optimizer: 'sgd',
    loss: 'meanSquaredError',
  });
  await train('train mlp 32-64-64-4 sgd', mlp(tf, [32, 64, 64, 4], 'tanh'), 81, 256, 32, 4, {
    epochs: 10,
    batchSize: 32,
    learningRate: 0.05,
    optimizer: 'sgd',
    loss: 'meanSquaredError',
  });
  await train('train mlp 32-64-64-4 adam', mlp(tf, [32, 64, 64, 4], 'relu'), 91, 256, 32, 4, {
    epochs: 10,
    batchSize: 32,
    learningRate: 0.01,
    optimizer: 'adam',
    loss: 'meanSquaredError',
  });
  await train('train mlp 128-256-10 adam 50 epochs', mlp(tf, [128, 256, 10], 'relu'), 101, 128, 128, 10, {
    epochs: 50,
    batchSize: 32,
    learningRate: 0.003,
    optimizer: 'adam',
    loss: 'meanSquaredError',
  });
  return cases;
}

function matmulCases(): Case[] {
  const out: Case[] = [];
  let seed = 1000;
  for (const [m, k, n] of [
    [64, 64, 64],
    [256, 256, 256],
    [128, 1024, 128],
    [64, 4096, 64],
    [16, 16384, 16],
    [4, 65536, 4],
  ]) {
    for (const dist of ['uniform', 'positive', 'constant', 'mixed'] as const)
      out.push(matmulCase(m, k, n, dist, (seed += 7)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Worker thread: one tfjs variant runs every case

function taskOf(c: Pick<Case, 'spec' | 'model'>): WorkerTask {
  const inputs: RawTensor[] = c.spec.inputs.map((t) => decodeTensor(t));
  const s = c.spec;
  if (s.kind === 'matmul') return { kind: 'matmul', inputs, transposeA: false, transposeB: false };
  if (!c.model) throw new Error('model case without model');
  if (s.kind === 'inference') return { kind: 'inference', inputs, model: c.model };
  return { kind: 'train', inputs, model: c.model, params: s.params };
}

async function workerMain(): Promise<void> {
  const { variant, cases } = workerData as { variant: Variant; cases: Pick<Case, 'spec' | 'model'>[] };
  if (variant === 'webgpu') {
    const { tf } = await loadTf('webgpu');
    await runCases(tf, variant, cases);
    // Leave once every readback has settled (a pending Dawn mapAsync would abort the process).
    process.exit(0);
  }
  const tf = await import('@tensorflow/tfjs');
  tf.env().set('PROD', true);
  if (variant === 'cpu') {
    await tf.setBackend('cpu');
  } else {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const require = createRequire(import.meta.url);
    wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
    // Without SIMD the backend loads tfjs-backend-wasm.wasm: scalar code, another summation shape.
    if (variant === 'wasm-nosimd') tf.env().set('WASM_HAS_SIMD_SUPPORT', false);
    if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend failed');
  }
  await tf.ready();
  if (variant === 'wasm-gemm') useWasmMatmulKernel(tf, 'gemm');
  await runCases(tf, variant, cases);
}

async function runCases(tf: Tf, variant: Variant, cases: Pick<Case, 'spec' | 'model'>[]): Promise<void> {
  const simd =
    variant === 'cpu' || variant === 'webgpu' ? undefined : tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const results: TensorWire[][] = [];
  const ms: number[] = [];
  for (const c of cases) {
    const t0 = performance.now();
    const r = await runKernel(tf, taskOf(c));
    ms.push(performance.now() - t0);
    results.push(r.outputs.map((o) => encodeTensor(o.name, o.dtype, o.shape, o.values as Float32Array)));
  }
  parentPort?.postMessage({ results, ms, simd });
}

function runVariant(
  variant: Variant,
  cases: Case[],
): Promise<{ results: TensorWire[][]; ms: number[]; simd?: boolean }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { variant, cases: cases.map((c) => ({ spec: c.spec, model: c.model })) },
    });
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${variant} worker exited with ${code}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Emulated GPU-style float32 summation orders for matmul (JS: a double product of two float32 values
// is exact, so fround(acc + a*b) is a fused multiply-add in float32)

type Emulation = 'f32-seq-fma' | 'f32-seq-nofma' | 'f32-pairwise' | 'f64-exact';
const EMULATIONS: readonly Emulation[] = ['f32-seq-fma', 'f32-seq-nofma', 'f32-pairwise', 'f64-exact'];

function emulate(c: Case, how: Emulation): TensorWire[] {
  const a = decodeTensor(c.spec.inputs[0]).values as Float32Array;
  const b = decodeTensor(c.spec.inputs[1]).values as Float32Array;
  const { m, k, n } = c.size;
  const out = new Float32Array(m * n);
  const fr = Math.fround;
  const col = new Float32Array(k);
  const prod = new Float32Array(k);
  for (let j = 0; j < n; j++) {
    for (let p = 0; p < k; p++) col[p] = b[p * n + j];
    for (let i = 0; i < m; i++) {
      const row = i * k;
      let acc = 0;
      if (how === 'f32-seq-fma') for (let p = 0; p < k; p++) acc = fr(acc + a[row + p] * col[p]);
      else if (how === 'f32-seq-nofma') for (let p = 0; p < k; p++) acc = fr(acc + fr(a[row + p] * col[p]));
      else if (how === 'f64-exact') for (let p = 0; p < k; p++) acc += a[row + p] * col[p];
      else {
        for (let p = 0; p < k; p++) prod[p] = a[row + p] * col[p];
        let len = k;
        while (len > 1) {
          const half = Math.ceil(len / 2);
          for (let p = 0; p + half < len; p++) prod[p] = fr(prod[p] + prod[p + half]);
          len = half;
        }
        acc = prod[0];
      }
      out[i * n + j] = acc;
    }
  }
  return [encodeTensor('c', 'float32', [m, n], out)];
}

// ---------------------------------------------------------------------------------------------

const sig = (v: number): number => (Number.isFinite(v) ? Number(v.toPrecision(3)) : v);

interface Row {
  case: string;
  kind: string;
  size: Record<string, number>;
  observed: { maxRelativeL2: number; maxAbs: number; worstPair: string };
  bound: { relativeL2: number; absolute: number };
  /** bound / observed, the smaller of the relative-L2 and the per-element checks. */
  margin: number;
  /** Observed spread in units of the bound's scale: rel-L2 / (u·g) where g is the size growth. */
  allAgree: boolean;
}

export async function run(): Promise<Record<string, unknown>> {
  const cases = [...matmulCases(), ...(await modelCases())];
  const outputs = new Map<string, TensorWire[][]>();
  const timings: Record<string, number> = {};
  const kindMs: Record<string, Record<string, number>> = {};
  const simd: Record<string, boolean | undefined> = {};
  const TFJS_VARIANTS = await tfjsVariants();
  for (const v of TFJS_VARIANTS) {
    const t0 = performance.now();
    const r = await runVariant(v, cases);
    timings[v] = Math.round(performance.now() - t0);
    // Kernel time by job kind (what a variant's speed means for each kind; the cases are small).
    const byKind: Record<string, number> = {};
    cases.forEach((c, i) => (byKind[c.spec.kind] = (byKind[c.spec.kind] ?? 0) + r.ms[i]));
    kindMs[v] = Object.fromEntries(Object.entries(byKind).map(([kind, ms]) => [kind, Math.round(ms)]));
    simd[v] = r.simd;
    outputs.set(v, r.results);
  }
  const rows: Row[] = [];
  for (const [i, c] of cases.entries()) {
    const sides: [string, TensorWire[]][] = TFJS_VARIANTS.map((v) => [
      v,
      (outputs.get(v) as TensorWire[][])[i],
    ]);
    if (c.kind === 'matmul') for (const e of EMULATIONS) sides.push([e, emulate(c, e)]);
    const context: CompareContext = {
      spec: c.spec,
      modelJson: c.model ? (c.model.modelJson as Record<string, unknown>) : undefined,
    };
    let worst = {
      rel: 0,
      abs: 0,
      margin: Number.POSITIVE_INFINITY,
      pair: 'identical',
      bound: { relativeL2: 0, absolute: 0 },
    };
    let allAgree = true;
    for (let x = 0; x < sides.length; x++) {
      for (let y = x + 1; y < sides.length; y++) {
        const agreement = compareOutputs(sides[x][1], sides[y][1], context);
        if (!agreement.agree) allAgree = false;
        if (agreement.margin < worst.margin || worst.pair === 'identical') {
          worst = {
            rel: agreement.maxRelativeL2,
            abs: agreement.maxAbs,
            margin: agreement.margin,
            pair:
              agreement.margin === Number.POSITIVE_INFINITY
                ? 'identical'
                : `${sides[x][0]} vs ${sides[y][0]}`,
            bound: agreement.bound,
          };
        }
      }
    }
    rows.push({
      case: c.name,
      kind: c.kind,
      size: c.size,
      observed: { maxRelativeL2: sig(worst.rel), maxAbs: sig(worst.abs), worstPair: worst.pair },
      bound: { relativeL2: sig(worst.bound.relativeL2), absolute: sig(worst.bound.absolute) },
      margin: sig(worst.margin),
      allAgree,
    });
  }
  const byKind: Record<string, { cases: number; minMargin: number; allAgree: boolean }> = {};
  for (const r of rows) {
    const k = (byKind[r.kind] ??= { cases: 0, minMargin: Number.POSITIVE_INFINITY, allAgree: true });
    k.cases++;
    k.minMargin = Math.min(k.minMargin, r.margin);
    k.allAgree &&= r.allAgree;
  }
  return {
    method:
      'largest pairwise spread between honest backends per case; margin = bound / observed (≥ 1 required; the bounds aim at SAFETY_FACTOR)',
    unitRoundoff: FLOAT32_UNIT_ROUNDOFF,
    safetyFactor: SAFETY_FACTOR,
    variants: { tfjs: TFJS_VARIANTS, simd, matmulEmulations: EMULATIONS },
    modelFlops: Object.fromEntries(
      cases
        .filter((c) => c.model)
        .map((c) => [c.name, Number(estimateModelFlops(c.model?.modelJson, c.model?.format))]),
    ),
    timingsMs: timings,
    kernelMsByKind: kindMs,
    summary: byKind,
    cases: rows,
  };
}

if (!isMainThread) {
  void workerMain();
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run()
    .then((figures) => console.log(JSON.stringify(figures, null, 2)))
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
