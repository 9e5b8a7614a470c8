// What every developer command shares: usage errors (exit 2) apart from failures (exit 1), the
// client from the stored or given credentials, the wallet from an environment variable or a
// keystore, and printing either text or JSON. Secrets (keys, passphrases, API keys) are never printed.
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { Wallet, type HDNodeWallet } from 'ethers';
import { GpumeshApiError, GpumeshClient } from '@gpumesh/sdk';
import type { CliIo } from '../io.js';
import { resolveTarget } from './credentials.js';

/** A mistake in the command line: the command prints it with its usage and exits 2. */
export class UsageError extends Error {}

/** A failure the user can act on (not logged in, nothing to withdraw): exit 1 with the message. */
export class CommandError extends Error {}

/** Runs a command body, mapping usage errors to exit 2 and every other error to exit 1. */
export async function runCommand(
  name: string,
  usage: string,
  io: CliIo,
  body: () => Promise<number>,
): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`gpumesh ${name}: ${err.message}\n${usage}`);
      return 2;
    }
    const message =
      err instanceof GpumeshApiError
        ? `the coordinator refused: ${err.message}`
        : err instanceof Error
          ? err.message
          : String(err);
    io.err(`gpumesh ${name}: ${message}`);
    return 1;
  }
}

/** parseArgs' errors (unknown option, missing value) as usage errors. */
export function parseOrUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** The options every developer command takes: --coordinator, --json and --help. */
const COMMAND_OPTIONS = {
  coordinator: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type CommandArgsConfig<O extends ParseArgsOptionsConfig> = {
  args: string[];
  allowPositionals: true;
  options: typeof COMMAND_OPTIONS & O;
};

/**
 * A developer command's command line: its own `options` beside --coordinator, --json and --help,
 * positionals allowed; a malformed one is a usage error. `null` when --help asked for the usage
 * (printed here): the command then exits 0.
 */
export function parseCommandArgs<O extends ParseArgsOptionsConfig>(
  argv: readonly string[],
  options: O,
  usage: string,
  io: CliIo,
): ReturnType<typeof parseArgs<CommandArgsConfig<O>>> | null {
  const config: CommandArgsConfig<O> = {
    args: [...argv],
    allowPositionals: true,
    options: { ...COMMAND_OPTIONS, ...options },
  };
  const parsed = parseOrUsage(() => parseArgs(config));
  if ('help' in parsed.values && parsed.values.help === true) {
    io.out(usage);
    return null;
  }
  return parsed;
}

/** A client for the coordinator of --coordinator / the environment / the stored login. */
export async function developerClient(
  env: NodeJS.ProcessEnv,
  coordinatorFlag: string | undefined,
): Promise<GpumeshClient> {
  let target: Awaited<ReturnType<typeof resolveTarget>>;
  try {
    target = await resolveTarget(env, coordinatorFlag);
  } catch (err) {
    if (err instanceof TypeError) throw new UsageError(`--coordinator: ${err.message}`);
    throw err;
  }
  if (!target.apiKey) {
    throw new CommandError(
      `not logged in to ${target.coordinator}: run gpumesh login (or set GPUMESH_API_KEY)`,
    );
  }
  return new GpumeshClient({ baseUrl: target.coordinator, apiKey: target.apiKey });
}

export interface WalletFlags {
  'key-env'?: string;
  keystore?: string;
  'passphrase-env'?: string;
}

export const WALLET_OPTIONS = {
  'key-env': { type: 'string' },
  keystore: { type: 'string' },
  'passphrase-env': { type: 'string' },
} as const;

export const WALLET_USAGE = [
  '  --key-env <NAME>         the wallet key is in the environment variable NAME (never a flag)',
  '  --keystore <file>        or an encrypted JSON keystore; its passphrase from --passphrase-env',
  '                           <NAME>, else asked on the terminal',
].join('\n');

/** The wallet of --key-env or --keystore; throws a UsageError when neither is usable. */
export async function loadWallet(
  flags: WalletFlags,
  env: NodeJS.ProcessEnv,
  askPassphrase: (prompt: string) => Promise<string> = promptHidden,
): Promise<Wallet | HDNodeWallet> {
  if (flags['key-env'] && flags.keystore) throw new UsageError('give --key-env or --keystore, not both');
  if (flags['key-env']) {
    const name = flags['key-env'];
    const key = env[name];
    if (!key) throw new UsageError(`${name} is not set (the key comes from the environment only)`);
    try {
      return new Wallet(key.startsWith('0x') ? key : `0x${key}`);
    } catch {
      throw new UsageError(`${name} is not a valid private key (32 bytes of hex)`); // never echo the key
    }
  }
  if (flags.keystore) {
    let json: string;
    try {
      json = await readFile(flags.keystore, 'utf8');
    } catch (err) {
      throw new UsageError(`--keystore: cannot read ${flags.keystore} (${(err as Error).message})`);
    }
    const passName = flags['passphrase-env'];
    if (passName && env[passName] === undefined) throw new UsageError(`${passName} is not set`);
    const passphrase =
      passName !== undefined
        ? (env[passName] ?? '')
        : await askPassphrase(`passphrase for ${flags.keystore}: `);
    try {
      return await Wallet.fromEncryptedJson(json, passphrase);
    } catch {
      throw new CommandError(`cannot decrypt ${flags.keystore}: wrong passphrase or not a keystore`);
    }
  }
  throw new UsageError('a wallet is needed: --key-env <NAME> or --keystore <file>');
}

/** Asks on the terminal without echoing what is typed. */
export function promptHidden(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) {
    return Promise.reject(new UsageError('no terminal to ask the passphrase on: use --passphrase-env'));
  }
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  return new Promise((resolve) => {
    rl.question(prompt, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    muted = true;
  });
}

/** Prints `value` as JSON (bigints as decimal strings). */
export function printJson(io: CliIo, value: unknown): void {
  io.out(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2));
}
