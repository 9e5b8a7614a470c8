// gpu-check's last step: one matmul job through a coordinator onto an agent on the backend being
// checked, its result compared with a float64 reference. Either a throwaway local coordinator (the built
// one, `--dev --agents 1` on a temp data dir: embedded PostgreSQL, a local dev chain, one local agent
// started with GPUMESH_BACKEND=<backend>), or a coordinator already running (`npm start`) named by URL
// with a developer key.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { decodeTensorWire, encodeTensor, type Backend, type TensorWire } from '@gpumesh/protocol';

import { maxRelativeError, referenceMatmul, seededValues } from '../runtime/index.js';

/** What the job step found. */
export interface LocalJobCheck {
  readonly ok: boolean;
  readonly backend: Backend;
  /** 'started': a throwaway coordinator was started for the check; 'given': --coordinator. */
  readonly coordinator: 'started' | 'given';
  readonly url?: string;
  /** The backend the local agent reported in the coordinator's banner (started coordinator only). */
  readonly agentBackend?: string;
  readonly jobId?: string;
  readonly state?: string;
  readonly size: number;
  /** Largest |x − y| / (1 + |y|) of the job's output against the float64 reference. */
  readonly maxRelError?: number;
  readonly startSeconds?: number;
  readonly jobSeconds?: number;
  readonly error?: string;
}

export interface LocalJobOptions {
  readonly backend: Backend;
  /** Side of the square matmul (default 512). */
  readonly size?: number;
  /** The built coordinator's main.js, to start a throwaway one. */
  readonly coordinatorMain?: string;
  /** A running coordinator instead, with a developer API key. */
  readonly coordinatorUrl?: string;
  readonly apiKey?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Start plus job, ms (default 300 s). */
  readonly timeoutMs?: number;
  /** Tolerance of the output check (default 1e-4, the agent's own matmul check). */
  readonly tolerance?: number;
}

/** The matmul job gpu-check submits: seeded values, pinned to `backend`. */
export function gpuCheckJobSpec(
  backend: Backend,
  n: number,
): { spec: Record<string, unknown>; a: Float32Array; b: Float32Array } {
  const a = seededValues(n * n, 11);
  const b = seededValues(n * n, 12);
  return {
    a,
    b,
    spec: {
      version: 1,
      kind: 'matmul',
      inputs: [encodeTensor('a', 'float32', [n, n], a), encodeTensor('b', 'float32', [n, n], b)],
      requirements: { backends: [backend] },
      maxPricePerUnit: '10',
      redundancy: 1,
      deadlineSeconds: 300,
    },
  };
}

/** What the coordinator's `--dev` banner says (API URL, dev key, the local agent's backend). */
export function parseCoordinatorBanner(
  text: string,
): { url: string; devKey: string; agentBackend?: string } | null {
  const url = /API\s+(https?:\/\/\S+)\/v1/.exec(text)?.[1];
  const devKey = /dev key\s+(gmk_\S+)/.exec(text)?.[1];
  if (!url || !devKey) return null;
  const agentBackend = /agent 1\s+\S+\s+backend (\S+)/.exec(text)?.[1];
  return { url, devKey, ...(agentBackend ? { agentBackend } : {}) };
}

const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED']);

/**
 * One REST call; a request the network dropped (`fetch failed`: a reset keep-alive socket) is sent
 * again, up to 3 times. GETs are safe to repeat and the POST carries an Idempotency-Key.
 */
async function call<T>(url: string, key: string, method: string, path: string, body?: unknown): Promise<T> {
  const idempotencyKey = `gpu-check-${randomUUID()}`;
  let response: Response | undefined;
  for (let attempt = 1; response === undefined; attempt++) {
    try {
      response = await fetch(new URL(path, url), {
        method,
        headers: {
          Authorization: `Bearer ${key}`,
          ...(body === undefined
            ? {}
            : { 'Content-Type': 'application/json', 'Idempotency-Key': idempotencyKey }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      if (attempt >= 3 || !(err instanceof TypeError)) throw err;
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** Submits the job, waits for it to end, checks its output. */
export async function submitAndCheck(
  url: string,
  key: string,
  backend: Backend,
  n: number,
  deadline: number,
  tolerance = 1e-4,
): Promise<Pick<LocalJobCheck, 'ok' | 'jobId' | 'state' | 'maxRelError' | 'jobSeconds' | 'error'>> {
  const { spec, a, b } = gpuCheckJobSpec(backend, n);
  const t0 = performance.now();
  const job = await call<{ id: string; state: string }>(url, key, 'POST', '/v1/jobs', spec);
  let state = job.state;
  let error: string | undefined;
  while (!TERMINAL.has(state)) {
    if (Date.now() > deadline) {
      return { ok: false, jobId: job.id, state, error: `the job was still ${state} at the time limit` };
    }
    await new Promise((r) => setTimeout(r, 500));
    const now = await call<{ state: string; error: { code: string; message: string } | null }>(
      url,
      key,
      'GET',
      `/v1/jobs/${job.id}`,
    );
    state = now.state;
    if (now.error) error = `${now.error.code}: ${now.error.message}`;
  }
  const jobSeconds = (performance.now() - t0) / 1000;
  if (state !== 'COMPLETED') return { ok: false, jobId: job.id, state, jobSeconds, error: error ?? state };
  const result = await call<{ result: { outputs: TensorWire[] } }>(
    url,
    key,
    'GET',
    `/v1/jobs/${job.id}/result`,
  );
  const wire = result.result.outputs.find((o) => o.name === 'c');
  if (!wire) return { ok: false, jobId: job.id, state, jobSeconds, error: 'the result has no output "c"' };
  const c = decodeTensorWire(wire);
  const maxRelError = maxRelativeError(c.values as Float32Array, referenceMatmul(a, b, n, n, n));
  return {
    ok: maxRelError <= tolerance,
    jobId: job.id,
    state,
    maxRelError,
    jobSeconds,
    ...(maxRelError <= tolerance ? {} : { error: `the output is off the reference by ${maxRelError}` }),
  };
}

/** Runs the job step: a started throwaway coordinator, or the one given. Never throws. */
export async function runLocalJob(options: LocalJobOptions): Promise<LocalJobCheck> {
  const n = options.size ?? 512;
  const deadline = Date.now() + (options.timeoutMs ?? 300_000);
  const base = { backend: options.backend, size: n };
  if (options.coordinatorUrl !== undefined) {
    if (options.apiKey === undefined) {
      return { ...base, ok: false, coordinator: 'given', url: options.coordinatorUrl, error: 'no API key' };
    }
    try {
      const r = await submitAndCheck(
        options.coordinatorUrl,
        options.apiKey,
        options.backend,
        n,
        deadline,
        options.tolerance,
      );
      return { ...base, coordinator: 'given', url: options.coordinatorUrl, ...r };
    } catch (err) {
      return {
        ...base,
        ok: false,
        coordinator: 'given',
        url: options.coordinatorUrl,
        error: (err as Error).message,
      };
    }
  }
  if (options.coordinatorMain === undefined) {
    return { ...base, ok: false, coordinator: 'started', error: 'no coordinator to start' };
  }
  const dir = await mkdtemp(join(tmpdir(), 'gpumesh-gpu-check-'));
  const env: NodeJS.ProcessEnv = {
    ...(options.env ?? process.env),
    GPUMESH_BACKEND: options.backend,
    LOG_LEVEL: 'warn',
  };
  delete env.DATABASE_URL; // embedded PostgreSQL in the temp dir
  const child = spawn(
    process.execPath,
    [options.coordinatorMain, '--dev', '--agents', '1', '--port', '0', '--data-dir', dir],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const tail = (): string => out.trim().split('\n').slice(-5).join(' | ');
  const t0 = performance.now();
  try {
    const ready = await Promise.race([
      (async (): Promise<boolean> => {
        while (!out.includes('gpumesh ready')) {
          if (Date.now() > deadline) return false;
          await new Promise((r) => setTimeout(r, 200));
        }
        return true;
      })(),
      exited.then(() => false),
    ]);
    const banner = parseCoordinatorBanner(out);
    if (!ready || banner === null) {
      return {
        ...base,
        ok: false,
        coordinator: 'started',
        error: `the coordinator did not start: ${tail()}`,
      };
    }
    const startSeconds = (performance.now() - t0) / 1000;
    const started = { ...base, coordinator: 'started' as const, url: banner.url, startSeconds };
    const agentBackend = banner.agentBackend;
    if (agentBackend !== options.backend) {
      return {
        ...started,
        ok: false,
        ...(agentBackend ? { agentBackend } : {}),
        error: `the local agent runs ${agentBackend ?? 'no backend'}, not ${options.backend}`,
      };
    }
    try {
      const r = await submitAndCheck(
        banner.url,
        banner.devKey,
        options.backend,
        n,
        deadline,
        options.tolerance,
      );
      return { ...started, agentBackend, ...r };
    } catch (err) {
      const cause = (err as Error & { cause?: Error }).cause?.message;
      return {
        ...started,
        agentBackend,
        ok: false,
        error: `${(err as Error).message}${cause ? ` (${cause})` : ''}; the coordinator said: ${tail()}`,
      };
    }
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  }
}
