// The reference worker (@gpumesh/compute ReferenceRunner) that the coordinator recomputes jobs in: the same
// results as the in-thread reference for matmul, layers and graph inference and train, from the
// TypeScript sources (vitest) and from dist; the event loop stays free while it computes; work over
// the budget or beyond a full queue is refused at once with a reason; a reference over its time
// limit is stopped; a worker that dies (out of memory) fails its task without taking the process;
// a worker restarted after its idle stop, or a new runner's after close, starts in the same process.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { computeReference, ReferenceRunError, ReferenceRunner } from '@gpumesh/compute';
import { hashArtifact } from '@gpumesh/p2p';
import { encodeTensor, hashOutputs, parseJobSpec, type JobSpec } from '@gpumesh/protocol';
import { seeded } from '../../libs/verification/src/test-fixtures.js';
import { affineGraphArtifact } from '../../apps/provider-agent/src/runtime/executor/test-fixtures.js';
import { asArtifact, inferenceBody, mlp, saveLayers, specOf, trainBody } from './models.js';

function matmul(m: number, k: number, n: number): JobSpec {
  return parseJobSpec({
    version: 1,
    kind: 'matmul',
    maxPricePerUnit: '1',
    inputs: [
      encodeTensor('a', 'float32', [m, k], seeded(m * k, 1)),
      encodeTensor('b', 'float32', [k, n], seeded(k * n, 2)),
    ],
  });
}

async function refused(p: Promise<unknown>): Promise<ReferenceRunError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ReferenceRunError) return err;
    throw err;
  }
  throw new Error('expected a ReferenceRunError');
}

/** Idle time after which the restart tests' runners stop their worker. */
const IDLE_MS = 100;
/** Time for a stopped worker thread to have exited before the next one starts. */
const WORKER_EXIT_WAIT_MS = 1000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** @gpumesh/compute's compiled entry point (dist tests). */
function distCompute(): string {
  const dist = join(process.cwd(), 'libs/compute/dist/index.js');
  if (!existsSync(dist)) throw new Error(`${dist} is missing: run npm run build first`);
  return dist;
}

/** Runs an ES module script with node and resolves its stdout (rejects on a non-zero exit or a signal). */
async function runNode(script: string, args: string[]): Promise<string> {
  const file = join(mkdtempSync(join(tmpdir(), 'gpumesh-ref-')), 'run.mjs');
  writeFileSync(file, script);
  return new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0 ? resolve(stdout) : reject(new Error(`exit ${code ?? signal}: ${stderr}`)),
    );
  });
}

const runners: ReferenceRunner[] = [];
function runner(options: ConstructorParameters<typeof ReferenceRunner>[0] = {}): ReferenceRunner {
  const r = new ReferenceRunner(options);
  runners.push(r);
  return r;
}

afterAll(async () => {
  for (const r of runners) await r.close();
});

describe('the reference worker', () => {
  it('computes matmul, layers and graph inference and train exactly like the in-thread reference', async () => {
    const layers = await saveLayers(mlp(6, [12], 3, 21, true));
    const trainModel = await saveLayers(mlp(4, [8], 1, 31));
    const graph = affineGraphArtifact([0.5, -1, 0.25, 2, -0.75, 1.5], [0.1, -0.2]);
    const graphHash = hashArtifact(graph.modelJson, graph.weights);
    const cases: { name: string; spec: JobSpec; model?: ReturnType<typeof asArtifact> }[] = [
      { name: 'matmul', spec: matmul(16, 24, 8) },
      { name: 'layers inference', spec: specOf(inferenceBody(layers, 5, 6)), model: asArtifact(layers) },
      {
        name: 'graph inference',
        spec: parseJobSpec({
          version: 1,
          kind: 'inference',
          maxPricePerUnit: '1',
          model: { hash: graphHash, format: 'graph' },
          inputs: [encodeTensor('x', 'float32', [4, 3], seeded(12, 9))],
        }),
        model: graph,
      },
      { name: 'train', spec: specOf(trainBody(trainModel, 32, 4)), model: asArtifact(trainModel) },
    ];
    const r = runner({ maxWorkUnits: 1000n });
    for (const c of cases) {
      const inThread = await computeReference(c.spec, {
        backend: 'cpu',
        artifacts: c.model ? [c.model] : [],
      });
      // Twice: a long-lived worker must give the same names and values on every run (train weights
      // are named by their original variable names, not tfjs's per-thread unique ones).
      for (let i = 0; i < 2; i++) {
        const run = await r.compute(c.spec, { model: c.model });
        expect(
          run.outputs.map((o) => o.name),
          c.name,
        ).toEqual(inThread.map((o) => o.name));
        expect(hashOutputs(run.outputs), c.name).toBe(hashOutputs(inThread));
      }
    }
    expect(r.stats()).toMatchObject({ completed: 8, failed: 0, workersStarted: 1 });
  });

  it('keeps the event loop free while it computes', async () => {
    const r = runner();
    const spec = matmul(640, 640, 640);
    await r.compute(matmul(4, 4, 4)); // the worker is up (tfjs loaded) before measuring
    let last = performance.now();
    let maxGap = 0;
    const tick = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 5);
    const run = await r.compute(spec);
    clearInterval(tick);
    console.log(
      JSON.stringify({
        referenceMatmul640: { runMs: Math.round(run.runMs), maxEventLoopGapMs: Math.round(maxGap) },
      }),
    );
    expect(run.workUnits).toBe(525n);
    expect(run.runMs).toBeGreaterThan(200);
    // In this thread the whole product would have blocked the loop for runMs.
    expect(maxGap).toBeLessThan(Math.max(100, run.runMs / 3));
  });

  it('refuses work over its budget, or beyond a full queue, at once and with the reason', async () => {
    const r = runner({ maxWorkUnits: 100n, maxQueued: 1 });
    const started = performance.now();
    const over = await refused(r.compute(matmul(640, 640, 640)));
    expect(performance.now() - started).toBeLessThan(200);
    expect(over.code).toBe('OVER_BUDGET');
    expect(over.message).toMatch(/costs 525 work units, over the reference work budget of 100/);
    const model = await saveLayers(mlp(6, [12], 3));
    const noModel = await refused(r.compute(specOf(inferenceBody(model, 2, 6))));
    expect(noModel.code).toBe('NO_ARTIFACT');
    expect(r.stats()).toMatchObject({ refused: 2, workersStarted: 0 });

    // One running, one waiting: the third is refused without waiting.
    const first = r.compute(matmul(300, 300, 300));
    const second = r.compute(matmul(8, 8, 8));
    const busy = await refused(r.compute(matmul(8, 8, 8)));
    expect(busy.code).toBe('BUSY');
    expect(busy.message).toMatch(/1 references are already waiting \(limit 1\)/);
    await Promise.all([first, second]);
  });

  it('stops a reference over its time limit and carries on with a fresh worker', async () => {
    // A floor rate far above the worker's: the 1,458-unit job gets the flat 150 ms (at the default
    // 100 MFLOP/s it would get 14.6 s, its work's time: referenceTimeLimitMs).
    const r = runner({ timeoutMs: 150, minMegaflopsPerSecond: 1_000_000 });
    const slow = await refused(r.compute(matmul(900, 900, 900)));
    expect(slow.code).toBe('TIMEOUT');
    expect(slow.message).toMatch(/longer than 0\.1|longer than 0\.2/);
    const ok = await r.compute(matmul(4, 4, 4), { timeoutMs: 60_000 });
    expect(ok.outputs[0].shape).toEqual([4, 4]);
    expect(r.stats()).toMatchObject({ timedOut: 1, completed: 1, workersStarted: 2 });
  });

  it('fails the task of a worker that runs out of memory, and the process lives on', async () => {
    const r = runner({ memoryLimitMb: 4 });
    const crashed = await refused(r.compute(matmul(64, 64, 64)));
    expect(crashed.code).toBe('WORKER_CRASHED');
    expect(crashed.message).toMatch(/reference worker (crashed|exited)/);
    // Another runner (normal limits) still works in this process.
    const ok = await runner().compute(matmul(4, 4, 4));
    expect(ok.outputs).toHaveLength(1);
  });

  it('starts a fresh worker after the idle stop and a new runner after close, in the same process', async () => {
    // The first worker thread's exit used to leave the second one (started from the TypeScript
    // sources) to load @swc/core again, which crashed this whole process with SIGSEGV.
    const r = runner({ idleMs: IDLE_MS });
    expect((await r.compute(matmul(4, 4, 4))).outputs).toHaveLength(1);
    await sleep(IDLE_MS + WORKER_EXIT_WAIT_MS); // idle stop, and the thread has exited
    expect((await r.compute(matmul(4, 4, 4))).outputs).toHaveLength(1);
    expect(r.stats()).toMatchObject({ completed: 2, failed: 0, workersStarted: 2 });
    await r.close();
    const next = runner();
    expect((await next.compute(matmul(4, 4, 4))).outputs).toHaveLength(1);
    expect(next.stats()).toMatchObject({ completed: 1, workersStarted: 1 });
  });

  it('measures an inference reference (MLP 256-512-512-10, batch 256)', async () => {
    const model = await saveLayers(mlp(256, [512, 512], 10, 41));
    const spec = specOf(inferenceBody(model, 256, 256));
    const r = runner({ maxWorkUnits: 5000n });
    const first = await r.compute(spec, { model: asArtifact(model) });
    const again = await r.compute(spec, { model: asArtifact(model) });
    console.log(
      JSON.stringify({
        referenceInference: {
          workUnits: first.workUnits.toString(),
          firstRunMs: Math.round(first.runMs + first.queuedMs),
          warmRunMs: Math.round(again.runMs),
        },
      }),
    );
    expect(hashOutputs(again.outputs)).toBe(hashOutputs(first.outputs));
  });

  it('runs from dist (compiled JS) with the same result', async () => {
    const dist = distCompute();
    const model = await saveLayers(mlp(6, [12], 3, 21, true));
    const spec = specOf(inferenceBody(model, 5, 6));
    const expected = hashOutputs(
      await computeReference(spec, { backend: 'cpu', artifacts: [asArtifact(model)] }),
    );
    const script = `
      const { ReferenceRunner } = await import(${JSON.stringify(dist)});
      const { hashOutputs } = await import(${JSON.stringify(join(process.cwd(), 'libs/protocol/dist/index.js'))});
      const input = JSON.parse(process.argv[2]);
      const runner = new ReferenceRunner({ maxWorkUnits: 1000n });
      const model = { ...input.model, weights: new Uint8Array(Buffer.from(input.model.weights, 'base64')) };
      const run = await runner.compute(input.spec, { model });
      console.log(JSON.stringify({ hash: hashOutputs(run.outputs) }));
      await runner.close();
    `;
    const arg = JSON.stringify({
      spec,
      model: { ...asArtifact(model), weights: Buffer.from(model.weights).toString('base64') },
    });
    const out = await runNode(script, [arg]);
    expect(JSON.parse(out.trim().split('\n').pop() ?? '{}')).toEqual({ hash: expected });
  });

  it('restarts its worker from dist too (after the idle stop, and a new runner after close)', async () => {
    const dist = distCompute();
    const script = `
      const { ReferenceRunner } = await import(${JSON.stringify(dist)});
      const spec = JSON.parse(process.argv[2]);
      const first = new ReferenceRunner({ idleMs: ${IDLE_MS} });
      await first.compute(spec);
      await new Promise((r) => setTimeout(r, ${IDLE_MS + WORKER_EXIT_WAIT_MS}));
      await first.compute(spec);
      const started = first.stats().workersStarted;
      await first.close();
      const next = new ReferenceRunner();
      const run = await next.compute(spec);
      await next.close();
      console.log(JSON.stringify({ started, outputs: run.outputs.length }));
    `;
    const out = await runNode(script, [JSON.stringify(matmul(4, 4, 4))]);
    expect(JSON.parse(out.trim().split('\n').pop() ?? '{}')).toEqual({ started: 2, outputs: 1 });
  });
});
