// One pino JSON line → one line a person reads in a terminal: time, level, message, then the other
// fields as key=value (objects as compact JSON, errors as their message and stack). Used by
// `npm start` (--dev on a terminal, LOG_FORMAT=auto) or LOG_FORMAT=pretty; JSON stays the default
// elsewhere. No dependency: pino-pretty would do it too, but this is 60 lines.
import { Writable } from 'node:stream';

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[90m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[35m'],
};
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
/** Fields every line has (shown in the prefix) or that say nothing to a person. */
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'service', 'v']);

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s="]/.test(v) ? JSON.stringify(v) : v;
  if (v instanceof Object) return JSON.stringify(v);
  return String(v);
}

/** Formats one serialized pino line; a line that is not JSON is returned as it is. */
export function humanLogLine(line: string, color: boolean): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof record !== 'object' || record === null) return line;
  const [name, tint] = LEVELS[Number(record.level)] ?? ['LOG  ', ''];
  const time = typeof record.time === 'number' ? new Date(record.time).toISOString().slice(11, 23) : '';
  const parts: string[] = [];
  let stack = '';
  for (const [k, v] of Object.entries(record)) {
    if (HIDDEN.has(k) || v === undefined) continue;
    if (k === 'err' && v && typeof v === 'object') {
      const err = v as { message?: string; stack?: string; type?: string };
      parts.push(`err=${value(err.message ?? err.type ?? 'error')}`);
      if (err.stack) stack = `\n${err.stack.split('\n').slice(1).join('\n')}`;
      continue;
    }
    parts.push(`${k}=${value(v)}`);
  }
  const msg = typeof record.msg === 'string' ? record.msg : '';
  const fields = parts.length > 0 ? ` ${color ? DIM : ''}${parts.join(' ')}${color ? RESET : ''}` : '';
  const level = color ? `${tint}${name}${RESET}` : name;
  return `${color ? DIM : ''}${time}${color ? RESET : ''} ${level} ${msg}${fields}${stack}`;
}

/** A stream for pino that writes human lines to `out`. */
export function humanLogStream(out: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout): Writable {
  const color = out.isTTY === true && !process.env.NO_COLOR;
  let pending = '';
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      pending += chunk.toString();
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        out.write(`${humanLogLine(pending.slice(0, nl), color)}\n`);
        pending = pending.slice(nl + 1);
        nl = pending.indexOf('\n');
      }
      done();
    },
  });
}
