/** Output helpers shared by the commands: human text by default, one JSON document with --json. */
export interface Output {
  json: boolean;
  /** A human line (suppressed with --json). */
  line(text: string): void;
  /** The command's result: JSON with --json, else the human rendering. */
  result(value: unknown, human: () => string): void;
  /** A progress bar on stderr when it is a terminal and not --json. */
  progress(fraction: number, label: string): void;
  done(): void;
}

export function createOutput(json: boolean): Output {
  const tty = process.stderr.isTTY === true;
  let drawn = false;
  return {
    json,
    line: (text) => {
      if (!json) process.stdout.write(`${text}\n`);
    },
    result: (value, human) => {
      if (json)
        process.stdout.write(
          `${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`,
        );
      else process.stdout.write(`${human()}\n`);
    },
    progress: (fraction, label) => {
      if (json) return;
      const width = 30;
      const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
      const bar = `[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}% ${label}`;
      if (tty) {
        process.stderr.write(`\r${bar.padEnd(80)}`);
        drawn = true;
      } else {
        process.stderr.write(`${bar}\n`);
      }
    },
    done: () => {
      if (drawn) process.stderr.write('\n');
      drawn = false;
    },
  };
}

/** An error a command reports as one clear line (exit code 1), without a stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
