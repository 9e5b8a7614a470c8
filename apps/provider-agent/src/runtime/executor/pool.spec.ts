import { createHash } from 'node:crypto';

import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { decodeTensor, type TensorRef, type TensorWire } from '@gpumesh/protocol';

import { maxRelativeError, referenceMatmul, seededValues } from '../matmul-check.js';
import { createExecutorPool, ExecutorError, type ExecutorPool, type TaskProgress } from './pool.js';
import {
  JOB_ID,
  affineGraphArtifact,
  denseModel,
  f32,
  layersArtifact,
  linearModel,
  matmulSpec,
  spec,
} from './test-fixtures.js';

function values(t: TensorWire): Float32Array {
  return decodeTensor(t).values as Float32Array;
}

async function rejection(p: Promise<unknown>): Promise<ExecutorError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ExecutorError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

/** x = 0..n-1 scaled, y = 2x + 1: a train job that takes a while with many epochs. */
function trainSpec(samples: number, epochs: number): ReturnType<typeof spec> {
  const x = Array.from({ length: samples }, (_, i) => i / samples);
  return spec({
    kind: 'train',
    inputs: [
      f32('x', [samples, 1], x),
      f32(
        'y',
        [samples, 1],
        x.map((v) => 2 * v + 1),
      ),
    ],
    model: { hash: 'a'.repeat(64), format: 'layers' },
    params: { epochs, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', loss: 'meanSquaredError' },
  });
}

describe('executor pool (wasm, 2 worker threads)', () => {
  let pool: ExecutorPool;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    pool = await createExecutorPool({
      slots: 2,
      backend: 'wasm',
      memoryLimitMb: 256,
      defaultTimeoutMs: 20_000,
    });
  }, 30_000);
  afterAll(async () => {
    await pool?.close();
  });

  it('resolves and proves the wasm backend, SIMD on, threads off', () => {
    expect(pool.backend.name).toBe('wasm');
    expect(pool.backend.proven).toBe(true);
    expect(pool.backend.simd).toBe(true);
    expect(pool.backend.threads).toBe(false);
    expect(pool.backend.gflops).toBeGreaterThan(0);
    expect(pool.stats()).toMatchObject({ slots: 2, idle: 2, failed: 0 });
  });

  it('runs matmul (plain and transposed) against a plain-JS reference', async () => {
    const [m, k, n] = [33, 47, 29];
    const a = seededValues(m * k, 5);
    const b = seededValues(k * n, 6);
    const expected = referenceMatmul(a, b, m, k, n);
    const plain = await pool.run({
      jobId: JOB_ID,
      attempt: 1,
      spec: matmulSpec(f32('a', [m, k], a), f32('b', [k, n], b)),
    });
    expect(plain.backend).toBe('wasm');
    expect(plain.outputs).toHaveLength(1);
    expect(plain.outputs[0]).toMatchObject({ name: 'c', dtype: 'float32', shape: [m, n] });
    expect(maxRelativeError(values(plain.outputs[0]), expected)).toBeLessThan(1e-5);
    expect(plain.timings.totalMs).toBeGreaterThanOrEqual(plain.timings.runMs);

    // aᵀ given as k×m and bᵀ given as n×k
    const at = new Float32Array(k * m);
    const bt = new Float32Array(n * k);
    for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) at[p * m + i] = a[i * k + p];
    for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) bt[j * k + p] = b[p * n + j];
    const transposed = await pool.run({
      jobId: JOB_ID,
      attempt: 2,
      spec: matmulSpec(f32('a', [k, m], at), f32('b', [n, k], bt), { transposeA: true, transposeB: true }),
    });
    expect(maxRelativeError(values(transposed.outputs[0]), expected)).toBeLessThan(1e-5);
  });

  it('runs large tasks through reused shared input and output memory without mixing them up', async () => {
    // Two 192² float32 inputs = 288 KiB (over ARENA_MIN_BYTES) decoded into arenas reused from task to
    // task, and a 144 KiB output written into the worker's reused output memory.
    const [m, k, n] = [192, 192, 192];
    const tasks = Array.from({ length: 6 }, (_, i) => {
      const a = seededValues(m * k, 10 + i);
      const b = seededValues(k * n, 20 + i);
      return { a, b, spec: matmulSpec(f32('a', [m, k], a), f32('b', [k, n], b)) };
    });
    // The first wave runs at once (two workers, the rest queued); a second wave reuses the arenas.
    for (const wave of [tasks, [...tasks].reverse()]) {
      const results = await Promise.all(
        wave.map((t, i) => pool.run({ jobId: JOB_ID, attempt: i + 1, spec: t.spec })),
      );
      results.forEach((r, i) => {
        const expected = referenceMatmul(wave[i].a, wave[i].b, m, k, n);
        expect(maxRelativeError(values(r.outputs[0]), expected)).toBeLessThan(1e-5);
      });
    }
  });

  it('runs inputs by ref from their fetched bytes (fresh memory and arena), and refuses missing ones', async () => {
    const asRef = (name: string, shape: number[], v: Float32Array): TensorRef => {
      const sha256 = createHash('sha256').update(v).digest('hex');
      return { name, ref: `sha256:${sha256}`, dtype: 'float32', shape, sha256 };
    };
    // 7×9 (fresh memory) and 192² (over ARENA_MIN_BYTES: copied into a shared arena)
    for (const [m, k, n] of [
      [7, 9, 5],
      [192, 192, 192],
    ]) {
      const a = seededValues(m * k, 31);
      const b = seededValues(k * n, 32);
      const refSpec = spec({ kind: 'matmul', inputs: [asRef('a', [m, k], a), f32('b', [k, n], b)] });
      const bytesOfA = new Uint8Array(a.buffer.slice(0));
      const result = await pool.run({
        jobId: JOB_ID,
        attempt: 1,
        spec: refSpec,
        refInputs: new Map([['a', bytesOfA]]),
      });
      expect(maxRelativeError(values(result.outputs[0]), referenceMatmul(a, b, m, k, n))).toBeLessThan(1e-5);
      const missing = await rejection(pool.run({ jobId: JOB_ID, attempt: 2, spec: refSpec }));
      expect(missing.code).toBe('BAD_INPUT');
      expect(missing.message).toContain('input a is by ref');
    }
  });

  it('rejects a shape mismatch clearly, without hurting the pool', async () => {
    // The spec schema already refuses mismatched shapes; a caller bypassing it still gets BAD_INPUT.
    const good = matmulSpec(f32('a', [2, 3], [1, 2, 3, 4, 5, 6]), f32('b', [3, 1], [1, 1, 1]));
    const bad = { ...good, inputs: [good.inputs[0], f32('b', [4, 1], [1, 1, 1, 1])] };
    const err = await rejection(pool.run({ jobId: JOB_ID, attempt: 1, spec: bad }));
    expect(err.code).toBe('BAD_INPUT');
    expect(err.message).toMatch(/inner dimensions 3 and 4/);
    const ok = await pool.run({ jobId: JOB_ID, attempt: 2, spec: good });
    expect(Array.from(values(ok.outputs[0]))).toEqual([6, 15]);
  });

  it('refuses a matmul that would exceed the memory limit before running it', async () => {
    const a = f32('a', [2048, 1], new Float32Array(2048));
    const b = f32('b', [1, 16384], new Float32Array(16384));
    const err = await rejection(pool.run({ jobId: JOB_ID, attempt: 1, spec: matmulSpec(a, b) }));
    expect(err.code).toBe('MEMORY_LIMIT');
  });

  it('runs 1,000 small matmuls without growing tf.memory().numTensors in the workers', async () => {
    const before = await Promise.all([pool.workerMemory(0), pool.workerMemory(1)]);
    const a = f32('a', [4, 4], seededValues(16, 1));
    const b = f32('b', [4, 4], seededValues(16, 2));
    const jobs = Array.from({ length: 1000 }, (_, i) =>
      pool.run({ jobId: JOB_ID, attempt: i + 1, spec: matmulSpec(a, b) }),
    );
    const results = await Promise.all(jobs);
    expect(new Set(results.map((r) => r.outputs[0].data)).size).toBe(1);
    const after = await Promise.all([pool.workerMemory(0), pool.workerMemory(1)]);
    expect(after.map((m) => m.numTensors)).toEqual(before.map((m) => m.numTensors));
    expect(after.map((m) => m.numBytes)).toEqual(before.map((m) => m.numBytes));
  }, 30_000);

  it('runs inference of a LayersModel loaded from memory, matching tfjs in this thread', async () => {
    const model = denseModel();
    const artifact = await layersArtifact(model);
    const xs = seededValues(5 * 4, 9);
    const expected = tf.tidy(() => (model.predict(tf.tensor2d(xs, [5, 4])) as tf.Tensor).dataSync());
    model.dispose();
    const before = await pool.workerMemory(0);
    const result = await pool.run({
      jobId: JOB_ID,
      attempt: 1,
      spec: spec({
        kind: 'inference',
        inputs: [f32('features', [5, 4], xs)],
        model: { hash: 'b'.repeat(64), format: 'layers' },
      }),
      model: artifact,
    });
    expect(result.outputs.map((o) => [o.name, o.shape])).toEqual([['out', [5, 2]]]);
    expect(maxRelativeError(values(result.outputs[0]), expected)).toBeLessThan(1e-5);
    const err = await rejection(
      pool.run({
        jobId: JOB_ID,
        attempt: 2,
        spec: spec({
          kind: 'inference',
          inputs: [f32('features', [5, 3], xs.slice(0, 15))],
          model: { hash: 'b'.repeat(64), format: 'layers' },
        }),
        model: artifact,
      }),
    );
    expect(err.code).toBe('BAD_INPUT');
    expect(err.message).toMatch(/shape/);
    const after = await pool.workerMemory(0);
    expect(after.numTensors).toBe(before.numTensors);
  });

  it('runs inference of a GraphModel loaded from memory, with named outputs', async () => {
    const w = [1, 2, 3, 4, 5, 6];
    const bias = [0.5, -0.5];
    const x = [1, 0, -1, 2, 1, 0];
    const result = await pool.run({
      jobId: JOB_ID,
      attempt: 1,
      spec: spec({
        kind: 'inference',
        inputs: [f32('x', [2, 3], x)],
        model: { hash: 'c'.repeat(64), format: 'graph' },
        outputs: ['Identity', 'MatMul'],
      }),
      model: affineGraphArtifact(w, bias),
    });
    expect(result.outputs.map((o) => o.name)).toEqual(['Identity', 'MatMul']);
    // row 0: [1,0,-1]·W = [1-5, 2-6] = [-4,-4]; row 1: [2,1,0]·W = [2+3, 4+4] = [5, 8]
    expect(Array.from(values(result.outputs[1]))).toEqual([-4, -4, 5, 8]);
    expect(Array.from(values(result.outputs[0]))).toEqual([-3.5, -4.5, 5.5, 7.5]);
  });

  it('fails model loads clearly: garbage JSON, unknown (custom) layer, wrong weight size, format mismatch', async () => {
    const good = await layersArtifact(denseModel());
    const inference = spec({
      kind: 'inference',
      inputs: [f32('x', [1, 4], [1, 2, 3, 4])],
      model: { hash: 'd'.repeat(64), format: 'layers' },
    });
    const topology = (good.modelJson as { modelTopology: { config: { layers: { class_name: string }[] } } })
      .modelTopology;
    const custom = structuredClone(topology);
    custom.config.layers[1].class_name = 'MyEvilLayer';
    const cases = [
      { ...good, modelJson: '{not json' },
      { ...good, modelJson: { ...(good.modelJson as object), modelTopology: custom } },
      { ...good, weights: good.weights.slice(0, 8) },
      { ...good, modelJson: { ...(good.modelJson as object), format: 'graph-model' } },
    ];
    const errors = await Promise.all(
      cases.map((model, i) => rejection(pool.run({ jobId: JOB_ID, attempt: i + 1, spec: inference, model }))),
    );
    expect(errors.map((e) => e.code)).toEqual([
      'MODEL_LOAD_FAILED',
      'MODEL_LOAD_FAILED',
      'MODEL_LOAD_FAILED',
      'MODEL_LOAD_FAILED',
    ]);
    expect(errors[0].message).toMatch(/not JSON/);
    expect(errors[1].message).toMatch(/MyEvilLayer/);
    expect(errors[2].message).toMatch(/weights are 8 bytes/);
    const missing = await rejection(pool.run({ jobId: JOB_ID, attempt: 9, spec: inference }));
    expect(missing.code).toBe('BAD_INPUT');
  });

  it('trains a LayersModel: progress per epoch, loss history, trained weights, no leaked tensors', async () => {
    const before = await Promise.all([pool.workerMemory(0), pool.workerMemory(1)]);
    const progress: TaskProgress[] = [];
    const result = await pool.run(
      { jobId: JOB_ID, attempt: 1, spec: trainSpec(32, 40), model: await layersArtifact(linearModel()) },
      { onProgress: (p) => progress.push(p) },
    );
    expect(progress.map((p) => p.epoch)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(progress[0]).toMatchObject({ jobId: JOB_ID, attempt: 1, epochs: 40 });
    expect(result.lossHistory).toHaveLength(40);
    const loss = result.lossHistory ?? [];
    expect(loss[39]).toBeLessThan(loss[0] / 10);
    expect(result.outputs.map((o) => o.name)).toEqual(['weights/lin/kernel', 'weights/lin/bias']);
    const [kernel] = values(result.outputs[0]);
    const [bias] = values(result.outputs[1]);
    expect(kernel).toBeGreaterThan(1.5);
    expect(bias).toBeGreaterThan(0.8);
    const after = await Promise.all([pool.workerMemory(0), pool.workerMemory(1)]);
    expect(after.map((m) => m.numTensors)).toEqual(before.map((m) => m.numTensors));
  });

  it('times out a long task, replaces the worker, and keeps serving', async () => {
    const replaced = pool.stats().workersReplaced;
    const model = await layersArtifact(linearModel());
    const err = await rejection(
      pool.run({ jobId: JOB_ID, attempt: 1, spec: trainSpec(4096, 1000), model }, { timeoutMs: 300 }),
    );
    expect(err.code).toBe('TIMEOUT');
    expect(pool.stats().workersReplaced).toBe(replaced + 1);
    const ok = await pool.run({
      jobId: JOB_ID,
      attempt: 2,
      spec: matmulSpec(f32('a', [1, 1], [3]), f32('b', [1, 1], [4])),
    });
    expect(Array.from(values(ok.outputs[0]))).toEqual([12]);
  }, 20_000);

  it('cancels: before start, while queued, and while running (worker replaced)', async () => {
    await pool.ready();
    const model = await layersArtifact(linearModel());
    const aborted = AbortSignal.abort();
    expect(
      (
        await rejection(
          pool.run({ jobId: JOB_ID, attempt: 1, spec: trainSpec(8, 1), model }, { signal: aborted }),
        )
      ).code,
    ).toBe('CANCELLED');

    const running = new AbortController();
    const queued = new AbortController();
    const long = trainSpec(512, 1000);
    const p1 = pool.run(
      { jobId: JOB_ID, attempt: 2, spec: long, model },
      { signal: running.signal, onProgress: () => running.abort() },
    );
    const other = new AbortController();
    const p2 = pool.run({ jobId: JOB_ID, attempt: 3, spec: long, model }, { signal: other.signal });
    const p3 = pool.run({ jobId: JOB_ID, attempt: 4, spec: long, model }, { signal: queued.signal });
    for (const p of [p1, p2, p3]) p.catch(() => undefined);
    expect(pool.stats().queued).toBe(1);
    queued.abort();
    expect((await rejection(p3)).code).toBe('CANCELLED');
    const e1 = await rejection(p1);
    expect(e1.code).toBe('CANCELLED');
    expect(e1.message).toMatch(/while running/);
    other.abort();
    const e2 = await rejection(p2);
    expect(e2.code).toBe('CANCELLED');
    const ok = await pool.run({
      jobId: JOB_ID,
      attempt: 5,
      spec: matmulSpec(f32('a', [1, 1], [2]), f32('b', [1, 1], [5])),
    });
    expect(Array.from(values(ok.outputs[0]))).toEqual([10]);
    expect(pool.stats()).toMatchObject({ failed: 0, queued: 0 });
  }, 30_000);
});

describe('executor pool: workerMemory while the worker goes away', () => {
  it('rejects a memory request the worker never answered when it is replaced (a timed-out task)', async () => {
    const pool = await createExecutorPool({ slots: 1, backend: 'wasm', memoryLimitMb: 256 });
    try {
      const n = 2048; // a synchronous matmul of a second or more: the worker reads no message meanwhile
      const a = f32('a', [n, n], seededValues(n * n, 1));
      const b = f32('b', [n, n], seededValues(n * n, 2));
      const long = pool.run({ jobId: JOB_ID, attempt: 1, spec: matmulSpec(a, b) }, { timeoutMs: 100 });
      long.catch(() => undefined);
      const memory = pool.workerMemory(0);
      memory.catch(() => undefined);
      expect((await rejection(long)).code).toBe('TIMEOUT');
      await expect(memory).rejects.toThrow(/worker was replaced/);
      await pool.ready();
      expect((await pool.workerMemory(0)).numTensors).toBeGreaterThanOrEqual(0);
    } finally {
      await pool.close();
    }
  }, 30_000);

  it('rejects a memory request still waiting when the pool closes', async () => {
    const pool = await createExecutorPool({ slots: 1, backend: 'wasm', memoryLimitMb: 256 });
    const n = 2048;
    const long = pool.run({
      jobId: JOB_ID,
      attempt: 1,
      spec: matmulSpec(f32('a', [n, n], seededValues(n * n, 3)), f32('b', [n, n], seededValues(n * n, 4))),
    });
    long.catch(() => undefined);
    const memory = pool.workerMemory(0);
    memory.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await pool.close();
    await expect(memory).rejects.toThrow(/pool was closed/);
    expect((await rejection(long)).code).toBe('CLOSED');
  }, 30_000);
});
