// gpumesh jobs submit | watch | result | list | cancel: a developer's jobs through the SDK. A job is
// a JSON spec file, or a matmul of two .npy files (small ones inline, larger ones uploaded first and
// named by ref); results are written as .npy (NumPy loads them), streamed to disk, and an output by
// ref only once its bytes match the ref.
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  TERMINAL_JOB_STATES,
  fromNpy,
  toNpy,
  type GpumeshClient,
  type JobDetailDto,
  type JobDto,
  type JobEventDto,
  type JobSubmission,
} from '@gpumesh/sdk';
import { consoleIo, type CliIo } from '../io.js';
import { CommandError, UsageError, developerClient, parseOrUsage, printJson, runCommand } from './command.js';
import { openNpyFile, saveNpy, uploadNpyFile, type NpyFileInfo } from './npy-files.js';

/** A --matmul input file larger than this is uploaded and named by ref rather than sent inline (base64). */
const INLINE_NPY_MAX_BYTES = 1024 * 1024;

const COMMON = '  --coordinator <url>  --json (machine-readable output)  --help';

export const JOBS_USAGE = [
  'usage: gpumesh jobs <submit | watch | result | list | cancel> …',
  '  gpumesh jobs submit <spec.json> [--max-price <units>] [--wait [--timeout <s>] [-o out.npy]]',
  '  gpumesh jobs submit --matmul <a.npy> <b.npy> --max-price <units> [--redundancy <k>]',
  '                      [--deadline <s>] [--wait [--timeout <s>] [-o out.npy]]',
  '      submits a job and prints its id; --wait follows it to the end (exit 1 unless COMPLETED)',
  '      and -o writes its first output as .npy. --max-price: base units per work unit (1 MFLOP).',
  '      .npy files over 1 MiB are uploaded first (gpumesh tensors upload) and sent by ref.',
  '  gpumesh jobs watch <id>             its events, live, until it ends (resumes after a drop;',
  '                                      exit 0 when it COMPLETED, 1 otherwise)',
  '  gpumesh jobs result <id> [-o out.npy] [--name <output>]',
  '                                      the result as JSON, or one output written as .npy',
  '  gpumesh jobs list [--state S[,S…]] [--kind K] [--limit n] [--cursor c]',
  '  gpumesh jobs cancel <id>',
  COMMON,
].join('\n');

const OPTIONS = {
  coordinator: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  matmul: { type: 'boolean' },
  'max-price': { type: 'string' },
  redundancy: { type: 'string' },
  deadline: { type: 'string' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  name: { type: 'string' },
  o: { type: 'string', short: 'o' },
  state: { type: 'string' },
  kind: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
} as const;

/** Which options each subcommand takes (besides --coordinator, --json, --help). */
const ALLOWED: Record<string, readonly string[]> = {
  submit: ['matmul', 'max-price', 'redundancy', 'deadline', 'wait', 'timeout', 'o'],
  watch: [],
  result: ['o', 'name'],
  list: ['state', 'kind', 'limit', 'cursor'],
  cancel: [],
};

function positiveInt(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(text))
    throw new UsageError(`${flag}: expected a positive whole number, got "${text}"`);
  return Number(text);
}

function baseUnits(text: string, flag: string): string {
  if (!/^(0|[1-9][0-9]*)$/.test(text))
    throw new UsageError(`${flag}: expected base units (a whole number), got "${text}"`);
  return text;
}

/** A checked .npy file as a job input: inline when small, else uploaded (streamed) and named by ref. */
async function npyInput(
  client: GpumeshClient,
  file: NpyFileInfo & { path: string },
  name: string,
): Promise<JobSubmission['inputs'][number]> {
  if (file.bytes > INLINE_NPY_MAX_BYTES) return { name, ref: (await uploadNpyFile(client, file)).ref };
  return fromNpy(name, await readFile(file.path));
}

async function readSpecFile(path: string): Promise<JobSubmission> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${path} (${(err as Error).message})`);
  }
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path} is not JSON (${(err as Error).message})`);
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec) || !('kind' in spec)) {
    throw new UsageError(`${path} is not a job spec (an object with "kind", "version", "inputs", …)`);
  }
  return spec as JobSubmission;
}

function describeEvent(e: JobEventDto): string {
  const move = e.toState ? `${e.fromState ?? '—'} → ${e.toState}` : '';
  const detail = e.data && Object.keys(e.data).length > 0 ? ` ${JSON.stringify(e.data)}` : '';
  return `${e.createdAt}  ${e.type.padEnd(20)} ${move}${detail}`;
}

function describeJob(j: JobDto | JobDetailDto): string {
  const error = j.error ? `  error ${j.error.code}: ${j.error.message}` : '';
  return `${j.id}  ${j.kind.padEnd(9)} ${j.state.padEnd(10)} reserved ${j.reserved} charged ${j.charged}  ${j.createdAt}${error}`;
}

/** Writes output `name` (default the first) of a completed job as .npy; returns what it wrote. */
async function writeOutput(
  client: GpumeshClient,
  id: string,
  path: string,
  name: string | undefined,
  progress: ((line: string) => void) | undefined,
): Promise<{ path: string; name: string; dtype: string; shape: number[]; bytes: number }> {
  const { result } = await client.result(id);
  const output = name === undefined ? result.outputs[0] : result.outputs.find((t) => t.name === name);
  if (!output) {
    throw new CommandError(
      `job ${id} has no output ${name ?? ''} (outputs: ${result.outputs.map((t) => t.name).join(', ') || 'none'})`,
    );
  }
  // A large output comes by ref: its .npy is streamed from GET /v1/jobs/{id}/outputs/{name} to the
  // file, checked against the ref.
  if ('ref' in output) {
    const saved = await saveNpy(await client.openOutputNpy(id, output.name), path, {
      ref: output.ref,
      progress,
    });
    return { path, name: output.name, dtype: saved.dtype, shape: saved.shape, bytes: saved.bytes };
  }
  const npy = toNpy(output);
  await writeFile(path, npy);
  return { path, name: output.name, dtype: output.dtype, shape: output.shape, bytes: npy.byteLength };
}

export async function runJobsCli(
  argv: readonly string[],
  io: CliIo = consoleIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const [sub, ...rest] = argv;
  return runCommand(`jobs${sub && sub in ALLOWED ? ` ${sub}` : ''}`, JOBS_USAGE, io, async () => {
    if (sub === '--help' || sub === '-h' || sub === 'help') {
      io.out(JOBS_USAGE);
      return 0;
    }
    if (sub === undefined || !(sub in ALLOWED)) {
      throw new UsageError(sub === undefined ? 'expected a subcommand' : `unknown subcommand "${sub}"`);
    }
    const { values, positionals } = parseOrUsage(() =>
      parseArgs({ args: rest, allowPositionals: true, options: OPTIONS }),
    );
    if (values.help) {
      io.out(JOBS_USAGE);
      return 0;
    }
    const given = Object.keys(values).filter((k) => !['coordinator', 'json', 'help'].includes(k));
    const stray = given.find((k) => !ALLOWED[sub].includes(k));
    if (stray) throw new UsageError(`jobs ${sub} takes no --${stray}`);
    const out = values.o;

    if (sub === 'submit') {
      if (!values.wait && (values.timeout !== undefined || out !== undefined))
        throw new UsageError('--timeout and -o go with --wait');
      const timeout = positiveInt(values.timeout, '--timeout');
      let spec: JobSubmission;
      let client: GpumeshClient | undefined;
      if (values.matmul) {
        if (positionals.length !== 2) throw new UsageError('--matmul takes two .npy files: a and b');
        if (values['max-price'] === undefined)
          throw new UsageError('--matmul needs --max-price <base units>');
        const files = await Promise.all(positionals.map((path) => openNpyFile(path)));
        client = await developerClient(env, values.coordinator);
        const [a, b] = await Promise.all([npyInput(client, files[0], 'a'), npyInput(client, files[1], 'b')]);
        spec = {
          kind: 'matmul',
          version: 1,
          inputs: [a, b],
          maxPricePerUnit: baseUnits(values['max-price'], '--max-price'),
          redundancy: positiveInt(values.redundancy, '--redundancy'),
          deadlineSeconds: positiveInt(values.deadline, '--deadline'),
        };
      } else {
        if (positionals.length !== 1)
          throw new UsageError('expected one spec file (or --matmul a.npy b.npy)');
        if (values.redundancy !== undefined || values.deadline !== undefined)
          throw new UsageError('--redundancy and --deadline go with --matmul (put them in the spec file)');
        spec = await readSpecFile(positionals[0]);
        if (values['max-price'] !== undefined)
          spec.maxPricePerUnit = baseUnits(values['max-price'], '--max-price');
      }
      client ??= await developerClient(env, values.coordinator);
      const job = await client.submit(spec);
      if (!values.wait) {
        if (values.json) printJson(io, job);
        else io.out(job.id);
        return 0;
      }
      if (!values.json) io.err(`submitted ${job.id}; waiting…`);
      const done = await client.wait(job.id, timeout === undefined ? {} : { timeoutMs: timeout * 1000 });
      const written =
        done.state === 'COMPLETED' && out
          ? await writeOutput(client, job.id, out, undefined, values.json ? undefined : io.err)
          : null;
      if (values.json) printJson(io, { ...done, spec: undefined, written });
      else {
        io.out(describeJob(done));
        if (written)
          io.out(`wrote ${written.name} ${written.dtype}[${written.shape.join(',')}] to ${written.path}`);
      }
      return done.state === 'COMPLETED' ? 0 : 1;
    }

    if (sub === 'list') {
      if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
      if (values.kind !== undefined && !['matmul', 'inference', 'train'].includes(values.kind))
        throw new UsageError('--kind: matmul, inference or train');
      const query = {
        state: values.state,
        kind: values.kind as 'matmul' | 'inference' | 'train' | undefined,
        limit: positiveInt(values.limit, '--limit'),
        cursor: values.cursor,
      };
      const client = await developerClient(env, values.coordinator);
      const page = await client.jobs(query);
      if (values.json) printJson(io, page);
      else {
        for (const j of page.items) io.out(describeJob(j));
        if (page.items.length === 0) io.out('no jobs');
        if (page.nextCursor) io.out(`more: gpumesh jobs list --cursor ${page.nextCursor}`);
      }
      return 0;
    }

    // watch, result, cancel: one job id
    if (positionals.length !== 1) throw new UsageError('expected one job id');
    const id = positionals[0];
    if (sub === 'result' && out === undefined && values.name !== undefined)
      throw new UsageError('--name names the output -o writes');
    const client = await developerClient(env, values.coordinator);
    if (sub === 'cancel') {
      const job = await client.cancel(id);
      if (values.json) printJson(io, job);
      else io.out(describeJob(job));
      return 0;
    }
    if (sub === 'result') {
      if (out !== undefined) {
        const written = await writeOutput(client, id, out, values.name, values.json ? undefined : io.err);
        if (values.json) printJson(io, written);
        else io.out(`wrote ${written.name} ${written.dtype}[${written.shape.join(',')}] to ${written.path}`);
        return 0;
      }
      printJson(io, await client.result(id));
      return 0;
    }
    // watch
    let last: JobEventDto | undefined;
    for await (const event of client.events(id, {
      onReconnect: (n, ms) => io.err(`connection dropped; reconnecting in ${ms} ms (attempt ${n})`),
    })) {
      last = event;
      io.out(values.json ? JSON.stringify(event) : describeEvent(event));
    }
    const final =
      last?.toState && TERMINAL_JOB_STATES.has(last.toState) ? last.toState : (await client.job(id)).state;
    return final === 'COMPLETED' ? 0 : 1;
  });
}
