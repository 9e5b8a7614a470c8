// gpumesh tensors upload | get | list | rm: a developer's stored tensors through the SDK. An upload
// is a .npy file streamed from disk to the coordinator's store; its ref is then a job input
// `{ "name": "a", "ref": "sha256:…" }` in a spec file. `get` streams one back to a file, checked
// against its ref. Unused uploads and old outputs expire.
import type { UploadedTensorDto } from '@gpumesh/sdk';
import { consoleIo, type CliIo } from '../io.js';
import { UsageError, developerClient, parseCommandArgs, printJson, runCommand } from './command.js';
import { openNpyFile, saveNpy, uploadNpyFile } from './npy-files.js';

export const TENSORS_USAGE = [
  'usage: gpumesh tensors <upload | get | list | rm> …',
  '  gpumesh tensors upload <file.npy>   stores it and prints its ref (use { "name", "ref" } as a job',
  '                                      input); the same bytes again give the same ref',
  '  gpumesh tensors get <ref> -o <file.npy>',
  '                                      writes it as .npy once its bytes match the ref',
  '  gpumesh tensors list [--limit n] [--cursor c]',
  '                                      your tensors, newest first, with when each expires',
  '  gpumesh tensors rm <ref>…           deletes them (refused while an unfinished job uses one)',
  '  --coordinator <url>  --json (machine-readable output)  --help',
].join('\n');

const OPTIONS = {
  limit: { type: 'string' },
  cursor: { type: 'string' },
  o: { type: 'string', short: 'o' },
} as const;
const SUBCOMMANDS = ['upload', 'get', 'list', 'rm'] as const;
const REF = /^sha256:[0-9a-f]{64}$/;

function describeTensor(t: UploadedTensorDto): string {
  const what = t.jobId ? `output of job ${t.jobId}` : 'upload';
  const expires = t.expiresAt ? `expires ${t.expiresAt}` : 'kept until deleted';
  return `${t.ref}  ${t.dtype}[${t.shape.join(',')}]  ${t.bytes} bytes  ${what}  ${expires}`;
}

export async function runTensorsCli(
  argv: readonly string[],
  io: CliIo = consoleIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const [sub, ...rest] = argv;
  const known = (SUBCOMMANDS as readonly string[]).includes(sub ?? '');
  return runCommand(`tensors${known ? ` ${sub}` : ''}`, TENSORS_USAGE, io, async () => {
    if (sub === '--help' || sub === '-h' || sub === 'help') {
      io.out(TENSORS_USAGE);
      return 0;
    }
    if (!known) {
      throw new UsageError(sub === undefined ? 'expected a subcommand' : `unknown subcommand "${sub}"`);
    }
    const parsed = parseCommandArgs(rest, OPTIONS, TENSORS_USAGE, io);
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    if (sub !== 'list' && (values.limit !== undefined || values.cursor !== undefined)) {
      throw new UsageError('--limit and --cursor go with list');
    }
    if (sub !== 'get' && values.o !== undefined) throw new UsageError('-o goes with get');

    if (sub === 'upload') {
      if (positionals.length !== 1) throw new UsageError('expected one .npy file');
      const file = await openNpyFile(positionals[0]);
      const client = await developerClient(env, values.coordinator);
      const tensor = await uploadNpyFile(client, file);
      if (values.json) printJson(io, tensor);
      else io.out(tensor.ref);
      return 0;
    }

    if (sub === 'get') {
      if (positionals.length !== 1) throw new UsageError('expected one ref (sha256:…)');
      const ref = positionals[0];
      if (!REF.test(ref)) throw new UsageError(`"${ref}" is not a ref (sha256: and 64 hex digits)`);
      if (values.o === undefined) throw new UsageError('-o <file.npy>: where to write it');
      const client = await developerClient(env, values.coordinator);
      const saved = await saveNpy(await client.openTensorNpy(ref), values.o, {
        ref,
        progress: values.json ? undefined : io.err,
      });
      const written = { path: values.o, ref, dtype: saved.dtype, shape: saved.shape, bytes: saved.bytes };
      if (values.json) printJson(io, written);
      else io.out(`wrote ${ref} ${saved.dtype}[${saved.shape.join(',')}] to ${values.o}`);
      return 0;
    }

    if (sub === 'list') {
      if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
      let limit: number | undefined;
      if (values.limit !== undefined) {
        if (!/^[1-9][0-9]*$/.test(values.limit))
          throw new UsageError(`--limit: expected a positive whole number, got "${values.limit}"`);
        limit = Number(values.limit);
      }
      const client = await developerClient(env, values.coordinator);
      const page = await client.tensors({ limit, cursor: values.cursor });
      if (values.json) printJson(io, page);
      else {
        for (const t of page.items) io.out(describeTensor(t));
        if (page.items.length === 0) io.out('no tensors');
        if (page.nextCursor) io.out(`more: gpumesh tensors list --cursor ${page.nextCursor}`);
      }
      return 0;
    }

    // rm
    if (positionals.length === 0) throw new UsageError('expected at least one ref (sha256:…)');
    const bad = positionals.find((r) => !REF.test(r));
    if (bad !== undefined) throw new UsageError(`"${bad}" is not a ref (sha256: and 64 hex digits)`);
    const client = await developerClient(env, values.coordinator);
    const deleted = [];
    for (const ref of positionals) {
      deleted.push(await client.deleteTensor(ref));
      if (!values.json) io.out(`deleted ${ref}`);
    }
    if (values.json) printJson(io, deleted);
    return 0;
  });
}
