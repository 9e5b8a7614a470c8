import { execFile } from 'node:child_process';

/** What running an external command produced; never throws, so callers can classify failures. */
export interface CommandResult {
  /** Exit code, or null when the process did not start or was killed. */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Set when the command could not run at all (`ENOENT`, `EACCES`) or was killed. */
  readonly errorCode?: string;
  readonly timedOut: boolean;
}

export interface CommandOptions {
  readonly timeoutMs: number;
  readonly env?: NodeJS.ProcessEnv;
}

/** Runs a command; injectable so tests feed recorded outputs. */
export type CommandRunner = (
  file: string,
  args: readonly string[],
  options: CommandOptions,
) => Promise<CommandResult>;

/** Runs `file` with `args` (no shell), capturing stdout/stderr, killed after `timeoutMs`. */
export const runCommand: CommandRunner = (file, args, options) =>
  new Promise<CommandResult>((resolve) => {
    execFile(
      file,
      [...args],
      { timeout: options.timeoutMs, env: options.env, maxBuffer: 8 * 1024 * 1024, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        if (!error) {
          resolve({ exitCode: 0, stdout, stderr, timedOut: false });
          return;
        }
        const e = error as NodeJS.ErrnoException & {
          killed?: boolean;
          signal?: string | null;
          code?: string | number;
        };
        const timedOut = e.killed === true && e.signal === 'SIGKILL';
        resolve({
          exitCode: typeof e.code === 'number' ? e.code : null,
          stdout,
          stderr,
          errorCode: typeof e.code === 'string' ? e.code : timedOut ? 'ETIMEDOUT' : undefined,
          timedOut,
        });
      },
    );
  });
