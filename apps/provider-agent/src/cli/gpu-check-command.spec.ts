// gpu-check's logic on recorded agent outputs (test-fixtures/gpu-check/, recorded here on llvmpipe) and
// on an H100 machine whose outputs are made from the same records (UNVERIFIED ON HARDWARE).
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import type { CommandResult, GpuListing, SweepBenchmarkResult } from '../runtime/index.js';
import {
  backendFromDoctor,
  gpuCheckOptions,
  gpuCheckTable,
  jobBackend,
  lastErrorLine,
  parseJsonOutput,
  runGpuCheck,
  sweepSizes,
  type GpuCheckDeps,
} from './gpu-check-command.js';
import type { LocalJobCheck, LocalJobOptions } from './gpu-check-job.js';
import { CliError } from './output.js';

const FIXTURES = new URL('../../test-fixtures/gpu-check/', import.meta.url);
const read = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');
const DAWN_WARNING =
  'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 90 to 16 to fit dynamic offset allocation limit.\n';

const ran = (stdout: string, exitCode: number | null = 0, stderr = ''): CommandResult => ({
  exitCode,
  stdout,
  stderr,
  timedOut: false,
});

/** The machine recorded here: no GPU tools, webgpu on llvmpipe, wasm and cpu. */
function workplace(overrides: Record<string, CommandResult> = {}): {
  deps: GpuCheckDeps;
  calls: string[][];
  jobs: LocalJobOptions[];
} {
  const calls: string[][] = [];
  const jobs: LocalJobOptions[] = [];
  const listing: GpuListing = { gpus: [], tools: [{ tool: 'lspci', status: 'absent', message: 'ENOENT' }] };
  const notInstalled = (pkg: string): CommandResult =>
    ran('', 1, `${DAWN_WARNING}gpumesh-agent: backend x is not available: ${pkg} is not installed\n`);
  const outputs: Record<string, CommandResult> = {
    'doctor tensorflow-gpu': ran(read('doctor-tensorflow-gpu.stdout'), 1),
    'doctor webgpu': ran(read('doctor-webgpu.stdout'), 0, DAWN_WARNING),
    'doctor tensorflow': notInstalled('@tensorflow/tfjs-node'),
    'doctor wasm': ran(read('doctor-wasm.stdout')),
    'doctor cpu': ran(read('doctor-wasm.stdout').replace(/"name": "wasm"/, '"name": "cpu"')),
    'benchmark webgpu': ran(read('sweep-webgpu.stdout'), 0, DAWN_WARNING),
    'benchmark wasm': ran(read('sweep-wasm.stdout')),
    'benchmark cpu': ran(read('sweep-wasm.stdout').replace(/"backend": "wasm"/, '"backend": "cpu"')),
    ...overrides,
  };
  return {
    calls,
    jobs,
    deps: {
      listGpus: async () => listing,
      runAgent: async (args) => {
        calls.push([...args]);
        const backend = args[args.indexOf('--backend') + 1];
        return outputs[`${args[0]} ${backend}`] ?? ran('', 1, 'unexpected');
      },
      runJob: async (o): Promise<LocalJobCheck> => {
        jobs.push(o);
        return {
          ok: true,
          backend: o.backend,
          coordinator: 'started',
          size: o.size ?? 512,
          state: 'COMPLETED',
          maxRelError: 3e-7,
          jobSeconds: 2,
        };
      },
    },
  };
}

const base = { json: true, env: {}, sizes: [128, 256], coordinatorMain: '/built/coordinator/main.js' };

describe('gpu-check on the recorded workplace (llvmpipe)', () => {
  it('doctor for every backend, the sweep only where it works, the job on the automatic backend', async () => {
    const w = workplace();
    const report = await runGpuCheck(base, w.deps);
    expect(w.calls.map((c) => `${c[0]} ${c[c.indexOf('--backend') + 1]}`)).toEqual([
      'doctor tensorflow-gpu',
      'doctor webgpu',
      'benchmark webgpu',
      'doctor tensorflow',
      'doctor wasm',
      'benchmark wasm',
      'doctor cpu',
      'benchmark cpu',
    ]);
    expect(w.calls[2]).toEqual(
      expect.arrayContaining(['--sweep', '--sizes', '128,256', '--max-seconds', '120']),
    );
    expect(report.backends.map((r) => [r.backend, r.available, r.gpu])).toEqual([
      ['tensorflow-gpu', false, false],
      ['webgpu', true, false],
      ['tensorflow', false, false],
      ['wasm', true, false],
      ['cpu', true, false],
    ]);
    expect(report.backends[0].reason).toMatch(/tfjs-node-gpu is not installed/);
    expect(report.backends[2].reason).toBe(
      'backend x is not available: @tensorflow/tfjs-node is not installed',
    );
    expect(report.backends[1].adapter).toMatchObject({ software: true, dawnBackend: 'opengles' });
    expect(report.backends[1].sweep?.allChecked).toBe(true);
    // A software adapter is passed over in automatic choice: jobs would run on wasm, and so does the job.
    expect(report.best).toMatchObject({ backend: 'wasm', gpu: false });
    expect(w.jobs.map((j) => j.backend)).toEqual(['wasm']);
    expect(report.ok).toBe(true);
    const table = gpuCheckTable(report);
    expect(table).toMatch(/^webgpu +yes no +[\d.]+ +[\d.]+ +llvmpipe.* via opengles \(software\)$/m);
    expect(table).toMatch(/^job: ok — a 512² matmul on wasm through a local coordinator: COMPLETED/m);
    expect(table).toMatch(/gpu-check: ok$/);
  });

  it('--job-backend webgpu puts the job on the software adapter; an unavailable one is skipped', async () => {
    const w = workplace();
    await runGpuCheck({ ...base, jobBackend: 'webgpu' }, w.deps);
    expect(w.jobs.map((j) => j.backend)).toEqual(['webgpu']);
    const none = await runGpuCheck({ ...base, jobBackend: 'tensorflow' }, workplace().deps);
    expect(none.job).toEqual({ skipped: '--job-backend tensorflow is not available here' });
  });

  it('a product that fails its float64 check fails the whole check, marked in the table', async () => {
    const bad = JSON.parse(read('sweep-wasm.stdout')) as SweepBenchmarkResult;
    const point = bad.points[1];
    if (!('check' in point)) throw new Error('fixture changed');
    const broken = {
      ...bad,
      allChecked: false,
      points: [bad.points[0], { ...point, check: { ok: false, relError: 2.6e-4, tolerance: 5e-5 } }],
    };
    const w = workplace({ 'benchmark wasm': ran(JSON.stringify(broken, null, 2), 1) });
    const report = await runGpuCheck(base, w.deps);
    expect(report.ok).toBe(false);
    const table = gpuCheckTable(report);
    expect(table).toMatch(/^wasm .*!/m);
    expect(table).toContain('! failed the float64 check: wasm 256²: relative error 2.6e-4');
    expect(table).toMatch(/gpu-check: FAILED$/);
  });

  it('a failed job fails the check; without a coordinator the job is skipped', async () => {
    const w = workplace();
    const failing: GpuCheckDeps = {
      ...w.deps,
      runJob: async (o) => ({
        ok: false,
        backend: o.backend,
        coordinator: 'started',
        size: 512,
        error: 'boom',
      }),
    };
    expect((await runGpuCheck(base, failing)).ok).toBe(false);
    const skipped = await runGpuCheck({ ...base, coordinatorMain: undefined }, workplace().deps);
    expect(skipped.job).toMatchObject({ skipped: expect.stringMatching(/^no coordinator/) });
    expect(skipped.ok).toBe(true);
  });
});

describe('gpu-check on an H100 whose tfjs-node-gpu cannot load (CUDA 12 only)', () => {
  it('webgpu on the hardware adapter is the GPU backend: the job goes there', async () => {
    const doctor = JSON.parse(read('doctor-webgpu.stdout')) as {
      backend: { adapter: Record<string, unknown>; gflops: number };
    };
    // Dawn's Vulkan adapter on an H100 (shape of GPUAdapterInfo; not recorded on hardware).
    doctor.backend.adapter = {
      vendor: 'nvidia',
      architecture: 'hopper',
      device: 'NVIDIA H100 80GB HBM3',
      description: 'NVIDIA: 535.129.03',
      dawnBackend: 'default',
      software: false,
    };
    const w = workplace({
      'doctor tensorflow-gpu': ran(
        '',
        1,
        'gpumesh-agent: backend tensorflow-gpu is not available: missing CUDA libraries: libcudart.so.11.0, libcudnn.so.8\n',
      ),
      'doctor webgpu': ran(JSON.stringify(doctor, null, 2)),
    });
    const report = await runGpuCheck(base, w.deps);
    expect(report.backends[0].reason).toMatch(/libcudart\.so\.11\.0/);
    expect(report.backends[1]).toMatchObject({ backend: 'webgpu', available: true, gpu: true });
    expect(report.best).toMatchObject({ backend: 'webgpu', gpu: true });
    expect(w.jobs.map((j) => j.backend)).toEqual(['webgpu']);
    expect(gpuCheckTable(report)).toMatch(/^webgpu +yes yes .*NVIDIA H100 80GB HBM3 via default$/m);
  });
});

describe('gpu-check options and outputs', () => {
  it('sizes: the sweep up to --max-size, powers of two below 1024, or exactly --sizes', () => {
    expect(sweepSizes(undefined, undefined)).toEqual([1024, 2048, 4096, 8192]);
    expect(sweepSizes(undefined, '4096')).toEqual([1024, 2048, 4096]);
    expect(sweepSizes(undefined, '512')).toEqual([128, 256, 512]);
    expect(sweepSizes(undefined, '100')).toEqual([100]);
    expect(sweepSizes('64, 96', '8192')).toEqual([64, 96]);
    expect(() => sweepSizes('0', undefined)).toThrow(CliError);
    expect(() => sweepSizes(undefined, 'big')).toThrow(/--max-size/);
  });

  it('parses the command line', () => {
    const o = gpuCheckOptions(
      { 'max-size': '2048', backends: 'webgpu, wasm', 'job-backend': 'webgpu', 'no-job': false, json: true },
      {},
    );
    expect(o).toMatchObject({
      sizes: [1024, 2048],
      backends: ['webgpu', 'wasm'],
      jobBackend: 'webgpu',
      job: true,
    });
    expect(() => gpuCheckOptions({ backends: 'cuda' }, {})).toThrow(/--backends must name one of/);
    expect(() => gpuCheckOptions({ coordinator: 'http://127.0.0.1:8080' }, {})).toThrow(/GPUMESH_API_KEY/);
    expect(gpuCheckOptions({ coordinator: 'http://h:1' }, { GPUMESH_API_KEY: 'gmk_x' })).toMatchObject({
      coordinatorUrl: 'http://h:1',
      apiKey: 'gmk_x',
    });
  });

  it('reads the JSON after native warnings, and the reason line of a failed child', () => {
    expect(parseJsonOutput<{ a: number }>(`${DAWN_WARNING}{\n  "a": 1\n}\n`)).toEqual({ a: 1 });
    expect(parseJsonOutput('no json here')).toBeNull();
    expect(
      lastErrorLine(
        `${DAWN_WARNING}gpumesh-agent: backend webgpu is not available: no WebGPU adapter\n    at x (y.js:1:1)\n`,
      ),
    ).toBe('backend webgpu is not available: no WebGPU adapter');
    expect(backendFromDoctor('cpu', ran('', null))).toMatchObject({
      available: false,
    });
  });

  it('picks the job backend: asked, else a GPU one, else the automatic one', () => {
    const row = (backend: 'webgpu' | 'wasm', available: boolean, gpu: boolean, software?: boolean) => ({
      backend,
      available,
      gpu,
      reason: '',
      warnings: [],
      ...(software === undefined
        ? {}
        : {
            adapter: {
              vendor: '',
              architecture: '',
              device: '',
              description: '',
              dawnBackend: 'opengles' as const,
              software,
            },
          }),
    });
    expect(jobBackend([row('webgpu', true, false, true), row('wasm', true, false)])).toBe('wasm');
    expect(jobBackend([row('webgpu', true, true, false), row('wasm', true, false)])).toBe('webgpu');
    expect(jobBackend([row('webgpu', true, false, true)])).toBeNull();
    expect(jobBackend([row('webgpu', true, false, true)], 'webgpu')).toBe('webgpu');
  });
});
