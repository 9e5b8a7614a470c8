// `gpumesh-agent gpu-check`: one command an operator runs on a GPU machine. Lists the GPUs, runs
// `doctor --backend <b> --json` for every backend, the checked matmul sweep (`benchmark --sweep`) on
// each backend that works, and one job through a coordinator on the best of them; prints one JSON
// document (--json) or a short table. Each backend runs in a child process of its own: tfjs holds one
// backend a process well, and a native crash (libtensorflow, Dawn) loses one row, not the check.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BACKENDS, type Backend } from '@gpumesh/protocol';

import {
  listGpus,
  runCommand,
  SWEEP_SIZES,
  type CommandResult,
  type GpuListing,
  type SweepBenchmarkResult,
  type WebgpuAdapterInfo,
} from '../runtime/index.js';
import { runLocalJob, type LocalJobCheck, type LocalJobOptions } from './gpu-check-job.js';
import { CliError, type Output } from './output.js';
import { agentVersion } from '../version.js';

/** What gpu-check found about one backend. */
export interface BackendCheck {
  readonly backend: Backend;
  /** doctor proved it (a checked matmul ran on it). */
  readonly available: boolean;
  /** Why not, or what doctor said of it. */
  readonly reason: string;
  readonly version?: string;
  /** It computes on a GPU: tensorflow-gpu, or webgpu on a hardware adapter. */
  readonly gpu: boolean;
  readonly adapter?: WebgpuAdapterInfo;
  readonly devices?: readonly string[];
  readonly warnings: readonly string[];
  /** doctor's own figure (a 512² matmul with readback). */
  readonly doctorGflops?: number;
  readonly sweep?: SweepBenchmarkResult;
  readonly sweepError?: string;
}

export interface GpuCheckReport {
  readonly version: 1;
  readonly agent: string;
  readonly host: { readonly platform: string; readonly arch: string; readonly node: string };
  readonly gpus: GpuListing;
  readonly backends: readonly BackendCheck[];
  readonly job: LocalJobCheck | { readonly skipped: string };
  /** The backend jobs would run on (the first available in the agent's order), and its best sweep figure. */
  readonly best: { readonly backend: Backend; readonly gpu: boolean; readonly gflops: number | null } | null;
  /** Every available backend's sweep passed its checks, and the job (when run) agreed with the reference. */
  readonly ok: boolean;
}

export interface GpuCheckOptions {
  readonly json: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly backends?: readonly Backend[];
  readonly sizes?: readonly number[];
  /** Skip a sweep size estimated to take longer (s). */
  readonly maxSecondsPerSize?: number;
  readonly job?: boolean;
  readonly jobBackend?: Backend;
  readonly jobSize?: number;
  readonly coordinatorMain?: string;
  readonly coordinatorUrl?: string;
  readonly apiKey?: string;
}

export interface GpuCheckDeps {
  readonly listGpus: () => Promise<GpuListing>;
  /** Runs this agent's CLI with `args` in a child process. */
  readonly runAgent: (args: readonly string[], timeoutMs: number) => Promise<CommandResult>;
  readonly runJob: (options: LocalJobOptions) => Promise<LocalJobCheck>;
}

/** The agent CLI run as a child process of this one (the entry point that is running now). */
export function agentRunner(
  main: string,
  env: NodeJS.ProcessEnv,
): (args: readonly string[], timeoutMs: number) => Promise<CommandResult> {
  return (args, timeoutMs) => runCommand(process.execPath, [main, ...args], { timeoutMs, env });
}

/** The built coordinator beside this agent in a checkout (dist/apps/coordinator/src/main.js), if any. */
export function checkoutCoordinatorMain(): string | undefined {
  const path = fileURLToPath(new URL('../../../../dist/apps/coordinator/src/main.js', import.meta.url));
  return existsSync(path) ? path : undefined;
}

/** `--sizes 1024,2048` or the sweep's sizes up to `--max-size`. */
export function sweepSizes(sizes: string | undefined, maxSize: string | undefined): number[] {
  if (sizes !== undefined) {
    const list = sizes.split(',').map((s) => Number(s.trim()));
    if (list.length === 0 || !list.every((n) => Number.isInteger(n) && n >= 1 && n <= 16384)) {
      throw new CliError('--sizes must be a comma-separated list of integers from 1 to 16384');
    }
    return list;
  }
  if (maxSize === undefined) return [...SWEEP_SIZES];
  const max = Number(maxSize);
  if (!Number.isInteger(max) || max < 1 || max > 16384) {
    throw new CliError('--max-size must be an integer from 1 to 16384');
  }
  const within = SWEEP_SIZES.filter((n) => n <= max);
  // Below 1024² (a machine without a GPU, a quick look): powers of two up to the limit.
  if (within.length > 0) return within;
  const small: number[] = [];
  for (let n = 128; n <= max; n *= 2) small.push(n);
  return small.length > 0 ? small : [max];
}

/** The JSON document a command printed on stdout (warnings from native libraries may come before it). */
export function parseJsonOutput<T>(stdout: string): T | null {
  const start = stdout.startsWith('{') ? 0 : stdout.indexOf('\n{') + 1;
  if (start < 0 || (start === 0 && !stdout.startsWith('{'))) return null;
  try {
    return JSON.parse(stdout.slice(start)) as T;
  } catch {
    return null;
  }
}

/** The last line of a child's stderr that says something (not a stack frame or a Dawn/Mesa warning). */
export function lastErrorLine(stderr: string): string {
  const lines = stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(
      (l) =>
        l !== '' &&
        !/^at |XDG_RUNTIME_DIR|^Warning:|BackendVk|artificially reduced|^\^|^node:internal/.test(l),
    );
  return (lines.pop() ?? '').replace(/^gpumesh-agent: /, '');
}

/** What `doctor --json` prints (the parts gpu-check reads). */
interface DoctorJson {
  readonly ok: boolean;
  readonly backend: {
    readonly name: Backend;
    readonly version: string;
    readonly proven: boolean;
    readonly gflops: number;
    readonly warnings: readonly string[];
    readonly adapter?: WebgpuAdapterInfo;
    readonly devices?: readonly string[];
  } | null;
  readonly tried: readonly { readonly name: string; readonly ok: boolean; readonly reason: string }[];
  readonly gpuUse?: { readonly ok: boolean; readonly message: string };
}

/** A backend's row from its doctor run. */
export function backendFromDoctor(backend: Backend, run: CommandResult): BackendCheck {
  const doctor = parseJsonOutput<DoctorJson>(run.stdout);
  if (doctor === null) {
    const why = run.timedOut
      ? 'doctor timed out'
      : lastErrorLine(run.stderr) || `doctor exited ${run.exitCode}`;
    return { backend, available: false, reason: why, gpu: false, warnings: [] };
  }
  const report = doctor.backend;
  if (report === null || report.name !== backend || !report.proven) {
    const tried = doctor.tried.find((t) => t.name === backend);
    return {
      backend,
      available: false,
      reason: tried?.reason ?? 'not proven',
      gpu: false,
      warnings: report?.warnings ?? [],
    };
  }
  const gpu = backend === 'tensorflow-gpu' || (backend === 'webgpu' && report.adapter?.software === false);
  return {
    backend,
    available: true,
    reason: doctor.gpuUse?.message ?? 'proven',
    version: report.version,
    gpu,
    ...(report.adapter ? { adapter: report.adapter } : {}),
    ...(report.devices ? { devices: report.devices } : {}),
    warnings: report.warnings,
    doctorGflops: report.gflops,
  };
}

/**
 * The backend the agent picks by itself: the first that works in its order, passing over webgpu on a
 * software adapter (the CPU backends beat it; `--backend webgpu` still uses it).
 */
export function automaticBackend(rows: readonly BackendCheck[]): BackendCheck | null {
  return rows.find((r) => r.available && !(r.backend === 'webgpu' && r.adapter?.software === true)) ?? null;
}

/**
 * Which backend the job step uses: the one asked for; else the first that computes on a GPU (the
 * point of the check); else the agent's automatic choice.
 */
export function jobBackend(rows: readonly BackendCheck[], asked?: Backend): Backend | null {
  if (asked !== undefined) return rows.find((r) => r.backend === asked && r.available) ? asked : null;
  return (rows.find((r) => r.available && r.gpu) ?? automaticBackend(rows))?.backend ?? null;
}

/** Runs the whole check. */
export async function runGpuCheck(
  opts: GpuCheckOptions,
  deps: GpuCheckDeps,
  progress: (line: string) => void = () => undefined,
): Promise<GpuCheckReport> {
  const backends = opts.backends ?? BACKENDS;
  const sizes = opts.sizes ?? SWEEP_SIZES;
  const dataDir = await mkdtemp(join(tmpdir(), 'gpumesh-gpu-check-agent-'));
  try {
    progress('listing GPUs');
    const gpus = await deps.listGpus();
    const rows: BackendCheck[] = [];
    for (const backend of backends) {
      progress(`doctor --backend ${backend}`);
      const doctor = await deps.runAgent(
        ['doctor', '--backend', backend, '--json', '--data-dir', dataDir],
        300_000,
      );
      let row = backendFromDoctor(backend, doctor);
      if (row.available) {
        progress(`sweep on ${backend}: ${sizes.map((n) => `${n}²`).join(' ')}`);
        const sweep = await deps.runAgent(
          [
            'benchmark',
            '--sweep',
            '--backend',
            backend,
            '--sizes',
            sizes.join(','),
            '--max-seconds',
            String(opts.maxSecondsPerSize ?? 120),
            '--json',
            '--data-dir',
            dataDir,
          ],
          // Each size is bounded by --max-seconds (plus loading and checking).
          sizes.length * ((opts.maxSecondsPerSize ?? 120) * 3 + 60) * 1000,
        );
        const result = parseJsonOutput<SweepBenchmarkResult>(sweep.stdout);
        row =
          result === null
            ? { ...row, sweepError: lastErrorLine(sweep.stderr) || `benchmark exited ${sweep.exitCode}` }
            : { ...row, sweep: result };
      }
      rows.push(row);
    }
    let job: GpuCheckReport['job'];
    const chosen = jobBackend(rows, opts.jobBackend);
    if (opts.job === false) job = { skipped: '--no-job' };
    else if (chosen === null) {
      job = {
        skipped:
          opts.jobBackend === undefined
            ? 'no backend works'
            : `--job-backend ${opts.jobBackend} is not available here`,
      };
    } else if (opts.coordinatorUrl === undefined && opts.coordinatorMain === undefined) {
      job = {
        skipped:
          'no coordinator: run from a built checkout (npm run build), or pass --coordinator <url> with GPUMESH_API_KEY',
      };
    } else {
      progress(
        `one ${opts.jobSize ?? 512}² matmul job on ${chosen} through ${opts.coordinatorUrl ?? 'a local coordinator'}`,
      );
      job = await deps.runJob({
        backend: chosen,
        size: opts.jobSize,
        coordinatorMain: opts.coordinatorMain,
        coordinatorUrl: opts.coordinatorUrl,
        apiKey: opts.apiKey,
        env: opts.env,
      });
    }
    const first = automaticBackend(rows);
    const ok =
      rows.some((r) => r.available) &&
      rows.every((r) => !r.available || (r.sweep?.allChecked ?? false)) &&
      (!('ok' in job) || job.ok);
    return {
      version: 1,
      agent: agentVersion(),
      host: { platform: process.platform, arch: process.arch, node: process.version },
      gpus,
      backends: rows,
      job,
      best: first
        ? { backend: first.backend, gpu: first.gpu, gflops: first.sweep?.bestGflops ?? null }
        : null,
      ok,
    };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

const fmt = (v: number | null | undefined): string =>
  v === null || v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(1);

/** The short table (and the GPU list) printed without --json. */
export function gpuCheckTable(report: GpuCheckReport): string {
  const sizes = [...new Set(report.backends.flatMap((r) => r.sweep?.points.map((p) => p.n) ?? []))].sort(
    (a, b) => a - b,
  );
  const lines: string[] = [];
  lines.push(report.gpus.gpus.length === 0 ? 'GPUs: none listed' : `GPUs (${report.gpus.gpus.length}):`);
  for (const g of report.gpus.gpus) {
    const mem = g.memoryMiB === null ? '' : ` ${g.memoryMiB} MiB`;
    lines.push(
      `  [${g.source}] ${g.name}${mem}${g.driver ? ` driver ${g.driver}` : ''}${g.detail ? ` (${g.detail})` : ''}`,
    );
  }
  const absent = report.gpus.tools.filter((t) => t.status !== 'ok').map((t) => `${t.tool} ${t.status}`);
  if (absent.length > 0) lines.push(`  (${absent.join(', ')})`);
  lines.push('');
  const head = ['backend'.padEnd(15), 'ok ', 'gpu', ...sizes.map((n) => `${n}²`.padStart(8)), '  note'];
  lines.push(`${head.join(' ')}   (GFLOP/s, float32, checked)`);
  for (const r of report.backends) {
    const cells = sizes.map((n) => {
      const p = r.sweep?.points.find((x) => x.n === n);
      if (p === undefined) return '-'.padStart(8);
      if ('failed' in p) return 'fail'.padStart(8);
      if (!('gflops' in p)) return 'skip'.padStart(8);
      return `${fmt(p.gflops)}${p.check.ok ? '' : '!'}`.padStart(8);
    });
    const note = !r.available
      ? r.reason
      : r.sweepError
        ? `sweep failed: ${r.sweepError}`
        : r.adapter
          ? `${r.adapter.device || r.adapter.description || r.adapter.vendor} via ${r.adapter.dawnBackend}${r.adapter.software ? ' (software)' : ''}`
          : (r.devices?.join(', ') ?? r.version ?? '');
    lines.push(
      [
        r.backend.padEnd(15),
        (r.available ? 'yes' : 'no').padEnd(3),
        (r.gpu ? 'yes' : 'no').padEnd(3),
        ...cells,
        `  ${note.length > 110 ? `${note.slice(0, 107)}...` : note}`,
      ].join(' '),
    );
  }
  const bad = report.backends.flatMap((r) =>
    (r.sweep?.points ?? []).flatMap((p) =>
      'gflops' in p && !p.check.ok
        ? [`${r.backend} ${p.n}²: relative error ${p.check.relError.toExponential(1)}`]
        : [],
    ),
  );
  if (bad.length > 0) lines.push(`! failed the float64 check: ${bad.join('; ')}`);
  for (const r of report.backends) {
    for (const p of r.sweep?.points ?? []) {
      if ('failed' in p) lines.push(`${r.backend} ${p.n}² could not run: ${p.failed}`);
    }
  }
  lines.push('');
  const job = report.job;
  if ('skipped' in job) lines.push(`job: skipped (${job.skipped})`);
  else {
    lines.push(
      `job: ${job.ok ? 'ok' : 'FAILED'} — a ${job.size}² matmul on ${job.backend} through ${job.coordinator === 'started' ? 'a local coordinator' : job.url}` +
        (job.state ? `: ${job.state}` : '') +
        (job.jobSeconds === undefined ? '' : ` in ${job.jobSeconds.toFixed(1)} s`) +
        (job.maxRelError === undefined ? '' : `, max relative error ${job.maxRelError.toExponential(1)}`) +
        (job.error ? ` (${job.error})` : ''),
    );
  }
  lines.push(
    report.best
      ? `jobs would run on ${report.best.backend}${report.best.gpu ? ' (GPU)' : ' (not a GPU)'}${report.best.gflops === null ? '' : ` at up to ${fmt(report.best.gflops)} GFLOP/s`}`
      : 'no backend works',
  );
  lines.push(report.ok ? 'gpu-check: ok' : 'gpu-check: FAILED');
  return lines.join('\n');
}

/** The command: runs the check, prints JSON or the table; exit code 0 when ok. */
export async function gpuCheckCommand(
  opts: GpuCheckOptions,
  out: Output,
  deps?: GpuCheckDeps,
): Promise<number> {
  const main = process.argv[1];
  const report = await runGpuCheck(
    opts,
    deps ?? {
      listGpus: () => listGpus(),
      runAgent: agentRunner(main, opts.env),
      runJob: runLocalJob,
    },
    (line) => process.stderr.write(`gpu-check: ${line}\n`),
  );
  out.result(report, () => gpuCheckTable(report));
  // With --json the table still reaches the terminal, on stderr.
  if (opts.json) process.stderr.write(`${gpuCheckTable(report)}\n`);
  return report.ok ? 0 : 1;
}

function backendName(value: string, flag: string): Backend {
  if (!(BACKENDS as readonly string[]).includes(value)) {
    throw new CliError(`${flag} must name one of ${BACKENDS.join(', ')}, got "${value}"`);
  }
  return value as Backend;
}

/** The command line's values (main.ts parseArgs) as options. */
export function gpuCheckOptions(
  values: Record<string, string | boolean | undefined>,
  env: NodeJS.ProcessEnv,
): GpuCheckOptions {
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? values[k] : undefined);
  const maxSeconds = str('max-seconds');
  if (maxSeconds !== undefined && !(Number(maxSeconds) > 0)) {
    throw new CliError('--max-seconds must be a positive number');
  }
  const jobSize = str('job-size');
  if (
    jobSize !== undefined &&
    !(Number.isInteger(Number(jobSize)) && Number(jobSize) >= 1 && Number(jobSize) <= 4096)
  ) {
    throw new CliError('--job-size must be an integer from 1 to 4096');
  }
  const coordinatorUrl = str('coordinator');
  if (coordinatorUrl !== undefined && env.GPUMESH_API_KEY === undefined) {
    throw new CliError('--coordinator needs a developer API key in GPUMESH_API_KEY');
  }
  const backends = str('backends');
  const jobBackendName = str('job-backend');
  return {
    json: values.json === true,
    env,
    sizes: sweepSizes(str('sizes'), str('max-size')),
    ...(maxSeconds === undefined ? {} : { maxSecondsPerSize: Number(maxSeconds) }),
    ...(backends === undefined
      ? {}
      : { backends: backends.split(',').map((b) => backendName(b.trim(), '--backends')) }),
    job: values['no-job'] !== true,
    ...(jobBackendName === undefined ? {} : { jobBackend: backendName(jobBackendName, '--job-backend') }),
    ...(jobSize === undefined ? {} : { jobSize: Number(jobSize) }),
    ...(coordinatorUrl === undefined ? {} : { coordinatorUrl, apiKey: env.GPUMESH_API_KEY }),
    coordinatorMain: str('coordinator-main') ?? checkoutCoordinatorMain(),
  };
}
