// A worker thread that exhausts its V8 heap must fail only its task (MEMORY_LIMIT) and be replaced.
// The pool runs in a child process here (built JS from dist/): a V8 out-of-memory in a worker can
// take its whole process down under memory pressure, and the test runner's worker must not be it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { assertBuilt } from '../helpers/processes.js';

const runtime = pathToFileURL(join(process.cwd(), 'apps/provider-agent/dist/runtime/index.js')).href;
const protocol = pathToFileURL(join(process.cwd(), 'libs/protocol/dist/index.js')).href;

const script = `
import { createExecutorPool } from ${JSON.stringify(runtime)};
import { decodeTensor, encodeTensor, parseJobSpec } from ${JSON.stringify(protocol)};
const JOB_ID = '3b0f1d2e-8c4a-4f6b-9e21-7a5c3d9b1f00';
const f32 = (name, shape, v) => encodeTensor(name, 'float32', shape, Float32Array.from(v));
const pool = await createExecutorPool({ slots: 1, backend: 'cpu', memoryLimitMb: 48 });
const out = {};
try {
  // A model.json too large for the worker's heap: the structured clone alone breaches the limit.
  const huge = { modelTopology: {}, weightsManifest: [], padding: Array.from({ length: 1_500_000 }, (_, i) => [i]) };
  const spec = parseJobSpec({ version: 1, kind: 'inference', inputs: [f32('x', [1, 1], [1])],
    model: { hash: 'e'.repeat(64), format: 'layers' }, maxPricePerUnit: '1' });
  try {
    await pool.run({ jobId: JOB_ID, attempt: 1, spec, model: { format: 'layers', modelJson: huge, weights: new Uint8Array() } });
    out.first = 'resolved';
  } catch (err) {
    out.first = err.code;
  }
  const mm = parseJobSpec({ version: 1, kind: 'matmul', inputs: [f32('a', [1, 2], [1, 2]), f32('b', [2, 1], [3, 4])], maxPricePerUnit: '1' });
  const ok = await pool.run({ jobId: JOB_ID, attempt: 2, spec: mm });
  out.after = Array.from(decodeTensor(ok.outputs[0]).values);
  out.replaced = pool.stats().workersReplaced;
} finally {
  await pool.close();
}
console.log(JSON.stringify(out));
`;

describe('executor pool memory limit', () => {
  it('a worker that runs out of its V8 heap fails the task with MEMORY_LIMIT and is replaced', () => {
    assertBuilt();
    const dir = mkdtempSync(join(tmpdir(), 'gpumesh-oom-'));
    const file = join(dir, 'oom.mjs');
    writeFileSync(file, script);
    const child = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
    rmSync(dir, { recursive: true, force: true });
    expect(child.status, `${child.stderr}`).toBe(0);
    const out = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as {
      first: string;
      after: number[];
      replaced: number;
    };
    expect(out.first).toBe('MEMORY_LIMIT');
    expect(out.after).toEqual([11]);
    expect(out.replaced).toBe(1);
  });
});
