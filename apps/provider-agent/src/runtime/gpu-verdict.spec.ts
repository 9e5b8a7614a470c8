// doctor on recorded machines (test-fixtures/): GPUs present but the backend in use is not a GPU
// backend is a loud failure (exit 1) that says how to fix the install. UNVERIFIED ON HARDWARE: the
// nvidia-smi, ldconfig and TF-log outputs are recordings.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadTf, type WebgpuAdapterInfo } from '@gpumesh/compute';
import { doctorCommand } from '../cli/commands.js';
import type { Output } from '../cli/output.js';
import { resolveBackend, type GpuProbeResult, type ResolveBackendOptions } from './backend.js';
import { checkCudaLibraries, scanLibraryPath } from './cuda-libs.js';
import { detectGpus, type GpuDetection } from './gpu-detect.js';
import { gpuUseVerdict } from './gpu-verdict.js';

const FIXTURES = new URL('../../test-fixtures/', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, FIXTURES), 'utf8');

function gpusFrom(name: string): () => Promise<GpuDetection> {
  const fx = JSON.parse(read(`nvidia-smi/${name}.json`)) as {
    exitCode: number;
    stdout: string;
    stderr: string;
  };
  return () =>
    detectGpus({
      run: async () => ({ ...fx, timedOut: false }),
      graphics: async () => ({ controllers: [] }),
    });
}

const libs = (name: string) => checkCudaLibraries(read(`ldconfig/${name}.txt`), [], 'x86-64');

const probe = (log: string): GpuProbeResult => ({
  exitCode: 0,
  stderr: read(`tf-log/${log}.log`),
  result: { ok: true, maxRelError: 1e-7, gflops: 9000, version: '4.22.0' },
});

/** Resolves with tfjs-node-gpu installed or not; the CPU fallbacks really load (wasm). */
function resolver(gpuInstalled: boolean, extra: Partial<ResolveBackendOptions> = {}) {
  return (opts: ResolveBackendOptions) =>
    resolveBackend({
      ...opts,
      resolvePackage: (pkg) =>
        pkg === '@tensorflow/tfjs-node-gpu'
          ? gpuInstalled
            ? '/fake/tfjs-node-gpu/index.js'
            : null
          : pkg === '@tensorflow/tfjs-node'
            ? null
            : 'x',
      benchSize: 64,
      benchMinMs: 10,
      ...extra,
    });
}

function capture(): { out: Output; text: () => string; json: () => unknown } {
  const lines: string[] = [];
  let value: unknown;
  return {
    out: {
      json: false,
      line: (t) => lines.push(t),
      result: (v, human) => {
        value = v;
        lines.push(human());
      },
      progress: () => undefined,
      done: () => undefined,
    },
    text: () => lines.join('\n'),
    json: () => value,
  };
}

const opts = { dataDir: '/nonexistent', json: false, env: {} };

describe('doctor: GPUs present but unused', () => {
  it('8×H100 whose optional tfjs-node-gpu install failed: exit 1, names the package and the command', async () => {
    const c = capture();
    const code = await doctorCommand(opts, c.out, { detect: gpusFrom('h100-8x'), resolve: resolver(false) });
    expect(code).toBe(1);
    expect(c.text()).toMatch(
      /FAIL \[GPU_UNUSED\]: 8 GPU\(s\) \(NVIDIA H100 80GB HBM3\) detected, but jobs would run on wasm/,
    );
    expect(c.text()).toMatch(/@tensorflow\/tfjs-node-gpu is not installed: npm skips an optional dependency/);
    expect(c.text()).toMatch(/npm install --foreground-scripts @tensorflow\/tfjs-node-gpu@4\.22\.0/);
    expect(c.text()).toMatch(/CUDA 11\.2 runtime and cuDNN 8\.1/);
  });

  it('installed but the CUDA libraries are missing: exit 1 with the apt-get advice', async () => {
    const c = capture();
    const code = await doctorCommand(opts, c.out, {
      detect: gpusFrom('h100-8x'),
      resolve: resolver(true, { cudaLibraries: async () => libs('driver-only') }),
    });
    expect(code).toBe(1);
    expect(c.text()).toMatch(/cannot use the GPU: missing CUDA libraries: libcudart\.so\.11\.0/);
    expect(c.text()).toMatch(/apt-get install -y/);
  });

  it('tfjs-node-gpu silently on the CPU (TF log): exit 1', async () => {
    const c = capture();
    const code = await doctorCommand(opts, c.out, {
      detect: gpusFrom('a100-2x'),
      resolve: resolver(true, {
        cudaLibraries: async () => libs('cuda112-complete'),
        probeGpu: async () => probe('gpu-missing-cudnn'),
      }),
    });
    expect(code).toBe(1);
    expect(c.text()).toMatch(/FAIL \[GPU_UNUSED\]: 2 GPU\(s\)/);
  });

  it('a working GPU, no GPU at all, or a CPU backend chosen on purpose: exit 0', async () => {
    const gpu = capture();
    expect(
      await doctorCommand(opts, gpu.out, {
        detect: gpusFrom('rtx4090'),
        resolve: resolver(true, {
          cudaLibraries: async () => libs('cuda112-complete'),
          probeGpu: async () => probe('gpu-ok'),
        }),
      }),
    ).toBe(0);
    expect(gpu.text()).toMatch(/GPU use: jobs run on 1 GPU\(s\) \(NVIDIA GeForce RTX 4090\)/);

    const none = capture();
    expect(
      await doctorCommand(opts, none.out, { detect: gpusFrom('not-installed'), resolve: resolver(false) }),
    ).toBe(0);
    expect((none.json() as { gpuUse: { code: string } }).gpuUse.code).toBe('NO_GPU');

    const chosen = capture();
    expect(
      await doctorCommand({ ...opts, backend: 'wasm' }, chosen.out, {
        detect: gpusFrom('h100-8x'),
        resolve: resolver(false),
      }),
    ).toBe(0);
    expect((chosen.json() as { gpuUse: { code: string } }).gpuUse.code).toBe('GPU_UNUSED_BY_CHOICE');
  });

  it('a driver nvidia-smi cannot talk to is a failure too', async () => {
    const v = gpuUseVerdict(await gpusFrom('driver-error')(), {
      name: 'wasm',
      gflops: 3,
      fallbacks: [],
      warnings: [],
    });
    expect(v).toMatchObject({ ok: false, code: 'GPU_UNUSED' });
  });
});

/**
 * Dawn's Vulkan adapter on an H100 (the shape of GPUAdapterInfo; not recorded on hardware). Jobs on it
 * are simulated by the cpu backend: what is under test is doctor's reasoning, not the GPU.
 */
const H100_VULKAN: WebgpuAdapterInfo = {
  vendor: 'nvidia',
  architecture: 'hopper',
  device: 'NVIDIA H100 80GB HBM3',
  description: 'NVIDIA: 535.129.03',
  dawnBackend: 'default',
  software: false,
};
const webgpuOnH100 = {
  webgpuAdapter: async () => H100_VULKAN,
  load: async () => ({ ...(await loadTf('cpu')), backend: 'webgpu' as const, adapter: H100_VULKAN }),
};

describe('doctor on a CUDA-12-only NVIDIA machine (recorded nvidia-smi, ldconfig and TF load error)', () => {
  it('ldconfig has CUDA 12 and cuDNN 9 only: says why tensorflow-gpu cannot load, uses webgpu, exit 0', async () => {
    const c = capture();
    const code = await doctorCommand(opts, c.out, {
      detect: gpusFrom('h100-8x'),
      resolve: resolver(true, { cudaLibraries: async () => libs('cuda12-only'), ...webgpuOnH100 }),
      webgpu: async () => ({ adapter: H100_VULKAN, attempts: [] }),
    });
    expect(code).toBe(0);
    const text = c.text();
    if (process.env.SHOW_DOCTOR) console.log(text);
    expect(text).toMatch(
      /skipped tensorflow-gpu: missing CUDA libraries: libcudart\.so\.11\.0, .*libcudnn\.so\.8 \(tfjs-node-gpu 4\.22 \(TensorFlow 2\.9\.1\) is built for CUDA 11\.2 and cuDNN 8\.1/,
    );
    expect(text).toMatch(
      /this machine has CUDA 12 \(libcudart\.so\.12\) and cuDNN 9 \(libcudnn\.so\.9\), which it cannot use/,
    );
    expect(text).toMatch(
      /GPU use: jobs run on the GPU through WebGPU: nvidia hopper NVIDIA H100 80GB HBM3 .*via default \(8 NVIDIA GPU\(s\): NVIDIA H100 80GB HBM3\)/,
    );
    expect(text).toMatch(/- webgpu is used instead: jobs run on nvidia hopper/);
    expect(text).toMatch(
      /- to use CUDA too, install the CUDA 11\.2 runtime and cuDNN 8\.1 beside the newer CUDA/,
    );
    expect(text).not.toMatch(/FAIL/);
    const json = c.json() as { backend: { name: string }; gpuUse: { code: string; notes: string[] } };
    expect(json.backend.name).toBe('webgpu');
    expect(json.gpuUse.code).toBe('GPU_IN_USE');
  });

  it('libraries look present (libcudart.so.12 linked as .so.11.0) but TensorFlow fails to load them: same story from its log', async () => {
    // The workaround of tensorflow/tfjs#8362: every soname found on LD_LIBRARY_PATH, then the recorded load error.
    const linked = scanLibraryPath('/usr/local/cuda/lib64', () => [
      'libcuda.so.1',
      'libcudart.so.11.0',
      'libcublas.so.11',
      'libcublasLt.so.11',
      'libcufft.so.10',
      'libcurand.so.10',
      'libcusolver.so.11',
      'libcusparse.so.11',
      'libcudnn.so.8',
    ]);
    const c = capture();
    const code = await doctorCommand(opts, c.out, {
      detect: gpusFrom('h100-8x'),
      resolve: resolver(true, {
        cudaLibraries: async () => checkCudaLibraries('', linked, 'x86-64'),
        probeGpu: async () => ({ ...probe('cuda12-only'), result: null, exitCode: 0 }),
        ...webgpuOnH100,
      }),
      webgpu: async () => ({ adapter: H100_VULKAN, attempts: [] }),
    });
    expect(code).toBe(0);
    expect(c.text()).toMatch(
      /skipped tensorflow-gpu: TensorFlow could not load libcudart\.so\.11\.0, libcublas\.so\.11, .*libcudnn\.so\.8 and fell back to the CPU/,
    );
    expect(c.text()).toMatch(/built for CUDA 11\.2 and cuDNN 8\.1/);
    expect(c.text()).toMatch(/GPU use: jobs run on the GPU through WebGPU/);
  });

  it('the same machine without a hardware WebGPU adapter (no Vulkan driver): a loud failure', async () => {
    const c = capture();
    const code = await doctorCommand(opts, c.out, {
      detect: gpusFrom('h100-8x'),
      resolve: resolver(true, {
        cudaLibraries: async () => libs('cuda12-only'),
        webgpuAdapter: async () => ({ ...H100_VULKAN, device: 'llvmpipe', software: true }),
      }),
    });
    expect(code).toBe(1);
    expect(c.text()).toMatch(
      /FAIL \[GPU_UNUSED\]: 8 GPU\(s\) \(NVIDIA H100 80GB HBM3\) detected, but jobs would run on wasm/,
    );
    expect(c.text()).toMatch(/built for CUDA 11\.2 and cuDNN 8\.1/);
  });
});

describe('doctor --json on a forced backend that does not work', () => {
  it('still prints one document naming the backend and why', async () => {
    const c = capture();
    const code = await doctorCommand({ ...opts, backend: 'tensorflow-gpu' }, c.out, {
      detect: gpusFrom('not-installed'),
      resolve: resolver(false),
      webgpu: async () => ({ adapter: null, attempts: [], error: 'not probed' }),
    });
    expect(code).toBe(1);
    expect(c.json()).toMatchObject({
      backend: null,
      ok: false,
      tried: [{ name: 'tensorflow-gpu', ok: false, reason: expect.stringMatching(/is not installed/) }],
    });
  });
});
