// npm run deploy:contracts -- --rpc <url> --admin <addr> --settler <addr> --guardian <addr>
//   --slasher <addr> --minter <addr> [--slash-reviewer <addr>] [--slash-review-delay <s>] [--admin-delay <s>] [--challenge-window <s>]
//   [--max-epoch <s>] [--funding-margin <s>] [--unlock-delay <s>] [--unbonding-delay <s>]
//   [--cap <base units>] --out <contracts.json>
// Deploys ComputeToken, RewardsDistributor, JobEscrow and ProviderStaking for production, one key per
// role, and writes the addresses in the format CONTRACTS_FILE reads. The deployer's key comes from
// the environment (DEPLOYER_KEY), never from a flag, and is never printed. Everything is checked
// before the first transaction: distinct role addresses, the contracts' bounds, the chain id.
// Part of the operator's tools in apps/cli, but run on its own (`npm run deploy:contracts` builds,
// then runs dist/apps/cli/src/deploy-contracts.js), not as a `gpumesh` command.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { getAddress, isAddress, JsonRpcProvider, NonceManager, Wallet, ZeroAddress } from 'ethers';

import {
  DEFAULT_TOKEN_CAP,
  DEV_CHAIN_ID,
  deployAll,
  MAX_CHALLENGE_WINDOW_SECONDS,
  MAX_DELAY_SECONDS,
  MIN_CHALLENGE_WINDOW_SECONDS,
  MIN_FUNDING_MARGIN_SECONDS,
  minimumUnlockDelay,
  type DeployOptions,
} from '@gpumesh/rewards';

import { consoleIo, type CliIo } from './io.js';

export const DEPLOY_USAGE = [
  'usage: npm run deploy:contracts -- --rpc <url> --admin <addr> --settler <addr> --guardian <addr>',
  '         --slasher <addr> --minter <addr> [--slash-reviewer <addr>] [--slash-review-delay <s>] [--admin-delay <s>] [--challenge-window <s>]',
  '         [--max-epoch <s>] [--funding-margin <s>] [--unlock-delay <s>] [--unbonding-delay <s>]',
  '         [--cap <base units>] --out <contracts.json>',
  '  DEPLOYER_KEY (environment): the deployer private key (pays gas; keeps no role afterwards).',
  '  Defaults: --admin-delay 172800, --challenge-window 86400, --max-epoch 3600, --funding-margin 3600,',
  '  --unlock-delay max-epoch + challenge-window + funding-margin, --unbonding-delay 604800,',
  '  --cap 1000000000000000 (10^9 tokens of six decimals), --slash-reviewer the admin, --slash-review-delay 86400.',
].join('\n');

/** The role flags, which must all name different addresses. */
const ROLE_FLAGS = ['admin', 'settler', 'guardian', 'slasher', 'minter'] as const;
type RoleFlag = (typeof ROLE_FLAGS)[number];

const DEFAULTS = {
  adminDelay: 172_800,
  challengeWindow: 86_400,
  maxEpoch: 3_600,
  fundingMargin: 3_600,
  unbondingDelay: 604_800,
} as const;
const MAX_UINT48 = 2 ** 48 - 1;

/** What the command writes: the format CONTRACTS_FILE in the coordinator reads. */
export interface ContractsFile {
  readonly chainId: number;
  readonly token: string;
  readonly distributor: string;
  readonly escrow: string;
  readonly staking: string;
  readonly deployBlock: number;
}

class UsageError extends Error {}

function address(flag: string, value: string | undefined): string {
  if (value === undefined) throw new UsageError(`--${flag} is required`);
  if (!isAddress(value)) throw new UsageError(`--${flag}: not an address: ${value}`);
  const checksummed = getAddress(value);
  if (checksummed === ZeroAddress) throw new UsageError(`--${flag}: the zero address`);
  return checksummed;
}

function seconds(flag: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${flag}: expected whole seconds, got ${value}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n > max)
    throw new UsageError(`--${flag}: ${value} is over the maximum ${max}`);
  return n;
}

function deployerKey(env: NodeJS.ProcessEnv): Wallet {
  const key = env.DEPLOYER_KEY;
  if (!key)
    throw new UsageError('DEPLOYER_KEY is not set (the deployer key comes from the environment only)');
  try {
    return new Wallet(key.startsWith('0x') ? key : `0x${key}`);
  } catch {
    // Never echo the key.
    throw new UsageError('DEPLOYER_KEY is not a valid private key (32 bytes of hex)');
  }
}

interface ParsedArgs {
  readonly rpc: string;
  readonly out: string;
  readonly roles: Readonly<Record<RoleFlag, string>>;
  readonly slashReviewer?: string;
  readonly adminDelaySeconds: number;
  readonly options: Omit<DeployOptions, 'admin' | 'settler' | 'guardian' | 'slasher' | 'minter' | 'mint'>;
}

function parse(argv: readonly string[]): ParsedArgs | 'help' {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      rpc: { type: 'string' },
      admin: { type: 'string' },
      settler: { type: 'string' },
      guardian: { type: 'string' },
      slasher: { type: 'string' },
      minter: { type: 'string' },
      'slash-reviewer': { type: 'string' },
      'slash-review-delay': { type: 'string' },
      'admin-delay': { type: 'string' },
      'challenge-window': { type: 'string' },
      'max-epoch': { type: 'string' },
      'funding-margin': { type: 'string' },
      'unlock-delay': { type: 'string' },
      'unbonding-delay': { type: 'string' },
      cap: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
  if (!values.rpc) throw new UsageError('--rpc is required');
  if (!values.out) throw new UsageError('--out is required');
  const roles = Object.fromEntries(ROLE_FLAGS.map((f) => [f, address(f, values[f])])) as Record<
    RoleFlag,
    string
  >;
  const same: string[] = [];
  for (let i = 0; i < ROLE_FLAGS.length; i++) {
    for (let j = i + 1; j < ROLE_FLAGS.length; j++) {
      const [a, b] = [ROLE_FLAGS[i], ROLE_FLAGS[j]];
      if (roles[a] === roles[b]) same.push(`--${a} and --${b} are the same address ${roles[a]}`);
    }
  }
  if (same.length > 0) {
    throw new UsageError(`every role needs its own key: ${same.join('; ')}`);
  }
  const challengeWindowSeconds = seconds(
    'challenge-window',
    values['challenge-window'],
    DEFAULTS.challengeWindow,
    MAX_CHALLENGE_WINDOW_SECONDS,
  );
  const maxEpochSeconds = seconds('max-epoch', values['max-epoch'], DEFAULTS.maxEpoch, MAX_DELAY_SECONDS);
  if (maxEpochSeconds < 1) throw new UsageError('--max-epoch must be at least 1 second');
  const fundingMarginSeconds = seconds(
    'funding-margin',
    values['funding-margin'],
    DEFAULTS.fundingMargin,
    MAX_DELAY_SECONDS,
  );
  const minimum = minimumUnlockDelay({ maxEpochSeconds, challengeWindowSeconds, fundingMarginSeconds });
  const unlockDelaySeconds = seconds('unlock-delay', values['unlock-delay'], minimum, MAX_DELAY_SECONDS);
  if (unlockDelaySeconds < minimum) {
    throw new UsageError(
      `--unlock-delay ${unlockDelaySeconds} is shorter than max-epoch + challenge-window + funding-margin = ${minimum}`,
    );
  }
  let tokenCap = DEFAULT_TOKEN_CAP;
  if (values.cap !== undefined) {
    if (!/^\d+$/.test(values.cap))
      throw new UsageError(`--cap: expected base units (an integer), got ${values.cap}`);
    tokenCap = BigInt(values.cap);
    if (tokenCap === 0n) throw new UsageError('--cap must be greater than 0');
    if (tokenCap >= 2n ** 256n) throw new UsageError('--cap is over 2^256 - 1');
  }
  return {
    rpc: values.rpc,
    out: values.out,
    roles,
    slashReviewer:
      values['slash-reviewer'] === undefined
        ? undefined
        : address('slash-reviewer', values['slash-reviewer']),
    adminDelaySeconds: seconds('admin-delay', values['admin-delay'], DEFAULTS.adminDelay, MAX_UINT48),
    options: {
      challengeWindowSeconds,
      maxEpochSeconds,
      fundingMarginSeconds,
      unlockDelaySeconds,
      unbondingDelaySeconds: seconds(
        'unbonding-delay',
        values['unbonding-delay'],
        DEFAULTS.unbondingDelay,
        MAX_DELAY_SECONDS,
      ),
      slashReviewDelaySeconds: seconds(
        'slash-review-delay',
        values['slash-review-delay'],
        86_400,
        MAX_DELAY_SECONDS,
      ),
      tokenCap,
    },
  };
}

/** Runs the deploy command on `argv` (without the command name) and returns the exit code. */
export async function runDeployCli(
  argv: readonly string[],
  io: CliIo = consoleIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let args: ParsedArgs;
  let wallet: Wallet;
  try {
    const parsed = parse(argv);
    if (parsed === 'help') {
      io.out(DEPLOY_USAGE);
      return 0;
    }
    args = parsed;
    wallet = deployerKey(env);
    if (existsSync(args.out))
      throw new UsageError(`--out ${args.out} already exists: refusing to overwrite it`);
  } catch (err) {
    io.err(`deploy: ${(err as Error).message}\n${DEPLOY_USAGE}`);
    return 1;
  }
  const provider = new JsonRpcProvider(args.rpc, undefined, { staticNetwork: true, cacheTimeout: -1 });
  try {
    const chainId = Number((await provider.getNetwork()).chainId);
    if (chainId !== DEV_CHAIN_ID) {
      if (args.options.challengeWindowSeconds < MIN_CHALLENGE_WINDOW_SECONDS) {
        io.err(
          `deploy: --challenge-window ${args.options.challengeWindowSeconds} is under ${MIN_CHALLENGE_WINDOW_SECONDS} s, which only the dev chain (${DEV_CHAIN_ID}) accepts; this is chain ${chainId}`,
        );
        return 1;
      }
      if (args.options.fundingMarginSeconds < MIN_FUNDING_MARGIN_SECONDS) {
        io.err(
          `deploy: --funding-margin ${args.options.fundingMarginSeconds} is under ${MIN_FUNDING_MARGIN_SECONDS} s, which only the dev chain (${DEV_CHAIN_ID}) accepts; this is chain ${chainId}`,
        );
        return 1;
      }
    }
    const signer = new NonceManager(wallet.connect(provider));
    io.out(`deploying to chain ${chainId} from ${wallet.address}`);
    const deployed = await deployAll(signer, {
      ...args.options,
      ...args.roles,
      slashReviewer: args.slashReviewer,
      adminDelaySeconds: args.adminDelaySeconds,
    });
    const file: ContractsFile = {
      chainId,
      token: deployed.token,
      distributor: deployed.distributor,
      escrow: deployed.escrow,
      staking: deployed.staking,
      deployBlock: deployed.deployBlock,
    };
    await writeFile(args.out, `${JSON.stringify(file, null, 2)}\n`, { flag: 'wx' });
    const o = args.options;
    io.out(
      [
        `ComputeToken        ${file.token}  cap ${o.tokenCap} base units; minter ${args.roles.minter}`,
        `RewardsDistributor  ${file.distributor}  challenge window ${o.challengeWindowSeconds} s; settler ${args.roles.settler}, guardian ${args.roles.guardian}`,
        `JobEscrow           ${file.escrow}  unlock delay ${o.unlockDelaySeconds} s (max epoch ${o.maxEpochSeconds} s, funding margin ${o.fundingMarginSeconds} s); no roles (debits need a batch committed with a final root)`,
        `ProviderStaking     ${file.staking}  unbonding delay ${o.unbondingDelaySeconds} s; slasher ${args.roles.slasher}, slash reviewer ${args.slashReviewer ?? args.roles.admin}, review delay ${o.slashReviewDelaySeconds} s`,
        `default admin       ${args.roles.admin} on all four (transfer delay ${args.adminDelaySeconds} s on token, distributor, escrow)`,
        `deploy block        ${file.deployBlock}`,
        `wrote ${args.out}`,
      ].join('\n'),
    );
    return 0;
  } catch (err) {
    const e = err as { shortMessage?: string; message?: string };
    io.err(`deploy failed: ${e.shortMessage ?? e.message ?? String(err)}`);
    return 1;
  } finally {
    provider.destroy();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runDeployCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : 'deploy failed');
      process.exit(1);
    },
  );
}
