// gpumesh login: signs in to a coordinator with a wallet (Sign-In with Ethereum, through the SDK),
// creates an API key and stores it in the credentials file (0600) for the other developer commands.
import { getAddress } from 'ethers';
import { signIn } from '@gpumesh/sdk';
import { consoleIo, type CliIo } from '../io.js';
import { DEFAULT_COORDINATOR, normaliseUrl, saveCredentials } from './credentials.js';
import { fmt, tokens } from './funds.js';
import {
  loadWallet,
  parseCommandArgs,
  printJson,
  runCommand,
  UsageError,
  WALLET_OPTIONS,
  WALLET_USAGE,
} from './command.js';

export const LOGIN_USAGE = [
  'usage: gpumesh login (--key-env <NAME> | --keystore <file> [--passphrase-env <NAME>])',
  '                     [--coordinator <url>] [--name <key name>] [--cap <tokens>] [--json]',
  '  Signs in to the coordinator with your wallet (Sign-In with Ethereum), creates an API key and',
  '  stores it in ~/.config/gpumesh/credentials.json (mode 0600; $GPUMESH_CONFIG_DIR moves it).',
  WALLET_USAGE,
  `  --coordinator <url>      default $GPUMESH_COORDINATOR, else ${DEFAULT_COORDINATOR}`,
  '  --name <key name>        the API key\'s name (default "gpumesh cli")',
  '  --cap <tokens>           also sign your spending cap (EIP-712): the escrow lets the coordinator',
  '                           debit at most this much in all; `gpumesh deposit` raises it as you top up',
].join('\n');

export async function runLoginCli(
  argv: readonly string[],
  io: CliIo = consoleIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  return runCommand('login', LOGIN_USAGE, io, async () => {
    const args = parseCommandArgs(
      argv,
      {
        ...WALLET_OPTIONS,
        name: { type: 'string' },
        cap: { type: 'string' },
      },
      LOGIN_USAGE,
      io,
    );
    if (!args) return 0;
    const { values, positionals } = args;
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    let coordinator: string;
    try {
      coordinator = normaliseUrl(values.coordinator ?? env.GPUMESH_COORDINATOR ?? DEFAULT_COORDINATOR);
    } catch (err) {
      throw new UsageError(`--coordinator: ${(err as Error).message}`);
    }
    const cap = values.cap === undefined ? null : tokens(values.cap, 'authorise');
    const wallet = await loadWallet(values, env);
    let signedIn: Awaited<ReturnType<typeof signIn>>;
    try {
      signedIn = await signIn(coordinator, wallet, { keyName: values.name ?? 'gpumesh cli' });
    } catch (err) {
      if (err instanceof TypeError) {
        throw new Error(`cannot reach the coordinator at ${coordinator} (${err.message})`);
      }
      throw err;
    }
    const address = getAddress(signedIn.session.address);
    const path = await saveCredentials(env, {
      coordinator,
      apiKey: signedIn.apiKey.secret,
      address,
      accountId: signedIn.session.accountId,
      keyPrefix: signedIn.apiKey.prefix,
      createdAt: new Date().toISOString(),
    });
    // Signing the cap is part of creating the key: one step for a person. Caps only rise.
    let spendingCap: string | null = null;
    if (cap !== null) {
      const account = await signedIn.client.account();
      const current = BigInt(account.spendingCap?.cap ?? '0');
      spendingCap = (
        current >= cap ? current : (await signedIn.client.authorizeSpending(wallet, cap)).cap
      ).toString();
    }
    const summary = {
      coordinator,
      address,
      accountId: signedIn.session.accountId,
      keyPrefix: signedIn.apiKey.prefix,
      credentials: path,
      spendingCap,
    };
    if (values.json) printJson(io, summary);
    else
      io.out(
        [
          `logged in to ${coordinator} as ${summary.address} (account ${summary.accountId})`,
          `API key ${summary.keyPrefix}… stored in ${path} (readable by you only)`,
          ...(spendingCap === null ? [] : [`spending cap signed and stored: ${fmt(spendingCap)} tokens`]),
        ].join('\n'),
      );
    return 0;
  });
}
