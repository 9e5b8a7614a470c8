// Test helpers (excluded from the build): tiny model artifacts and job specs.
import * as tf from '@tensorflow/tfjs';

import type { ModelArtifact } from '@gpumesh/compute';
import {
  encodeTensor,
  parseJobSpec,
  type JobSpec,
  type JobSpecInput,
  type TensorWire,
} from '@gpumesh/protocol';

export const JOB_ID = '3b0f1d2e-8c4a-4f6b-9e21-7a5c3d9b1f00';

export function f32(name: string, shape: number[], values: number[] | Float32Array): TensorWire {
  return encodeTensor(name, 'float32', shape, Float32Array.from(values));
}

type SpecInput = JobSpecInput extends infer T
  ? T extends unknown
    ? Omit<T, 'version' | 'maxPricePerUnit'>
    : never
  : never;

export function spec(input: SpecInput): JobSpec {
  return parseJobSpec({ version: 1, maxPricePerUnit: '1', ...input } as JobSpecInput);
}

export function matmulSpec(
  a: TensorWire,
  b: TensorWire,
  params: { transposeA?: boolean; transposeB?: boolean } = {},
): JobSpec {
  return spec({ kind: 'matmul', inputs: [a, b], params });
}

function concat(data: tf.io.WeightData): Uint8Array {
  const parts = Array.isArray(data) ? data : [data];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p), o);
    o += p.byteLength;
  }
  return out;
}

/** Saves a LayersModel to memory as model.json + weights, the way tfjs-converter/`model.save` lays them out. */
export async function layersArtifact(model: tf.LayersModel): Promise<ModelArtifact> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!saved?.weightSpecs || !saved.weightData) throw new Error('nothing saved');
  return {
    format: 'layers',
    modelJson: {
      format: 'layers-model',
      generatedBy: 'test',
      modelTopology: saved.modelTopology as object,
      weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: saved.weightSpecs }],
    },
    weights: concat(saved.weightData),
  };
}

/** A 4→3 (relu) →2 dense model with deterministic weights. */
export function denseModel(): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.dense({ inputShape: [4], units: 3, activation: 'relu', name: 'hidden' }));
  model.add(tf.layers.dense({ units: 2, name: 'out' }));
  model.setWeights([
    tf.tensor2d([0.1, -0.2, 0.3, 0.4, 0.5, -0.6, -0.7, 0.8, 0.9, 0.1, 0.2, -0.3], [4, 3]),
    tf.tensor1d([0.01, 0.02, 0.03]),
    tf.tensor2d([0.5, -0.5, 0.25, 0.75, -1, 1], [3, 2]),
    tf.tensor1d([0.1, -0.1]),
  ]);
  return model;
}

/** A linear 1→1 model (w = 0, b = 0) to be trained towards y = 2x + 1. */
export function linearModel(): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.dense({ inputShape: [1], units: 1, name: 'lin', kernelInitializer: 'zeros' }));
  return model;
}

/**
 * A hand-written graph model (the format tfjs-converter emits for a SavedModel): y = x·W + b with
 * W 3×2 and b 2, input "x", output "Identity".
 */
export function affineGraphArtifact(w: number[], b: number[]): ModelArtifact {
  const f = { type: 'DT_FLOAT' };
  const modelJson = {
    format: 'graph-model',
    generatedBy: '2.9.1',
    convertedBy: 'hand-written',
    modelTopology: {
      node: [
        {
          name: 'x',
          op: 'Placeholder',
          attr: { dtype: f, shape: { shape: { dim: [{ size: '-1' }, { size: '3' }] } } },
        },
        {
          name: 'W',
          op: 'Const',
          attr: {
            dtype: f,
            value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '3' }, { size: '2' }] } } },
          },
        },
        {
          name: 'b',
          op: 'Const',
          attr: { dtype: f, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '2' }] } } } },
        },
        {
          name: 'MatMul',
          op: 'MatMul',
          input: ['x', 'W'],
          attr: { T: f, transpose_a: { b: false }, transpose_b: { b: false } },
        },
        { name: 'Add', op: 'AddV2', input: ['MatMul', 'b'], attr: { T: f } },
        { name: 'Identity', op: 'Identity', input: ['Add'], attr: { T: f } },
      ],
      library: {},
      versions: { producer: 1119 },
    },
    weightsManifest: [
      {
        paths: ['group1-shard1of1.bin'],
        weights: [
          { name: 'W', shape: [3, 2], dtype: 'float32' },
          { name: 'b', shape: [2], dtype: 'float32' },
        ],
      },
    ],
  };
  const weights = new Uint8Array(Float32Array.from([...w, ...b]).buffer);
  return { format: 'graph', modelJson, weights };
}
