import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import {
  assessTensorflowGpu,
  backendFromEnv,
  BackendUnavailableError,
  resolveBackend,
  type GpuProbeResult,
  type ResolveBackendOptions,
} from './backend.js';
import { checkCudaLibraries } from './cuda-libs.js';
import { classifyNvidiaSmi, detectGpus, type GpuDetection } from './gpu-detect.js';

const FIXTURES = new URL('../../test-fixtures/', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, FIXTURES), 'utf8');

async function gpusFrom(name: string): Promise<GpuDetection> {
  const fx = JSON.parse(read(`nvidia-smi/${name}.json`)) as {
    exitCode: number;
    stdout: string;
    stderr: string;
  };
  return detectGpus({
    run: async () => ({ ...fx, timedOut: false }),
    graphics: async () => ({ controllers: [] }),
  });
}

const libs = (name: string): ReturnType<typeof checkCudaLibraries> =>
  checkCudaLibraries(read(`ldconfig/${name}.txt`), [], 'x86-64');

const probe = (log: string, gflops = 9000): GpuProbeResult => ({
  exitCode: 0,
  stderr: read(`tf-log/${log}.log`),
  result: { ok: true, maxRelError: 1e-7, gflops, version: '4.22.0' },
});

/** Pretends tfjs-node-gpu is installed (only tfjs-node stays absent); the GPU path never imports it. */
function gpuInstalled(extra: Partial<ResolveBackendOptions>): ResolveBackendOptions {
  return {
    resolvePackage: (pkg) =>
      pkg === '@tensorflow/tfjs-node-gpu'
        ? '/fake/tfjs-node-gpu/index.js'
        : pkg === '@tensorflow/tfjs-node'
          ? null
          : 'x',
    benchSize: 128,
    benchMinMs: 20,
    ...extra,
  };
}

describe('backendFromEnv', () => {
  it('reads GPUMESH_BACKEND', () => {
    expect(backendFromEnv({ GPUMESH_BACKEND: 'wasm' })).toBe('wasm');
    expect(backendFromEnv({ GPUMESH_BACKEND: 'auto' })).toBeUndefined();
    expect(backendFromEnv({})).toBeUndefined();
    expect(() => backendFromEnv({ GPUMESH_BACKEND: 'cuda' })).toThrow(/not one of auto, tensorflow-gpu/);
  });
});

describe('resolveBackend on this machine', () => {
  it('falls back past the absent tfjs-node packages to wasm and proves it', async () => {
    const r = await resolveBackend({ env: {}, benchSize: 256, benchMinMs: 50 });
    expect(r.name).toBe('wasm');
    expect(r.proven).toBe(true);
    expect(r.simd).toBe(true);
    expect(r.threads).toBe(false);
    expect(r.gflops).toBeGreaterThan(1);
    expect(r.maxRelError).toBeLessThan(1e-5);
    expect(r.fallbacks).toEqual([
      { name: 'tensorflow-gpu', reason: expect.stringMatching(/tfjs-node-gpu is not installed/) },
      // No GPU here: Dawn finds only Mesa's llvmpipe (or nothing), which automatic choice passes over.
      { name: 'webgpu', reason: expect.stringMatching(/software adapter .*llvmpipe|no WebGPU adapter/) },
      { name: 'tensorflow', reason: expect.stringMatching(/tfjs-node is not installed/) },
    ]);
  });

  it('honours a forced choice (option or GPUMESH_BACKEND)', async () => {
    const r = await resolveBackend({ env: { GPUMESH_BACKEND: 'cpu' }, benchSize: 64, benchMinMs: 20 });
    expect(r).toMatchObject({ name: 'cpu', proven: true, fallbacks: [] });
    await expect(resolveBackend({ force: 'tensorflow' })).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(resolveBackend({ force: 'tensorflow' })).rejects.toThrow(/tfjs-node is not installed/);
  });
});

// UNVERIFIED ON HARDWARE: the tensorflow-gpu path, driven by recorded outputs.
describe('tensorflow-gpu decision (recorded outputs)', () => {
  it('no GPU: skipped with the detection message', async () => {
    const r = await resolveBackend(gpuInstalled({ gpus: await gpusFrom('driver-error') }));
    expect(r.name).toBe('wasm');
    expect(r.fallbacks[0]).toEqual({
      name: 'tensorflow-gpu',
      reason: expect.stringMatching(/couldn't communicate with the NVIDIA driver/),
    });
  });

  it('missing cuDNN seen by ldconfig: skipped, says which library and how to install it', async () => {
    let probed = false;
    const r = await resolveBackend(
      gpuInstalled({
        gpus: await gpusFrom('rtx4090'),
        cudaLibraries: async () => libs('cuda112-missing-cudnn'),
        probeGpu: async () => {
          probed = true;
          return probe('gpu-ok');
        },
      }),
    );
    expect(probed).toBe(false);
    expect(r.fallbacks[0]).toEqual({
      name: 'tensorflow-gpu',
      reason: 'missing CUDA libraries: libcudnn.so.8',
    });
    expect(r.warnings.join('\n')).toMatch(/apt-get install -y libcudnn8=8\.1\.1\.33-1\+cuda11\.2/);
  });

  it('silent CPU fallback inside tfjs-node-gpu is detected from the TF log even though the matmul ran', async () => {
    const r = await resolveBackend(
      gpuInstalled({
        gpus: await gpusFrom('a100-2x'),
        cudaLibraries: async () => libs('cuda112-complete'),
        probeGpu: async () => probe('gpu-missing-cudnn', 40),
      }),
    );
    expect(r.name).toBe('wasm');
    expect(r.fallbacks[0].reason).toMatch(
      /could not load libcudnn\.so\.8 and fell back to the CPU; install: libcudnn8/,
    );
  });

  it('working GPU: tensorflow-gpu with the device and the probe figures', async () => {
    const r = await resolveBackend(
      gpuInstalled({
        gpus: await gpusFrom('rtx4090'),
        cudaLibraries: async () => libs('cuda112-complete'),
        probeGpu: async (entry) => {
          expect(entry).toBe('/fake/tfjs-node-gpu/index.js');
          return probe('gpu-ok', 61234.56);
        },
      }),
    );
    expect(r).toMatchObject({
      name: 'tensorflow-gpu',
      proven: true,
      gflops: 61234.6,
      version: '4.22.0',
      fallbacks: [],
    });
    expect(r.devices).toEqual(['/job:localhost/replica:0/task:0/device:GPU:0 (NVIDIA GeForce RTX 4090)']);
    expect(r.warnings.join('\n')).toMatch(/compute capability 8\.9.*PTX/);
  });

  it('8× H100: warns that worker threads all land on GPU:0', async () => {
    const v = assessTensorflowGpu({
      gpus: await gpusFrom('h100-8x'),
      libraries: libs('cuda112-complete'),
      probe: probe('gpu-ok'),
    });
    expect(v.ok).toBe(true);
    expect(v.warnings.join('\n')).toMatch(/8 GPUs.*CUDA_VISIBLE_DEVICES/);
  });

  it('a wrong probe result is not accepted', async () => {
    const bad: GpuProbeResult = {
      ...probe('gpu-ok'),
      result: { ok: false, maxRelError: 0.3, gflops: 1, version: '4.22.0' },
    };
    const v = assessTensorflowGpu({
      gpus: await gpusFrom('rtx4090'),
      libraries: libs('cuda112-complete'),
      probe: bad,
    });
    expect(v).toMatchObject({ ok: false, reason: expect.stringMatching(/wrong matmul/) });
    expect(classifyNvidiaSmi({ exitCode: 0, stdout: '', stderr: '', timedOut: false }).kind).toBe('no-gpus');
  });
});
