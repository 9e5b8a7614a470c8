// The webgpu backend end to end inside the executor: a worker thread opens a Dawn adapter (here Mesa's
// llvmpipe through Dawn's OpenGL ES backend, a real WebGPU implementation running on the CPU), runs a
// matmul, an inference and a training job, and each result must agree with the cpu backend's reference
// within the verification bounds the coordinator applies. Sizes are small: llvmpipe does ~6 GFLOP/s.
// Without an adapter the test fails in CI and skips with a message on a developer's machine only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  artifactHash,
  computeReference,
  seededValues,
  type ModelArtifact,
  type WebgpuAdapterInfo,
} from '@gpumesh/compute';
import type { JobSpec, TensorWire } from '@gpumesh/protocol';
import { compareOutputs } from '@gpumesh/verification';
import {
  advertisedGpus,
  createExecutorPool,
  type ExecutorPool,
} from '../../apps/provider-agent/src/runtime/index.js';
import {
  JOB_ID,
  denseModel,
  f32,
  layersArtifact,
  linearModel,
  matmulSpec,
  spec,
} from '../../apps/provider-agent/src/runtime/executor/test-fixtures.js';
import { WebgpuGate } from '../helpers/webgpu.js';

const gate = new WebgpuGate('webgpu executor test');
let adapter: WebgpuAdapterInfo | undefined;
let pool: ExecutorPool | undefined;

async function agreeWithReference(
  jobSpec: JobSpec,
  outputs: readonly TensorWire[],
  model?: ModelArtifact,
): Promise<number> {
  const reference = await computeReference(jobSpec, {
    backend: 'cpu',
    artifacts: model ? [model] : [],
  });
  const agreement = compareOutputs(outputs, reference, { spec: jobSpec, modelJson: model?.modelJson });
  expect(agreement.agree, agreement.reason).toBe(true);
  expect(agreement.margin).toBeGreaterThanOrEqual(1);
  return agreement.margin;
}

function requirePool(ctx: { skip: (note?: string) => void }): ExecutorPool {
  return gate.need(ctx, pool);
}

describe('executor on the webgpu backend (software adapter in CI)', () => {
  beforeAll(async () => {
    adapter = await gate.open();
    if (adapter === undefined) return;
    pool = await createExecutorPool({
      slots: 1,
      backend: 'webgpu',
      memoryLimitMb: 256,
      defaultTimeoutMs: 30_000,
    });
  }, 60_000);

  afterAll(async () => {
    await pool?.close();
  });

  it('names the adapter and classifies a software one', (ctx) => {
    const p = requirePool(ctx);
    expect(p.backend.name).toBe('webgpu');
    expect(p.backend.proven).toBe(true);
    expect(p.backend.adapter?.device ?? '').not.toBe('');
    if (/llvmpipe|swiftshader|lavapipe/i.test(`${adapter?.device} ${adapter?.description}`)) {
      expect(p.backend.adapter?.software).toBe(true);
      expect(p.adapters).toEqual([]); // a software adapter: one executor, on Dawn's own choice
      // ...and the advert lists no GPU: the provider is CPU-class.
      expect(p.webgpuAdapters).toEqual([p.backend.adapter]);
      const gpus = advertisedGpus({
        backend: 'webgpu',
        cuda: { gpus: [] },
        webgpuAdapters: p.webgpuAdapters,
        listed: [],
        hostMemoryBytes: 2 ** 34,
      });
      expect(gpus).toEqual([]);
    }
    expect(p.backend.adapter?.maxBufferBytes ?? 0).toBeGreaterThan(0);
  });

  it('opens each executor on its adapter by name; a name Dawn does not have fails only that executor', async (ctx) => {
    const p = requirePool(ctx);
    const name = (p.backend.adapter?.device ?? '').split(/[^A-Za-z0-9]/)[0];
    const two = await createExecutorPool({
      slots: 2,
      backend: p.backend,
      adapters: [name, '__gpumesh_no_such_gpu__'],
      memoryLimitMb: 256,
      defaultTimeoutMs: 30_000,
    });
    try {
      expect(two.adapters).toEqual([name, '__gpumesh_no_such_gpu__']);
      expect(two.stats()).toMatchObject({ slots: 2, idle: 1, failed: 1 });
      const small = matmulSpec(f32('a', [1, 2], [1, 2]), f32('b', [2, 1], [3, 4]));
      const result = await two.run({ jobId: JOB_ID, attempt: 6, spec: small });
      await agreeWithReference(small, result.outputs);
    } finally {
      await two.close();
    }
  });

  it('runs a matmul that agrees with the reference', async (ctx) => {
    const p = requirePool(ctx);
    const [m, k, n] = [48, 96, 40];
    const jobSpec = matmulSpec(
      f32('a', [m, k], seededValues(m * k, 3)),
      f32('b', [k, n], seededValues(k * n, 4)),
    );
    const result = await p.run({ jobId: JOB_ID, attempt: 1, spec: jobSpec });
    expect(result.outputs.map((o) => o.shape)).toEqual([[m, n]]);
    await agreeWithReference(jobSpec, result.outputs);
  });

  it('runs inference of a LayersModel that agrees with the reference', async (ctx) => {
    const p = requirePool(ctx);
    const model = await layersArtifact(denseModel());
    const jobSpec = spec({
      kind: 'inference',
      inputs: [f32('features', [6, 4], seededValues(24, 9))],
      model: { hash: await artifactHash(model), format: 'layers' },
    });
    const result = await p.run({ jobId: JOB_ID, attempt: 2, spec: jobSpec, model });
    expect(result.outputs.map((o) => [o.name, o.shape])).toEqual([['out', [6, 2]]]);
    await agreeWithReference(jobSpec, result.outputs, model);
  });

  it('trains a LayersModel whose weights agree with the reference and leaks no tensors', async (ctx) => {
    const p = requirePool(ctx);
    const model = await layersArtifact(linearModel());
    const x = Array.from({ length: 16 }, (_, i) => i / 16);
    const jobSpec = spec({
      kind: 'train',
      inputs: [
        f32('x', [16, 1], x),
        f32(
          'y',
          [16, 1],
          x.map((v) => 2 * v + 1),
        ),
      ],
      model: { hash: await artifactHash(model), format: 'layers' },
      params: { epochs: 5, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', loss: 'meanSquaredError' },
    });
    const before = await p.workerMemory(0);
    const result = await p.run({ jobId: JOB_ID, attempt: 3, spec: jobSpec, model });
    expect(result.lossHistory).toHaveLength(5);
    const loss = result.lossHistory ?? [];
    expect(loss[4]).toBeLessThan(loss[0]);
    await agreeWithReference(jobSpec, result.outputs, model);
    const after = await p.workerMemory(0);
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.gpuBufferBytes).toBeGreaterThan(0);
  });

  it('cancels a running job and keeps serving on a fresh worker', async (ctx) => {
    const p = requirePool(ctx);
    const model = await layersArtifact(linearModel());
    const x = Array.from({ length: 64 }, (_, i) => i / 64);
    const long = spec({
      kind: 'train',
      inputs: [f32('x', [64, 1], x), f32('y', [64, 1], x)],
      model: { hash: await artifactHash(model), format: 'layers' },
      params: { epochs: 1000, batchSize: 8, learningRate: 0.01, optimizer: 'sgd', loss: 'meanSquaredError' },
    });
    const controller = new AbortController();
    const running = p.run(
      { jobId: JOB_ID, attempt: 4, spec: long, model },
      // Cancelled once it is surely running: at its first epoch.
      { signal: controller.signal, onProgress: () => controller.abort() },
    );
    await expect(running).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(p.stats().workersReplaced).toBe(1);
    const small = matmulSpec(f32('a', [1, 2], [1, 2]), f32('b', [2, 1], [3, 4]));
    const result = await p.run({ jobId: JOB_ID, attempt: 5, spec: small });
    await agreeWithReference(small, result.outputs);
  });
});
