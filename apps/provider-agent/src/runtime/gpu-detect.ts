import { runCommand, type CommandResult, type CommandRunner } from './command.js';

/** One GPU as the agent advertises it. */
export interface GpuInfo {
  readonly index: number;
  readonly model: string;
  /** `GPU-…` UUID from nvidia-smi; null when only systeminformation saw the device. */
  readonly uuid: string | null;
  readonly vramMiB: number;
  readonly driverVersion: string | null;
  /** e.g. "9.0" (H100), "8.0" (A100), "8.9" (RTX 4090); null when unknown. */
  readonly computeCapability: string | null;
  readonly vramUsedMiB?: number;
  readonly utilizationPct?: number;
  readonly vendor: string;
  readonly source: 'nvidia-smi' | 'systeminformation';
}

/**
 * - `ok`: nvidia-smi listed at least one GPU (CUDA is usable as far as the driver goes).
 * - `no-nvidia-tooling`: nvidia-smi is not installed / not on PATH (no NVIDIA driver userspace).
 * - `driver-error`: nvidia-smi exists but failed (driver not loaded, version mismatch, hang).
 * - `no-gpus`: nvidia-smi ran fine and found no devices.
 */
export type GpuDetectStatus = 'ok' | 'no-nvidia-tooling' | 'driver-error' | 'no-gpus';

export interface GpuDetection {
  readonly status: GpuDetectStatus;
  /** GPUs usable through CUDA (from nvidia-smi); empty unless status is `ok`. */
  readonly gpus: readonly GpuInfo[];
  /** Display controllers systeminformation reported when nvidia-smi could not list GPUs. */
  readonly otherControllers: readonly GpuInfo[];
  readonly message: string;
  /** What the operator can do about it. */
  readonly hint?: string;
}

/** The part of `systeminformation.graphics()` this module reads. */
export interface GraphicsControllerLike {
  readonly vendor?: string;
  readonly model?: string;
  readonly vram?: number | null;
  readonly driverVersion?: string;
}
export type GraphicsProbe = () => Promise<{ controllers: readonly GraphicsControllerLike[] }>;

export interface DetectGpusOptions {
  readonly run?: CommandRunner;
  readonly graphics?: GraphicsProbe;
  /** nvidia-smi timeout; a wedged driver can make it hang for minutes. Default 10 s. */
  readonly timeoutMs?: number;
  readonly nvidiaSmi?: string;
}

export const NVIDIA_SMI_FIELDS = [
  'index',
  'name',
  'uuid',
  'memory.total',
  'memory.used',
  'driver_version',
  'compute_cap',
  'utilization.gpu',
] as const;

/** Arguments of the nvidia-smi query; `compute_cap` needs driver ≥ 510, so older drivers get a retry without it. */
export function nvidiaSmiArgs(withComputeCap = true): string[] {
  const fields = NVIDIA_SMI_FIELDS.filter((f) => withComputeCap || f !== 'compute_cap');
  return [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'];
}

function numberOrUndefined(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text.trim());
  return text.trim() !== '' && Number.isFinite(v) ? v : undefined;
}

function textOrNull(text: string | undefined): string | null {
  const t = text?.trim();
  return t === undefined || t === '' || /^\[.*\]$/.test(t) || t === 'N/A' ? null : t;
}

/**
 * Parses `nvidia-smi --query-gpu=<NVIDIA_SMI_FIELDS> --format=csv,noheader,nounits` output.
 * `[N/A]` / `[Not Supported]` fields become null/undefined; lines that do not parse are skipped.
 */
export function parseNvidiaSmiCsv(text: string, withComputeCap = true): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const cols = line.split(',').map((c) => c.trim());
    const expected = withComputeCap ? 8 : 7;
    if (cols.length < expected) continue;
    const [index, name, uuid, total, used, driver] = cols;
    const cc = withComputeCap ? cols[6] : undefined;
    const util = cols[withComputeCap ? 7 : 6];
    const idx = numberOrUndefined(index);
    const vram = numberOrUndefined(total);
    if (idx === undefined || vram === undefined || name === '') continue;
    gpus.push({
      index: idx,
      model: name,
      uuid: textOrNull(uuid),
      vramMiB: vram,
      vramUsedMiB: numberOrUndefined(used),
      driverVersion: textOrNull(driver),
      computeCapability: textOrNull(cc),
      utilizationPct: numberOrUndefined(util),
      vendor: 'NVIDIA',
      source: 'nvidia-smi',
    });
  }
  return gpus;
}

export type NvidiaSmiOutcome =
  | { readonly kind: 'gpus'; readonly gpus: GpuInfo[] }
  | { readonly kind: 'no-gpus'; readonly message: string }
  | { readonly kind: 'not-installed'; readonly message: string }
  | { readonly kind: 'driver-error'; readonly message: string; readonly hint: string }
  | { readonly kind: 'old-driver' };

const DRIVER_HINT =
  'the NVIDIA kernel driver is not working: check `dmesg | grep -i nvidia`, that the driver package matches ' +
  'the running kernel (reinstall e.g. `apt install nvidia-driver-535`, or `dkms autoinstall`), and reboot; ' +
  'in a container run with `--gpus all` (NVIDIA Container Toolkit)';

function firstLine(text: string): string {
  return text.trim().split(/\r?\n/)[0] ?? '';
}

/** Classifies one nvidia-smi run (exit codes per `man nvidia-smi`: 6 no devices, 9 driver not loaded, 12 NVML missing). */
export function classifyNvidiaSmi(result: CommandResult, withComputeCap = true): NvidiaSmiOutcome {
  const output = `${result.stdout}\n${result.stderr}`;
  if (result.errorCode === 'ENOENT' || result.errorCode === 'EACCES') {
    return {
      kind: 'not-installed',
      message: `nvidia-smi is not available (${result.errorCode})`,
    };
  }
  if (result.timedOut) {
    return {
      kind: 'driver-error',
      message: 'nvidia-smi timed out (the driver is probably wedged)',
      hint: DRIVER_HINT,
    };
  }
  if (/Field "compute_cap" is not a valid field/i.test(output)) return { kind: 'old-driver' };
  if (/No devices were found/i.test(output) || result.exitCode === 6) {
    return { kind: 'no-gpus', message: 'nvidia-smi found no NVIDIA GPUs' };
  }
  if (
    result.exitCode !== 0 ||
    /NVIDIA-SMI has failed|Failed to initialize NVML|couldn't communicate with the NVIDIA driver|version mismatch/i.test(
      output,
    )
  ) {
    const mismatch = /version mismatch/i.test(output);
    return {
      kind: 'driver-error',
      message: `nvidia-smi failed (exit ${result.exitCode ?? 'none'}): ${firstLine(output) || 'no output'}`,
      hint: mismatch
        ? 'the loaded kernel module and the user-space NVIDIA libraries differ in version: reboot, or reload the module (`rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia && modprobe nvidia`)'
        : DRIVER_HINT,
    };
  }
  const gpus = parseNvidiaSmiCsv(result.stdout, withComputeCap);
  if (gpus.length === 0) return { kind: 'no-gpus', message: 'nvidia-smi listed no GPUs' };
  return { kind: 'gpus', gpus };
}

async function defaultGraphics(): Promise<{ controllers: readonly GraphicsControllerLike[] }> {
  const si = await import('systeminformation');
  return si.default.graphics();
}

async function otherControllers(graphics: GraphicsProbe): Promise<GpuInfo[]> {
  try {
    const data = await graphics();
    return data.controllers.map((c, i) => ({
      index: i,
      model: c.model?.trim() || 'unknown',
      uuid: null,
      vramMiB: typeof c.vram === 'number' ? c.vram : 0,
      driverVersion: textOrNull(c.driverVersion),
      computeCapability: null,
      vendor: c.vendor?.trim() || 'unknown',
      source: 'systeminformation' as const,
    }));
  } catch {
    return [];
  }
}

/**
 * Detects NVIDIA GPUs with nvidia-smi, falling back to systeminformation to describe what hardware
 * there is when nvidia-smi is missing or fails.
 */
export async function detectGpus(options: DetectGpusOptions = {}): Promise<GpuDetection> {
  const run = options.run ?? runCommand;
  const graphics = options.graphics ?? defaultGraphics;
  const file = options.nvidiaSmi ?? 'nvidia-smi';
  const timeoutMs = options.timeoutMs ?? 10_000;
  let outcome = classifyNvidiaSmi(await run(file, nvidiaSmiArgs(true), { timeoutMs }), true);
  if (outcome.kind === 'old-driver') {
    outcome = classifyNvidiaSmi(await run(file, nvidiaSmiArgs(false), { timeoutMs }), false);
  }
  switch (outcome.kind) {
    case 'gpus':
      return {
        status: 'ok',
        gpus: outcome.gpus,
        otherControllers: [],
        message: `${outcome.gpus.length} NVIDIA GPU(s): ${outcome.gpus.map((g) => g.model).join(', ')}`,
      };
    case 'no-gpus':
      return {
        status: 'no-gpus',
        gpus: [],
        otherControllers: await otherControllers(graphics),
        message: outcome.message,
      };
    case 'driver-error':
      return {
        status: 'driver-error',
        gpus: [],
        otherControllers: await otherControllers(graphics),
        message: outcome.message,
        hint: outcome.hint,
      };
    case 'not-installed':
    case 'old-driver': {
      const others = await otherControllers(graphics);
      const nvidia = others.some((c) => /nvidia/i.test(c.vendor) || /nvidia/i.test(c.model));
      return {
        status: 'no-nvidia-tooling',
        gpus: [],
        otherControllers: others,
        message:
          outcome.kind === 'old-driver'
            ? 'nvidia-smi output could not be parsed'
            : `${outcome.message}; systeminformation sees ${others.length} display controller(s)`,
        hint: nvidia
          ? 'an NVIDIA GPU is present but the driver is not installed: install the NVIDIA driver (e.g. `ubuntu-drivers install` or `apt install nvidia-driver-535`) and reboot'
          : 'no NVIDIA driver tooling; the agent will use the CPU (wasm) backend',
      };
    }
  }
}
