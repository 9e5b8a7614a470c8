// `doctor`'s verdict on GPU use: a box with NVIDIA GPUs whose jobs would run on wasm or the CPU (the
// optional tfjs-node-gpu install failed silently, or CUDA libraries are missing) earns a fraction of
// what it could while advertising a backend nobody wants. That is a failure, said loudly, with the fix.
import { BACKEND_PACKAGES, describeWebgpuAdapter } from '@gpumesh/compute';
import type { Backend } from '@gpumesh/protocol';
import type { BackendReport } from './backend.js';
import type { GpuDetection } from './gpu-detect.js';

/** The tfjs-node(-gpu) version the agent is built against (apps/provider-agent/package.json optionalDependencies). */
export const TFJS_NODE_VERSION = '4.22.0';

export type GpuUseCode =
  /** No NVIDIA GPU here: the CPU/wasm backend is right. */
  | 'NO_GPU'
  /** Jobs run on the GPU. */
  | 'GPU_IN_USE'
  /** GPUs are present and the owner chose a non-GPU backend (--backend / GPUMESH_BACKEND). */
  | 'GPU_UNUSED_BY_CHOICE'
  /** GPUs are present, or nvidia-smi cannot talk to the driver, and jobs would not run on them. */
  | 'GPU_UNUSED';

export interface GpuUseVerdict {
  readonly ok: boolean;
  readonly code: GpuUseCode;
  readonly message: string;
  /** What to do, one step a line (empty when ok). */
  readonly fix: readonly string[];
  /** Said beside an ok verdict: why a better backend is not used, and how to get it. */
  readonly notes?: readonly string[];
}

/** The command that installs the GPU backend into a global `@gpumesh/agent` install. */
export function gpuInstallCommand(): string {
  const pkg = BACKEND_PACKAGES['tensorflow-gpu'];
  return `cd "$(npm root -g)/@gpumesh/agent" && npm install --foreground-scripts ${pkg}@${TFJS_NODE_VERSION}`;
}

/** Decides whether this box uses its GPUs (see `GpuUseCode`). */
export function gpuUseVerdict(
  gpus: GpuDetection,
  report: Pick<BackendReport, 'name' | 'gflops' | 'fallbacks' | 'warnings' | 'adapter'>,
  forced?: Backend,
): GpuUseVerdict {
  if (report.name === 'webgpu' && report.adapter !== undefined && !report.adapter.software) {
    // A hardware adapter through Dawn (Vulkan, Metal, D3D12): the GPU is used, without CUDA.
    const nvidia =
      gpus.status === 'ok' && gpus.gpus.length > 0
        ? ` (${gpus.gpus.length} NVIDIA GPU(s): ${[...new Set(gpus.gpus.map((g) => g.model))].join(', ')})`
        : '';
    const notes: string[] = [];
    const cuda = report.fallbacks.find((f) => f.name === 'tensorflow-gpu');
    if (nvidia !== '' && cuda !== undefined) {
      notes.push(`tensorflow-gpu (CUDA) cannot be used: ${cuda.reason}`);
      notes.push(
        `webgpu is used instead: jobs run on ${describeWebgpuAdapter(report.adapter)}; nothing to fix`,
        'to use CUDA too, install the CUDA 11.2 runtime and cuDNN 8.1 beside the newer CUDA ' +
          "(`apt-get install -y cuda-cudart-11-2 libcublas-11-2 libcufft-11-2 libcurand-11-2 libcusolver-11-2 libcusparse-11-2 libcudnn8=8.1.1.33-1+cuda11.2` from NVIDIA's repository), then run doctor again",
      );
    }
    return {
      ok: true,
      code: 'GPU_IN_USE',
      message: `jobs run on the GPU through WebGPU: ${describeWebgpuAdapter(report.adapter)}${nvidia}`,
      fix: [],
      ...(notes.length > 0 ? { notes } : {}),
    };
  }
  if (gpus.status === 'driver-error') {
    return {
      ok: false,
      code: 'GPU_UNUSED',
      message: `nvidia-smi is installed but cannot use the GPU driver: ${gpus.message}`,
      fix: [
        gpus.hint ??
          'reinstall or reload the NVIDIA driver (a reboot after a driver upgrade), then run doctor again',
      ],
    };
  }
  if (gpus.status !== 'ok' || gpus.gpus.length === 0) {
    return { ok: true, code: 'NO_GPU', message: `no NVIDIA GPU: ${gpus.message}`, fix: [] };
  }
  const models = [...new Set(gpus.gpus.map((g) => g.model))].join(', ');
  const present = `${gpus.gpus.length} GPU(s) (${models})`;
  if (report.name === 'tensorflow-gpu') {
    return { ok: true, code: 'GPU_IN_USE', message: `jobs run on ${present}`, fix: [] };
  }
  const unused = `${present} detected, but jobs would run on ${report.name} at ${report.gflops.toFixed(1)} GFLOP/s`;
  if (forced !== undefined && forced !== 'tensorflow-gpu') {
    return {
      ok: true,
      code: 'GPU_UNUSED_BY_CHOICE',
      message: `${unused}: the backend was forced to ${forced}`,
      fix: [],
    };
  }
  const pkg = BACKEND_PACKAGES['tensorflow-gpu'];
  const why =
    report.fallbacks.find((f) => f.name === 'tensorflow-gpu')?.reason ?? 'tensorflow-gpu was not tried';
  const fix: string[] = [];
  if (why.includes('not installed')) {
    fix.push(
      `${pkg} is not installed: npm skips an optional dependency whose install fails (it downloads libtensorflow, Linux x64 only), without a word`,
      `install it and watch its output: ${gpuInstallCommand()}`,
    );
  } else {
    fix.push(`${pkg} cannot use the GPU: ${why}`);
  }
  const cuda = report.warnings.filter((w) => /CUDA|cuDNN|libcu|LD_LIBRARY_PATH|driver/i.test(w));
  fix.push(
    ...(cuda.length > 0
      ? cuda
      : [
          `${pkg} ${TFJS_NODE_VERSION} (TensorFlow 2.9.1) needs the CUDA 11.2 runtime and cuDNN 8.1 (libcudart.so.11.0, libcublas.so.11, libcudnn.so.8 …) visible to the loader (ldconfig or LD_LIBRARY_PATH)`,
        ]),
    'then run `gpumesh-agent doctor` again; to rent out the CPU on purpose instead, pass --backend wasm',
  );
  return { ok: false, code: 'GPU_UNUSED', message: unused, fix };
}
