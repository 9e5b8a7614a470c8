// Small tfjs models for verification tests, saved the way `model.save` lays them out (model.json +
// one weights buffer), and job specs that use them.
import * as tf from '@tensorflow/tfjs';
import type { ModelArtifact } from '@gpumesh/compute';
import { hashArtifact } from '@gpumesh/p2p';
import { encodeTensor, parseJobSpec, type JobSpec } from '@gpumesh/protocol';
import { seeded } from '../../libs/verification/src/test-fixtures.js';

export interface SavedModel {
  format: 'layers';
  modelJson: Record<string, unknown>;
  weights: Uint8Array;
  hash: string;
}

export async function saveLayers(model: tf.LayersModel): Promise<SavedModel> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!saved?.weightSpecs || !saved.weightData) throw new Error('nothing saved');
  const parts = Array.isArray(saved.weightData) ? saved.weightData : [saved.weightData];
  const weights = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    weights.set(new Uint8Array(p), o);
    o += p.byteLength;
  }
  const modelJson = {
    format: 'layers-model',
    generatedBy: 'gpumesh-test',
    modelTopology: saved.modelTopology as object,
    weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: saved.weightSpecs }],
  };
  return { format: 'layers', modelJson, weights, hash: hashArtifact(modelJson, weights) };
}

export function asArtifact(m: SavedModel): ModelArtifact {
  return { format: m.format, modelJson: m.modelJson, weights: m.weights };
}

/** Deterministic weights in [-0.5, 0.5) for every variable of `model`. */
function seedWeights(model: tf.LayersModel, seed: number): void {
  model.setWeights(
    model.getWeights().map((w, i) =>
      tf.tensor(
        seeded(w.size, seed + i).map((v) => v / 2),
        w.shape,
      ),
    ),
  );
}

/** An MLP `inputs → hidden… → outputs` (relu between, softmax at the end when `softmax`). */
export function mlp(
  inputs: number,
  hidden: number[],
  outputs: number,
  seed = 11,
  softmax = false,
): tf.LayersModel {
  const model = tf.sequential();
  hidden.forEach((units, i) =>
    model.add(
      tf.layers.dense({
        units,
        activation: 'relu',
        name: `h${i}`,
        ...(i === 0 ? { inputShape: [inputs] } : {}),
      }),
    ),
  );
  model.add(tf.layers.dense({ units: outputs, name: 'out', ...(softmax ? { activation: 'softmax' } : {}) }));
  seedWeights(model, seed);
  return model;
}

/** The request body of an inference job of `model` on `batch` rows of seeded inputs. */
export function inferenceBody(
  model: SavedModel,
  batch: number,
  features: number,
  extra: Record<string, unknown> = {},
  seed = 3,
): Record<string, unknown> {
  return {
    version: 1,
    kind: 'inference',
    inputs: [encodeTensor('x', 'float32', [batch, features], seeded(batch * features, seed))],
    model: { hash: model.hash, format: 'layers' },
    maxPricePerUnit: '5',
    ...extra,
  };
}

/** The request body of a train job (mean squared error, sgd, no shuffling) of `model`. */
export function trainBody(
  model: SavedModel,
  rows: number,
  features: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const x = seeded(rows * features, 5);
  const y = Float32Array.from({ length: rows }, (_, i) => x[i * features] * 0.5 - x[i * features + 1] + 0.1);
  return {
    version: 1,
    kind: 'train',
    inputs: [encodeTensor('x', 'float32', [rows, features], x), encodeTensor('y', 'float32', [rows, 1], y)],
    model: { hash: model.hash, format: 'layers' },
    params: { epochs: 5, batchSize: 8, learningRate: 0.05, optimizer: 'sgd', loss: 'meanSquaredError' },
    maxPricePerUnit: '5',
    ...extra,
  };
}

export function specOf(body: Record<string, unknown>): JobSpec {
  return parseJobSpec(body);
}
