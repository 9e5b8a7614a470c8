// The CUDA side of backend resolution. UNVERIFIED ON HARDWARE: this workplace has no GPU, no driver
// and no tfjs-node-gpu (its install downloads libtensorflow, which cannot be fetched here). The logic is
// unit-tested against recorded `ldconfig -p` outputs and TensorFlow logs in test-fixtures/.
import { readdirSync } from 'node:fs';

import { runCommand, type CommandRunner } from './command.js';

/**
 * A shared library libtensorflow 2.9.1 (inside @tensorflow/tfjs-node-gpu 4.22) dlopens for its GPU
 * device, built against CUDA 11.2 and cuDNN 8.1. Any CUDA 11.x ≥ 11.2 runtime provides these sonames.
 */
export interface CudaLibrary {
  readonly soname: string;
  /** What it is. */
  readonly role: string;
  /** Debian/Ubuntu package from NVIDIA's CUDA apt repository that ships it. */
  readonly aptPackage: string;
  readonly docs: string;
}

const CUDA_DOCS =
  'https://docs.nvidia.com/cuda/cuda-installation-guide-linux/ (CUDA 11.2 archive: https://developer.nvidia.com/cuda-11.2.2-download-archive)';
const CUDNN_DOCS = 'https://docs.nvidia.com/deeplearning/cudnn/archives/cudnn-810/install-guide/';
const DRIVER_DOCS = 'https://docs.nvidia.com/datacenter/tesla/tesla-installation-notes/';

/** Libraries tfjs-node-gpu 4.22 (TF 2.9.1, CUDA 11.2, cuDNN 8.1) needs, in the order TF loads them. */
export const TFJS_NODE_GPU_LIBRARIES: readonly CudaLibrary[] = [
  {
    soname: 'libcuda.so.1',
    role: 'NVIDIA driver API',
    aptPackage: 'libnvidia-compute-<driver major>, e.g. libnvidia-compute-535 (comes with nvidia-driver-535)',
    docs: DRIVER_DOCS,
  },
  { soname: 'libcudart.so.11.0', role: 'CUDA 11 runtime', aptPackage: 'cuda-cudart-11-2', docs: CUDA_DOCS },
  { soname: 'libcublas.so.11', role: 'cuBLAS 11', aptPackage: 'libcublas-11-2', docs: CUDA_DOCS },
  { soname: 'libcublasLt.so.11', role: 'cuBLASLt 11', aptPackage: 'libcublas-11-2', docs: CUDA_DOCS },
  { soname: 'libcufft.so.10', role: 'cuFFT 10', aptPackage: 'libcufft-11-2', docs: CUDA_DOCS },
  { soname: 'libcurand.so.10', role: 'cuRAND 10', aptPackage: 'libcurand-11-2', docs: CUDA_DOCS },
  { soname: 'libcusolver.so.11', role: 'cuSOLVER 11', aptPackage: 'libcusolver-11-2', docs: CUDA_DOCS },
  { soname: 'libcusparse.so.11', role: 'cuSPARSE 11', aptPackage: 'libcusparse-11-2', docs: CUDA_DOCS },
  {
    soname: 'libcudnn.so.8',
    role: 'cuDNN 8 (8.1+)',
    aptPackage: 'libcudnn8=8.1.1.33-1+cuda11.2',
    docs: CUDNN_DOCS,
  },
];

export interface LdconfigEntry {
  readonly soname: string;
  readonly flags: string;
  readonly path: string;
}

/** Parses `ldconfig -p` ("\tlibcudart.so.11.0 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.11.0"). */
export function parseLdconfig(text: string): LdconfigEntry[] {
  const entries: LdconfigEntry[] = [];
  const re = /^\s*(\S+)\s+\(([^)]*)\)(?:\s+OS ABI:[^=]*)?\s*=>\s*(\S.*?)\s*$/;
  for (const line of text.split(/\r?\n/)) {
    const m = re.exec(line);
    if (m) entries.push({ soname: m[1], flags: m[2], path: m[3] });
  }
  return entries;
}

/** The ldconfig arch flag of this host's native libraries (`x86-64`, `AArch64`). */
export function ldconfigArch(arch: string = process.arch): string | null {
  return arch === 'x64' ? 'x86-64' : arch === 'arm64' ? 'AArch64' : null;
}

export interface CudaLibraryCheck {
  readonly found: readonly { readonly soname: string; readonly path: string }[];
  readonly missing: readonly CudaLibrary[];
  /** Sonames of other CUDA major versions seen (e.g. libcudart.so.12), which TF 2.9.1 cannot use. */
  readonly otherVersions: readonly string[];
  /** Human-readable install instructions for the missing libraries; empty when nothing is missing. */
  readonly advice: readonly string[];
}

/**
 * Checks which libraries tfjs-node-gpu needs are visible to the dynamic loader: in the `ldconfig -p`
 * cache or in an `LD_LIBRARY_PATH` directory (`extraFiles`: sonames found there).
 */
export function checkCudaLibraries(
  ldconfigOutput: string,
  extraFiles: readonly { soname: string; path: string }[] = [],
  arch: string | null = ldconfigArch(),
): CudaLibraryCheck {
  const entries = parseLdconfig(ldconfigOutput).filter(
    (e) => arch === null || e.flags.split(',').includes(arch),
  );
  const all = [...entries, ...extraFiles];
  const found: { soname: string; path: string }[] = [];
  const missing: CudaLibrary[] = [];
  for (const lib of TFJS_NODE_GPU_LIBRARIES) {
    const hit = all.find((e) => e.soname === lib.soname);
    if (hit) found.push({ soname: lib.soname, path: hit.path });
    else missing.push(lib);
  }
  const wanted = new Set(TFJS_NODE_GPU_LIBRARIES.map((l) => l.soname));
  const otherVersions = [
    ...new Set(
      all
        .map((e) => e.soname)
        .filter((s) => /^lib(cudart|cublas|cublasLt|cudnn|cufft|curand|cusolver|cusparse)\.so\.\d/.test(s))
        .filter((s) => !wanted.has(s)),
    ),
  ].sort();
  return { found, missing, otherVersions, advice: cudaAdvice(missing, otherVersions) };
}

function cudaAdvice(missing: readonly CudaLibrary[], otherVersions: readonly string[]): string[] {
  if (missing.length === 0) return [];
  const advice: string[] = [];
  const driver = missing.find((l) => l.soname === 'libcuda.so.1');
  if (driver) {
    advice.push(
      `libcuda.so.1 (the NVIDIA driver's CUDA library) is missing: install the NVIDIA driver (${driver.aptPackage}); see ${driver.docs}`,
    );
  }
  const cuda = missing.filter((l) => l.soname !== 'libcuda.so.1' && l.soname !== 'libcudnn.so.8');
  if (cuda.length > 0) {
    const pkgs = [...new Set(cuda.map((l) => l.aptPackage))].join(' ');
    advice.push(
      `missing CUDA 11 libraries ${cuda.map((l) => l.soname).join(', ')}: add NVIDIA's CUDA apt repository ` +
        `(cuda-keyring) and run \`apt-get install -y ${pkgs}\`, or install the CUDA 11.2 toolkit; see ${CUDA_DOCS}`,
    );
  }
  const cudnn = missing.find((l) => l.soname === 'libcudnn.so.8');
  if (cudnn) {
    advice.push(
      `libcudnn.so.8 (cuDNN 8) is missing: \`apt-get install -y ${cudnn.aptPackage}\` from NVIDIA's repository, or the cuDNN 8.1 tarball for CUDA 11.2; see ${cudnn.docs}`,
    );
  }
  if (otherVersions.length > 0) {
    advice.push(
      `found ${otherVersions.join(', ')}: tfjs-node-gpu 4.22 (TensorFlow 2.9.1) needs the CUDA 11 / cuDNN 8 sonames; ` +
        'CUDA 11 libraries can be installed beside newer ones',
    );
  }
  advice.push(
    'libraries outside the ldconfig cache must be on LD_LIBRARY_PATH (e.g. /usr/local/cuda-11.2/lib64) or registered with `ldconfig`',
  );
  return advice;
}

/** Sonames of the wanted libraries present in the `LD_LIBRARY_PATH` directories. */
export function scanLibraryPath(
  ldLibraryPath: string | undefined,
  list: (dir: string) => readonly string[] = (dir) => readdirSync(dir),
): { soname: string; path: string }[] {
  const wanted = new Set(TFJS_NODE_GPU_LIBRARIES.map((l) => l.soname));
  const hits: { soname: string; path: string }[] = [];
  for (const dir of (ldLibraryPath ?? '').split(':').filter((d) => d !== '')) {
    let files: readonly string[];
    try {
      files = list(dir);
    } catch {
      continue;
    }
    for (const f of files) if (wanted.has(f)) hits.push({ soname: f, path: `${dir}/${f}` });
  }
  return hits;
}

/** Runs `ldconfig -p` (also tried as /sbin/ldconfig) and checks the CUDA libraries. */
export async function probeCudaLibraries(
  run: CommandRunner = runCommand,
  ldLibraryPath: string | undefined = process.env.LD_LIBRARY_PATH,
): Promise<CudaLibraryCheck & { readonly ldconfigOk: boolean }> {
  let out = await run('ldconfig', ['-p'], { timeoutMs: 5_000 });
  if (out.errorCode === 'ENOENT') out = await run('/sbin/ldconfig', ['-p'], { timeoutMs: 5_000 });
  return {
    ...checkCudaLibraries(out.exitCode === 0 ? out.stdout : '', scanLibraryPath(ldLibraryPath)),
    ldconfigOk: out.exitCode === 0,
  };
}

/** What TensorFlow's own log says about its GPU device (TF_CPP_MIN_LOG_LEVEL=0 on stderr). */
export interface TfGpuLog {
  /** `/device:GPU:n` devices TF created, with the name it printed. */
  readonly gpuDevices: readonly string[];
  /** Sonames TF reported it could not dlopen. */
  readonly missingLibraries: readonly string[];
  /** TF said "Skipping registering GPU devices" (it runs on the CPU). */
  readonly skippedGpu: boolean;
  /** `cuInit` failed (no device, driver problem) with this CUDA error. */
  readonly cuInitError: string | null;
}

/** Parses the stderr of a process that loaded libtensorflow with GPU support. */
export function parseTfGpuLog(stderr: string): TfGpuLog {
  const gpuDevices: string[] = [];
  const missing = new Set<string>();
  for (const m of stderr.matchAll(/Could not load dynamic library '([^']+)'/g)) missing.add(m[1]);
  for (const m of stderr.matchAll(/Created device (\S*device:GPU:\d+)[^\n]*?name: ([^,\n]+)/g)) {
    gpuDevices.push(`${m[1]} (${m[2].trim()})`);
  }
  const cu = /failed call to cuInit: ([A-Z_]+[^\n]*)/.exec(stderr);
  return {
    gpuDevices,
    missingLibraries: [...missing],
    skippedGpu: /Skipping registering GPU devices/.test(stderr),
    cuInitError: cu ? cu[1].trim() : null,
  };
}

/** One line explaining why a tfjs-node-gpu process ended up without a GPU, from its TF log. */
export function explainTfGpuLog(log: TfGpuLog): string | null {
  if (log.gpuDevices.length > 0) return null;
  if (log.missingLibraries.length > 0) {
    const libs = log.missingLibraries;
    const known = TFJS_NODE_GPU_LIBRARIES.filter((l) => libs.includes(l.soname));
    const pkgs = [...new Set(known.map((l) => l.aptPackage))];
    const mismatch = explainCudaVersionMismatch(libs);
    return (
      `TensorFlow could not load ${libs.join(', ')} and fell back to the CPU` +
      (pkgs.length > 0 ? `; install: ${pkgs.join(', ')}` : '') +
      (mismatch === null ? '' : ` (${mismatch})`)
    );
  }
  if (log.cuInitError)
    return `TensorFlow's cuInit failed (${log.cuInitError}); check the driver with nvidia-smi`;
  if (log.skippedGpu) return 'TensorFlow skipped registering GPU devices';
  return 'TensorFlow created no GPU device';
}

/** What tfjs-node-gpu 4.22 is built for, in one phrase. */
export const TFJS_NODE_GPU_BUILT_FOR =
  'tfjs-node-gpu 4.22 (TensorFlow 2.9.1) is built for CUDA 11.2 and cuDNN 8.1 and loads only their sonames';

/**
 * Why CUDA libraries of another major version do not help (a CUDA-12-only machine: libcudart.so.12,
 * libcudnn.so.9), or null when none of the CUDA 11 / cuDNN 8 sonames is missing.
 */
export function explainCudaVersionMismatch(
  missing: readonly string[],
  otherVersions: readonly string[] = [],
): string | null {
  const cuda11 = missing.filter((s) =>
    TFJS_NODE_GPU_LIBRARIES.some((l) => l.soname === s && s !== 'libcuda.so.1'),
  );
  if (cuda11.length === 0) return null;
  const major = (prefix: string): number[] =>
    [
      ...new Set(
        otherVersions.flatMap((s) => {
          const m = new RegExp(`^${prefix}\\.so\\.(\\d+)`).exec(s);
          return m ? [Number(m[1])] : [];
        }),
      ),
    ].sort((a, b) => a - b);
  const cudart = major('libcudart');
  const cudnn = major('libcudnn');
  const has = [
    ...(cudart.length > 0
      ? [`CUDA ${cudart.join('/')} (libcudart.so.${cudart.join(', libcudart.so.')})`]
      : []),
    ...(cudnn.length > 0 ? [`cuDNN ${cudnn.join('/')} (libcudnn.so.${cudnn.join(', libcudnn.so.')})`] : []),
  ];
  const here =
    has.length > 0
      ? `this machine has ${has.join(' and ')}, which it cannot use`
      : 'newer CUDA (12.x: libcudart.so.12) or cuDNN (9.x: libcudnn.so.9) does not satisfy it';
  return `${TFJS_NODE_GPU_BUILT_FOR}; ${here}`;
}
