// No tensor growth on the webgpu backend: one executor worker on a real Dawn adapter (Mesa's llvmpipe in
// CI) runs a long mix of small matmul, inference and training jobs, and after a warm-up (every kernel
// compiled, every buffer size seen once) its tfjs memory stays flat: the same number of tensors, data
// buffers and bytes, and no more bytes in GPU buffers (tfjs's pool keeps freed buffers for reuse, so a
// leak there shows as growth). 1,000 jobs (issue 22) took 19 s on llvmpipe here (18 ms a job, load
// 11 on 2 cores); WEBGPU_MEMORY_JOBS changes the count. Without an adapter the test fails in CI and
// skips with a message elsewhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactHash, seededValues, type ModelArtifact } from '@gpumesh/compute';
import type { JobSpec } from '@gpumesh/protocol';
import {
  createExecutorPool,
  type ExecutorPool,
  type ExecutorTask,
  type WorkerMemory,
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

const JOBS = Number(process.env.WEBGPU_MEMORY_JOBS ?? 1000);
const WARMUP_JOBS = 30;

let pool: ExecutorPool | undefined;
const gate = new WebgpuGate('webgpu memory test');

interface Mix {
  tasks: ((i: number) => ExecutorTask)[];
}

async function jobMix(): Promise<Mix> {
  const dense: ModelArtifact = await layersArtifact(denseModel());
  const linear: ModelArtifact = await layersArtifact(linearModel());
  const [m, k, n] = [32, 64, 24];
  const matmul = (i: number): JobSpec =>
    matmulSpec(
      f32('a', [m, k], seededValues(m * k, 100 + (i % 7))),
      f32('b', [k, n], seededValues(k * n, 200 + (i % 5))),
      { transposeB: false },
    );
  const matmulT = (i: number): JobSpec =>
    matmulSpec(
      f32('a', [k, m], seededValues(m * k, 300 + (i % 3))),
      f32('b', [n, k], seededValues(k * n, 400 + (i % 3))),
      { transposeA: true, transposeB: true },
    );
  const inference = spec({
    kind: 'inference',
    inputs: [f32('features', [6, 4], seededValues(24, 9))],
    model: { hash: await artifactHash(dense), format: 'layers' },
  });
  const x = Array.from({ length: 16 }, (_, i) => i / 16);
  const train = spec({
    kind: 'train',
    inputs: [
      f32('x', [16, 1], x),
      f32(
        'y',
        [16, 1],
        x.map((v) => 2 * v + 1),
      ),
    ],
    model: { hash: await artifactHash(linear), format: 'layers' },
    params: { epochs: 2, batchSize: 8, learningRate: 0.1, optimizer: 'adam', loss: 'meanSquaredError' },
  });
  return {
    tasks: [
      (i) => ({ jobId: JOB_ID, attempt: i + 1, spec: matmul(i) }),
      (i) => ({ jobId: JOB_ID, attempt: i + 1, spec: matmulT(i) }),
      (i) => ({ jobId: JOB_ID, attempt: i + 1, spec: inference, model: dense }),
      (i) => ({ jobId: JOB_ID, attempt: i + 1, spec: train, model: linear }),
    ],
  };
}

describe('webgpu executor memory over many jobs', () => {
  beforeAll(async () => {
    if ((await gate.open()) === undefined) return;
    pool = await createExecutorPool({
      slots: 1,
      backend: 'webgpu',
      memoryLimitMb: 256,
      defaultTimeoutMs: 60_000,
    });
  }, 60_000);

  afterAll(async () => {
    await pool?.close();
  });

  it(`runs ${JOBS} matmul, inference and training jobs without growing tensors or GPU buffers`, async (ctx) => {
    const p = gate.need(ctx, pool);
    const mix = await jobMix();
    const run = async (i: number): Promise<void> => {
      const task = mix.tasks[i % mix.tasks.length](i);
      const result = await p.run(task);
      expect(result.backend).toBe('webgpu');
    };
    for (let i = 0; i < WARMUP_JOBS; i++) await run(i);
    const warm: WorkerMemory = await p.workerMemory(0);
    const samples: WorkerMemory[] = [];
    const started = performance.now();
    for (let i = WARMUP_JOBS; i < JOBS; i++) {
      await run(i);
      if ((i + 1) % 100 === 0) samples.push(await p.workerMemory(0));
    }
    const end = await p.workerMemory(0);
    const ms = performance.now() - started;
    console.info(
      JSON.stringify({
        jobs: JOBS,
        msPerJob: Math.round((ms / (JOBS - WARMUP_JOBS)) * 10) / 10,
        warm,
        end,
        gpuBufferBytesSamples: samples.map((s) => s.gpuBufferBytes),
      }),
    );
    expect(p.stats()).toMatchObject({ completed: JOBS, errored: 0, workersReplaced: 0 });
    for (const m of [...samples, end]) {
      expect(m.numTensors).toBe(warm.numTensors);
      expect(m.numDataBuffers).toBe(warm.numDataBuffers);
      expect(m.numBytes).toBe(warm.numBytes);
      expect(m.gpuBufferBytes ?? 0).toBeLessThanOrEqual(warm.gpuBufferBytes ?? 0);
    }
    expect(warm.gpuBufferBytes ?? 0).toBeGreaterThan(0);
  }, 600_000);
});
