import {
  BACKEND_PACKAGES,
  describeWebgpuAdapter,
  loadTf,
  requestWebgpuAdapter,
  resolvePackage,
  type LoadedTf,
  type WebgpuAdapterInfo,
} from '@gpumesh/compute';
import { BACKENDS, type Backend } from '@gpumesh/protocol';

import { runCommand, type CommandRunner } from './command.js';
import {
  explainCudaVersionMismatch,
  explainTfGpuLog,
  parseTfGpuLog,
  probeCudaLibraries,
  type CudaLibraryCheck,
  type TfGpuLog,
} from './cuda-libs.js';
import { detectGpus, type GpuDetection } from './gpu-detect.js';
import { checkMatmul, timeMatmul } from './matmul-check.js';

export interface BackendFallback {
  readonly name: Backend;
  readonly reason: string;
}

/** The backend this agent runs jobs on, and the evidence that it works. */
export interface BackendReport {
  readonly name: Backend;
  /** Version of the package that provides it. */
  readonly version: string;
  /** Sustained float32 matmul GFLOP/s measured while proving (0 when not measured). */
  readonly gflops: number;
  /** A timed matmul ran on it and matched the plain-JS reference. */
  readonly proven: boolean;
  /** Better backends that were skipped, best first, and why. */
  readonly fallbacks: readonly BackendFallback[];
  readonly warnings: readonly string[];
  /** Largest relative error of the check matmul against the reference. */
  readonly maxRelError?: number;
  /** Side of the square matmul timed for `gflops`. */
  readonly benchSize?: number;
  /** wasm only. */
  readonly simd?: boolean;
  readonly threads?: boolean;
  /** wasm: the kernel of large float32 matmuls ('gemm', or tfjs's own 'xnnpack'); webgpu: 'gpumesh' or 'tfjs'. */
  readonly matmulKernel?: string;
  /** tensorflow-gpu only: the GPU device TensorFlow created. */
  readonly devices?: readonly string[];
  /** webgpu only: the adapter Dawn opened (a software one is never advertised as a GPU). */
  readonly adapter?: WebgpuAdapterInfo;
}

export class BackendUnavailableError extends Error {
  constructor(
    readonly backend: Backend,
    readonly reason: string,
  ) {
    super(`backend ${backend} is not available: ${reason}`);
    this.name = 'BackendUnavailableError';
  }
}

/** Result of running tfjs-node-gpu in a child process (its TF log on stderr tells where ops ran). */
export interface GpuProbeResult {
  readonly exitCode: number | null;
  /** Parsed stdout of the probe script, or null when it printed nothing usable. */
  readonly result: { ok: boolean; maxRelError: number; gflops: number; version: string } | null;
  readonly stderr: string;
}

export interface ResolveBackendOptions {
  /** Only try this backend (else `env.GPUMESH_BACKEND`); throws `BackendUnavailableError` if it fails. */
  readonly force?: Backend;
  readonly env?: NodeJS.ProcessEnv;
  /** Known GPU detection (else nvidia-smi is run when tensorflow-gpu is considered). */
  readonly gpus?: GpuDetection;
  readonly run?: CommandRunner;
  /** Where a package's entry is, or null when not installed (injectable for tests). */
  readonly resolvePackage?: (pkg: string) => string | null;
  /** Runs tfjs-node-gpu in a child process (injectable for tests). */
  readonly probeGpu?: (entry: string) => Promise<GpuProbeResult>;
  /** CUDA library check (injectable for tests; default runs `ldconfig -p`). */
  readonly cudaLibraries?: () => Promise<CudaLibraryCheck>;
  /** Side of the timed matmul (default 512; 256 on the plain cpu backend). */
  readonly benchSize?: number;
  /** Minimum time spent timing, ms (default 150). */
  readonly benchMinMs?: number;
  /** The adapter Dawn would open (injectable for tests; default asks Dawn). */
  readonly webgpuAdapter?: () => Promise<WebgpuAdapterInfo>;
  /** Loads a backend in this thread (injectable for tests; default `loadTf`). */
  readonly load?: (backend: Backend) => Promise<LoadedTf>;
}

/** The backend named by `GPUMESH_BACKEND`, or undefined; throws on an unknown name. */
export function backendFromEnv(env: NodeJS.ProcessEnv = process.env): Backend | undefined {
  const v = env.GPUMESH_BACKEND?.trim();
  if (v === undefined || v === '' || v === 'auto') return undefined;
  if (!(BACKENDS as readonly string[]).includes(v)) {
    throw new Error(`GPUMESH_BACKEND=${v} is not one of auto, ${BACKENDS.join(', ')}`);
  }
  return v as Backend;
}

type Attempt =
  { ok: true; report: Omit<BackendReport, 'fallbacks'> } | { ok: false; reason: string; warnings?: string[] };

/** Proves a backend loaded in this thread: reference check, then a timed matmul. */
export async function proveLoadedBackend(
  loaded: LoadedTf,
  benchSize?: number,
  benchMinMs = 150,
): Promise<Omit<BackendReport, 'fallbacks'>> {
  const warnings: string[] = [];
  const check = await checkMatmul(loaded.tf);
  const n = benchSize ?? (loaded.backend === 'cpu' ? 256 : 512);
  const timing = check.ok ? await timeMatmul(loaded.tf, n, { minMs: benchMinMs }) : null;
  if (loaded.backend === 'wasm') {
    if (loaded.simd === false) warnings.push('WASM SIMD is off: matmul runs about 3-4x slower than it could');
    if (loaded.threads === true) warnings.push('WASM threads are on (unexpected in Node)');
  }
  if (loaded.adapter?.software === true) {
    warnings.push(
      `WebGPU adapter ${describeWebgpuAdapter(loaded.adapter)} renders on the CPU: advertised as CPU-class, not as a GPU`,
    );
  }
  return {
    name: loaded.backend,
    version: loaded.version,
    gflops: timing ? Math.round(timing.gflops * 10) / 10 : 0,
    proven: check.ok,
    maxRelError: check.maxRelError,
    benchSize: n,
    warnings,
    ...(loaded.simd === undefined
      ? {}
      : { simd: loaded.simd, threads: loaded.threads, matmulKernel: loaded.matmulKernel }),
    ...(loaded.adapter === undefined
      ? {}
      : { adapter: loaded.adapter, matmulKernel: loaded.webgpuMatmulKernel }),
  };
}

/**
 * In automatic choice, a software WebGPU adapter (Mesa's llvmpipe, SwiftShader…) is passed over: the
 * native and wasm CPU backends beat it. `--backend webgpu` still uses it.
 */
async function webgpuAdapterRefusal(
  adapter: () => Promise<WebgpuAdapterInfo> = async () => (await requestWebgpuAdapter()).info,
): Promise<string | null> {
  try {
    const info = await adapter();
    if (!info.software) return null;
    return `software adapter ${describeWebgpuAdapter(info)}: slower than the CPU backends (force it with --backend webgpu)`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

const GPU_PROBE_SCRIPT = `
const entry = process.argv[1];
const mod = await import(entry);
const tf = typeof mod.setBackend === 'function' ? mod : mod.default;
await tf.setBackend('tensorflow');
const m = 67, k = 129, n = 95;
const rnd = (len, seed) => { const a = new Float32Array(len); let s = seed; for (let i = 0; i < len; i++) { s = (s * 1103515245 + 12345) % 2147483648; a[i] = s / 1073741824 - 1; } return a; };
const a = rnd(m * k, 7), b = rnd(k * n, 11);
const got = await tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n])).data();
let err = 0;
for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) { let s = 0; for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j]; err = Math.max(err, Math.abs(got[i * n + j] - s) / (1 + Math.abs(s))); }
const N = 2048, x = tf.randomNormal([N, N]), y = tf.randomNormal([N, N]);
await tf.matMul(x, y).data();
const t0 = performance.now(); let it = 0;
while (performance.now() - t0 < 300 || it < 3) { await tf.matMul(x, y).data(); it++; }
const ms = performance.now() - t0;
process.stdout.write(JSON.stringify({ ok: err < 1e-3, maxRelError: err, gflops: 2 * N ** 3 * it / ms / 1e6, version: tf.version['tfjs-node'] ?? tf.version['tfjs-core'] }));
`;

/** Runs tfjs-node-gpu (at `entry`) in a child process with TF logging on. UNVERIFIED ON HARDWARE. */
export function childGpuProbe(run: CommandRunner = runCommand): (entry: string) => Promise<GpuProbeResult> {
  return async (entry) => {
    const out = await run(process.execPath, ['--input-type=module', '-e', GPU_PROBE_SCRIPT, entry], {
      timeoutMs: 120_000,
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '0' },
    });
    let result: GpuProbeResult['result'] = null;
    try {
      result = JSON.parse(out.stdout.trim().split('\n').pop() ?? '') as GpuProbeResult['result'];
    } catch {
      result = null;
    }
    return { exitCode: out.exitCode, result, stderr: out.stderr };
  };
}

/**
 * Decides whether tfjs-node-gpu really runs on a GPU, from the GPU detection, the CUDA libraries the
 * dynamic loader can see, and the child-process probe (its TF log). tfjs-node-gpu silently falls back
 * to the CPU when libcudart/libcudnn are missing, so a run alone proves nothing. UNVERIFIED ON HARDWARE.
 */
export function assessTensorflowGpu(input: {
  gpus: GpuDetection;
  libraries?: CudaLibraryCheck;
  probe?: GpuProbeResult;
}):
  | { ok: true; devices: string[]; warnings: string[]; log: TfGpuLog }
  | { ok: false; reason: string; warnings: string[] } {
  const { gpus, libraries, probe } = input;
  if (gpus.status !== 'ok') {
    return { ok: false, reason: `${gpus.message}${gpus.hint ? ` (${gpus.hint})` : ''}`, warnings: [] };
  }
  if (libraries && libraries.missing.length > 0) {
    const missing = libraries.missing.map((l) => l.soname);
    const mismatch =
      libraries.otherVersions.length > 0
        ? explainCudaVersionMismatch(missing, libraries.otherVersions)
        : null;
    return {
      ok: false,
      reason: `missing CUDA libraries: ${missing.join(', ')}${mismatch === null ? '' : ` (${mismatch})`}`,
      warnings: [...libraries.advice],
    };
  }
  if (!probe) return { ok: false, reason: 'tfjs-node-gpu was not probed', warnings: [] };
  const log = parseTfGpuLog(probe.stderr);
  const why = explainTfGpuLog(log);
  if (why !== null) return { ok: false, reason: why, warnings: [] };
  if (probe.result === null || probe.exitCode !== 0) {
    return {
      ok: false,
      reason: `the tfjs-node-gpu probe failed (exit ${probe.exitCode ?? 'none'})`,
      warnings: [],
    };
  }
  if (!probe.result.ok) {
    return {
      ok: false,
      reason: `tfjs-node-gpu computed a wrong matmul (max relative error ${probe.result.maxRelError})`,
      warnings: [],
    };
  }
  const warnings: string[] = [];
  const newest = Math.max(...gpus.gpus.map((g) => Number(g.computeCapability ?? '0')));
  if (newest > 8.6) {
    warnings.push(
      `compute capability ${newest}: TensorFlow 2.9.1 ships kernels up to sm_86, so CUDA JIT-compiles PTX on first use (slow first job; cache in ~/.nv/ComputeCache)`,
    );
  }
  if (gpus.gpus.length > 1) {
    warnings.push(
      `${gpus.gpus.length} GPUs: tfjs-node places ops on GPU:0 and worker threads share one process, so extra GPUs need one agent per GPU (CUDA_VISIBLE_DEVICES)`,
    );
  }
  return { ok: true, devices: [...log.gpuDevices], warnings, log };
}

async function tryTensorflowGpu(
  opts: ResolveBackendOptions,
  resolve: (p: string) => string | null,
): Promise<Attempt> {
  const pkg = BACKEND_PACKAGES['tensorflow-gpu'];
  const entry = resolve(pkg);
  if (entry === null) {
    return {
      ok: false,
      reason: `${pkg} is not installed (optional dependency; its install downloads libtensorflow)`,
    };
  }
  const run = opts.run ?? runCommand;
  const gpus = opts.gpus ?? (await detectGpus({ run }));
  const early = (v: ReturnType<typeof assessTensorflowGpu>): Attempt =>
    v.ok ? { ok: false, reason: 'tfjs-node-gpu was not probed' } : v;
  if (gpus.status !== 'ok') return early(assessTensorflowGpu({ gpus }));
  const libraries = await (opts.cudaLibraries ?? (() => probeCudaLibraries(run)))();
  if (libraries.missing.length > 0) return early(assessTensorflowGpu({ gpus, libraries }));
  const probe = await (opts.probeGpu ?? childGpuProbe(run))(entry);
  const verdict = assessTensorflowGpu({ gpus, libraries, probe });
  if (!verdict.ok || probe.result === null) return early(verdict);
  return {
    ok: true,
    report: {
      name: 'tensorflow-gpu',
      version: probe.result.version,
      gflops: Math.round(probe.result.gflops * 10) / 10,
      proven: true,
      maxRelError: probe.result.maxRelError,
      benchSize: 2048,
      warnings: verdict.warnings,
      devices: verdict.devices,
    },
  };
}

async function tryInProcess(
  name: Backend,
  opts: ResolveBackendOptions,
  resolve: (p: string) => string | null,
): Promise<Attempt> {
  const pkg = BACKEND_PACKAGES[name];
  if (resolve(pkg) === null) {
    return {
      ok: false,
      reason:
        name === 'tensorflow'
          ? `${pkg} is not installed (optional dependency; its install downloads libtensorflow)`
          : `${pkg} is not installed`,
    };
  }
  if (name === 'webgpu' && opts.force !== 'webgpu' && resolve('webgpu') !== null) {
    const refusal = await webgpuAdapterRefusal(opts.webgpuAdapter);
    if (refusal !== null) return { ok: false, reason: refusal };
  }
  if (name === 'webgpu' && resolve('webgpu') === null) {
    return { ok: false, reason: 'webgpu (Dawn) is not installed' };
  }
  try {
    const loaded = await (opts.load ?? loadTf)(name);
    const report = await proveLoadedBackend(loaded, opts.benchSize, opts.benchMinMs);
    if (!report.proven) {
      return { ok: false, reason: `matmul check failed (max relative error ${report.maxRelError})` };
    }
    return { ok: true, report };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Picks the best working tfjs backend in the order tensorflow-gpu → webgpu → tensorflow → wasm → cpu (or the
 * forced one), loads it in this thread and proves it with a checked, timed matmul.
 */
export async function resolveBackend(opts: ResolveBackendOptions = {}): Promise<BackendReport> {
  const forced = opts.force ?? backendFromEnv(opts.env ?? process.env);
  const resolve = opts.resolvePackage ?? resolvePackage;
  const candidates: readonly Backend[] = forced ? [forced] : BACKENDS;
  const fallbacks: BackendFallback[] = [];
  const warnings: string[] = [];
  for (const name of candidates) {
    const attempt =
      name === 'tensorflow-gpu'
        ? await tryTensorflowGpu(opts, resolve)
        : await tryInProcess(name, { ...opts, force: forced }, resolve);
    if (attempt.ok) {
      return { ...attempt.report, fallbacks, warnings: [...warnings, ...attempt.report.warnings] };
    }
    if (forced) throw new BackendUnavailableError(name, attempt.reason);
    fallbacks.push({ name, reason: attempt.reason });
    warnings.push(...(attempt.warnings ?? []));
  }
  throw new BackendUnavailableError('cpu', 'no backend works');
}
