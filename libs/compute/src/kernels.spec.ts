import { jobErrorFault } from '@gpumesh/protocol';
import { describe, expect, it } from 'vitest';

import type * as tfTypes from '@tensorflow/tfjs';

import { TaskError, executionError, int32Matmul, runKernel } from './kernels.js';
import type { ModelArtifact, RawTensor } from './task.js';
import { loadTf } from './tf-loader.js';
import { requestWebgpuAdapter } from './webgpu.js';
import type { Tf } from './tf.js';

describe('executionError', () => {
  it('classes what no backend can run as the input’s fault', () => {
    const shape = executionError(
      new Error('Error when checking : expected dense_input to have shape [null,4]'),
    );
    expect(shape.code).toBe('BAD_INPUT');
    const op = executionError(new Error('Tensorflow Op is not supported: FancyOp'));
    expect(op.code).toBe('UNSUPPORTED_OP');
    for (const err of [shape, op]) expect(jobErrorFault(err.code)).toBe('input');
  });

  it('classes a kernel its backend lacks, or any other failure, as the provider’s', () => {
    // tfjs-backend-wasm's answer to an int32 matmul: another backend runs it.
    const wasm = executionError(new Error('BatchMatMul for non non-float32 tensors not yet supported.'));
    expect(wasm.code).toBe('EXECUTION_FAILED');
    expect(jobErrorFault(wasm.code)).toBe('provider');
    expect(jobErrorFault(executionError(new Error('out of memory')).code)).toBe('provider');
  });

  it('keeps a TaskError’s own code', () => {
    const err = new TaskError('MODEL_LOAD_FAILED', 'cannot load layers model: Unknown layer: Foo');
    expect(executionError(err)).toBe(err);
    expect(jobErrorFault(err.code)).toBe('input');
  });
});

/** A one-layer dense model (4 → 2) saved as an agent receives it. */
async function denseArtifact(tf: Tf): Promise<ModelArtifact> {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [4], name: 'out' })] });
  let saved: tfTypes.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  model.dispose();
  if (!saved?.weightSpecs || !(saved.weightData instanceof ArrayBuffer)) throw new Error('nothing saved');
  return {
    format: 'layers',
    modelJson: {
      format: 'layers-model',
      modelTopology: saved.modelTopology as object,
      weightsManifest: [{ paths: ['w.bin'], weights: saved.weightSpecs }],
    },
    weights: new Uint8Array(saved.weightData),
  };
}

const floats = (name: string, shape: number[]): RawTensor => ({
  name,
  dtype: 'float32',
  shape,
  values: new Float32Array(shape.reduce((n, d) => n * d, 1)),
});

async function codeOf(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (err) {
    return (err as TaskError).code;
  }
  throw new Error('expected the task to fail');
}

describe('the agent’s kernels on jobs no provider can run (issue 21)', () => {
  it('fails an inference input of the wrong shape as BAD_INPUT, and a model with an unknown layer as MODEL_LOAD_FAILED', async () => {
    const { tf } = await loadTf('cpu');
    const model = await denseArtifact(tf);
    const wrongShape = await codeOf(
      runKernel(tf, { kind: 'inference', inputs: [floats('x', [1, 3])], model }),
    );
    expect(wrongShape).toBe('BAD_INPUT');
    const json = structuredClone(model.modelJson) as {
      modelTopology: { config: { layers: { class_name: string }[] } };
    };
    json.modelTopology.config.layers[0].class_name = 'NoSuchLayer';
    const unknown = await codeOf(
      runKernel(tf, {
        kind: 'inference',
        inputs: [floats('x', [1, 4])],
        model: { ...model, modelJson: json },
      }),
    );
    expect(unknown).toBe('MODEL_LOAD_FAILED');
    for (const code of [wrongShape, unknown]) expect(jobErrorFault(code)).toBe('input');
  });

  it('runs an int32 matmul exactly (modulo 2³²) and identically on cpu, wasm and webgpu', async () => {
    // 2²⁴ + 1 is not a float32, 70000 · 100000 overflows int32, 123456789 · 100000 passes 2⁵³ in a sum.
    const a: RawTensor = {
      name: 'a',
      dtype: 'int32',
      shape: [3, 2],
      values: new Int32Array([16777217, 1, 70000, 0, 123456789, -3]),
    };
    const b: RawTensor = {
      name: 'b',
      dtype: 'int32',
      shape: [2, 2],
      values: new Int32Array([1, 100000, 1, 5]),
    };
    const exact = (transposeB: boolean): number[] => {
      const out: number[] = [];
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 2; j++) {
          let sum = 0n;
          for (let p = 0; p < 2; p++) {
            const bv = transposeB ? b.values[j * 2 + p] : b.values[p * 2 + j];
            sum += BigInt(a.values[i * 2 + p]) * BigInt(bv);
          }
          out.push(Number(BigInt.asIntN(32, sum)));
        }
      }
      return out;
    };
    expect(exact(false)).toEqual([16777218, -1610512731, 70000, -1589934592, 123456786, 1942891281]);
    const backends: ('cpu' | 'wasm' | 'webgpu')[] = ['cpu', 'wasm'];
    try {
      await requestWebgpuAdapter();
      backends.push('webgpu');
    } catch (err) {
      if (process.env.CI) throw err; // CI has Mesa's llvmpipe
    }
    for (const backend of backends) {
      const { tf } = await loadTf(backend);
      // tfjs is shared by the specs of a worker: what the kernel leaves is counted from here.
      const tensorsBefore = tf.memory().numTensors;
      for (const transposeB of [false, true]) {
        const result = await runKernel(tf, { kind: 'matmul', inputs: [a, b], transposeA: false, transposeB });
        expect(result.outputs[0]).toMatchObject({ name: 'c', dtype: 'int32', shape: [3, 2] });
        expect(Array.from(result.outputs[0].values), `${backend} transposeB=${transposeB}`).toEqual(
          exact(transposeB),
        );
      }
      const aT = int32Matmul(
        { ...a, shape: [2, 3], values: new Int32Array([16777217, 70000, 123456789, 1, 0, -3]) },
        b,
        { transposeA: true },
      );
      expect(Array.from(aT.values)).toEqual(exact(false));
      expect(tf.memory().numTensors).toBe(tensorsBefore);
    }
  });
});
