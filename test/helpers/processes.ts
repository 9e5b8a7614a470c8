// Starting the real coordinator and agent processes (built JS under dist/) for end-to-end tests.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const COORDINATOR_MAIN = join(process.cwd(), 'dist/apps/coordinator/src/main.js');
export const AGENT_MAIN = join(process.cwd(), 'apps/provider-agent/dist/main.js');

export interface Started {
  child: ChildProcessWithoutNullStreams;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function assertBuilt(): void {
  if (!existsSync(COORDINATOR_MAIN) || !existsSync(AGENT_MAIN))
    throw new Error('run `npm run build` first (npm test does)');
}

/** Spawns a node script and resolves once its output matches `ready`. */
export async function startProcess(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  timeoutMs = 60_000,
): Promise<Started & { match: RegExpExecArray }> {
  const child = spawn(process.execPath, [script, ...args], { env });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${script} not ready in ${timeoutMs} ms:\n${out}`)),
      timeoutMs,
    );
    const check = (): void => {
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}:\n${out}`));
    });
  });
  return {
    child,
    match,
    output: () => out,
    stop: (signal: NodeJS.Signals = 'SIGINT') =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        // A process that does not stop within 20 s is killed, so one hang cannot time out a suite.
        const force = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.once('exit', (code) => {
          clearTimeout(force);
          resolve(code);
        });
        child.kill(signal);
      }),
  };
}

/**
 * A `--dev` coordinator with no local agents, for an end-to-end test that starts its own: its
 * process, API URL and dev key. Dispatch retries fast; settlement, canaries and capacity probes are
 * off (their own suites cover them). `env` adds to or overrides that.
 */
export async function startDevCoordinator(options: {
  readonly dataDir: string;
  readonly databaseUrl: string;
  readonly queuePrefix: string;
  readonly env?: NodeJS.ProcessEnv;
}): Promise<{ coordinator: Started; url: string; key: string }> {
  const coordinator = await startProcess(
    COORDINATOR_MAIN,
    ['--dev', '--agents', '0', '--port', '0', '--data-dir', options.dataDir],
    {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: options.queuePrefix,
      LOG_LEVEL: 'warn',
      DISPATCH_BACKOFF_MS: '200',
      DISPATCH_ATTEMPTS: '20',
      SETTLEMENT_ENABLED: 'false',
      CANARY_RATE: '0',
      PROBATION_CANARY_RATE: '0',
      CAPACITY_PROBES: 'false',
      ...options.env,
    },
    /gpumesh ready/,
  );
  const url = /API\s+(http:\/\/\S+)\/v1/.exec(coordinator.output())?.[1];
  const key = /dev key\s+(gmk_\S+)/.exec(coordinator.output())?.[1];
  if (!url || !key) throw new Error(`cannot read the coordinator's banner:\n${coordinator.output()}`);
  return { coordinator, url, key };
}

/** Runs a node script to completion and returns its output (throws on a non-zero exit). */
export function runProcess(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}:\n${out}`))));
  });
}

/**
 * `gpumesh-agent init` of a test agent in `dataDir` for `coordinatorUrl`: a light key derivation, one
 * slot and the cpu backend unless `extra` says otherwise (later flags win).
 */
export function initAgent(
  coordinatorUrl: string,
  dataDir: string,
  env: NodeJS.ProcessEnv,
  extra: string[] = [],
): Promise<string> {
  return runProcess(
    AGENT_MAIN,
    [
      'init',
      '--coordinator',
      coordinatorUrl,
      '--data-dir',
      dataDir,
      '--light-kdf',
      '--slots',
      '1',
      '--backend',
      'cpu',
      ...extra,
    ],
    env,
  );
}

/** How a command-line run ended. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a node script (a CLI) to its end, whatever its exit code, with stdout and stderr apart. */
export function runCli(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
