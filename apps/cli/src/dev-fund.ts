// gpumesh dev fund: on a coordinator's local dev chain (`npm start`), gives a wallet ETH for gas and the
// escrow's token from the dev faucet (fundFromDevFaucet, the same code as the agent's `dev-fund` and
// `npm start`'s local agents), then says how to deposit into the JobEscrow, or deposits itself with
// `--deposit` and the wallet's key from an environment variable (never a flag, never printed). A
// deposit also raises the wallet's spending cap on the JobEscrow by the amount deposited (its own
// `setSpendingCap`): topping up authorises spending what was added, in one step (`--no-cap` not).
import { parseArgs } from 'node:util';

import {
  JsonRpcProvider,
  NonceManager,
  Wallet,
  formatEther,
  getAddress,
  isAddress,
  parseEther,
} from 'ethers';

import {
  MAX_SPENDING_CAP,
  attachComputeToken,
  attachJobEscrow,
  depositIntoEscrow,
  formatTokenAmount,
  fundFromDevFaucet,
  parseTokenAmount,
  rpcProvider,
} from '@gpumesh/rewards';

import { consoleIo, type CliIo } from './io.js';

/** What `gpumesh dev fund` sends by default: gas for a few transactions, and tokens to deposit. */
export const DEV_FUND_DEFAULT_ETH = '1';
export const DEV_FUND_DEFAULT_TOKENS = '1000';
const DEFAULT_COORDINATOR = 'http://127.0.0.1:8080';

export const DEV_FUND_USAGE = [
  'usage: gpumesh dev fund <address> [--amount <tokens>] [--eth <n>] [--coordinator <url>]',
  '                        [--deposit <tokens> --key-env <NAME> [--no-cap]] [--json]',
  "  On a coordinator's local dev chain (npm start; GET /v1/rewards/chain says dev), sends <address>",
  `  ETH for gas (--eth, default ${DEV_FUND_DEFAULT_ETH}) and the escrow's token (--amount, default ${DEV_FUND_DEFAULT_TOKENS})`,
  '  from the dev faucet (anvil test account 8), then prints how to deposit into the JobEscrow.',
  '  --coordinator   the coordinator whose chain to use (default http://127.0.0.1:8080)',
  '  --deposit       also approve and deposit that many tokens into the JobEscrow from <address>,',
  '                  signing with the private key in the environment variable named by --key-env,',
  '                  and raise its spending cap by as much (JobEscrow.setSpendingCap): jobs may spend',
  '                  what was deposited; --no-cap deposits without raising it',
  '  Refuses on any chain that is not a local dev chain: there is no faucet there.',
].join('\n');

class UsageError extends Error {}

interface ChainInfo {
  chainId: number;
  rpcUrl: string | null;
  dev: boolean;
  token: string | null;
  escrow: string;
}

interface DevFundValues {
  amount?: string;
  eth?: string;
  coordinator?: string;
  deposit?: string;
  'key-env'?: string;
  'no-cap'?: boolean;
  json?: boolean;
  help?: boolean;
}

function tokens(text: string, flag: string): bigint {
  try {
    return parseTokenAmount(text);
  } catch {
    throw new UsageError(`${flag}: "${text}" is not a token amount (up to 6 decimals)`);
  }
}

async function chainInfo(coordinator: string): Promise<ChainInfo> {
  let res: Response;
  try {
    res = await fetch(`${coordinator}/v1/rewards/chain`, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new Error(
      `cannot reach the coordinator at ${coordinator} (${(err as Error).message}); start it with npm start or pass --coordinator`,
    );
  }
  if (res.status === 404) throw new Error(`${coordinator} settles on no chain: there is nothing to fund`);
  if (!res.ok) throw new Error(`GET ${coordinator}/v1/rewards/chain: ${res.status} ${await res.text()}`);
  return (await res.json()) as ChainInfo;
}

/** Runs `gpumesh dev fund` on `argv` (after `dev fund`); returns the exit code. */
export async function runDevFundCli(
  argv: readonly string[],
  io: CliIo = consoleIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let values: DevFundValues;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        amount: { type: 'string' },
        eth: { type: 'string' },
        coordinator: { type: 'string' },
        deposit: { type: 'string' },
        'key-env': { type: 'string' },
        'no-cap': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.err(`gpumesh dev fund: ${(err as Error).message}\n${DEV_FUND_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(DEV_FUND_USAGE);
    return 0;
  }
  let address: string;
  let wei: bigint;
  let amount: bigint;
  let deposit: { amount: bigint; wallet: Wallet } | null = null;
  let coordinator: string;
  try {
    if (positionals.length !== 1 || !isAddress(positionals[0])) {
      throw new UsageError('expected one 0x address: the wallet to fund');
    }
    address = getAddress(positionals[0]);
    try {
      wei = parseEther(values.eth ?? DEV_FUND_DEFAULT_ETH);
    } catch {
      throw new UsageError(`--eth: "${values.eth}" is not an ETH amount`);
    }
    amount = tokens(values.amount ?? DEV_FUND_DEFAULT_TOKENS, '--amount');
    coordinator = (values.coordinator ?? DEFAULT_COORDINATOR).replace(/\/+$/, '');
    new URL(coordinator);
    if (values.deposit !== undefined) {
      const depositAmount = tokens(values.deposit, '--deposit');
      const name = values['key-env'];
      if (!name || !env[name]) throw new UsageError('--deposit needs --key-env naming a set variable');
      let wallet: Wallet;
      try {
        const key = env[name];
        wallet = new Wallet(key.startsWith('0x') ? key : `0x${key}`);
      } catch {
        throw new UsageError(`${name} is not a valid private key (32 bytes of hex)`); // never echo the key
      }
      if (wallet.address !== address) throw new UsageError(`the key in ${name} is not ${address}'s`);
      deposit = { amount: depositAmount, wallet };
    } else if (values['key-env'] !== undefined) {
      throw new UsageError('--key-env is only used with --deposit');
    } else if (values['no-cap']) {
      throw new UsageError('--no-cap is only used with --deposit');
    }
  } catch (err) {
    if (!(err instanceof UsageError) && !(err instanceof TypeError)) throw err;
    io.err(`gpumesh dev fund: ${err.message}\n${DEV_FUND_USAGE}`);
    return 2;
  }

  let provider: JsonRpcProvider | null = null;
  let spendingCap: bigint | null = null;
  try {
    const info = await chainInfo(coordinator);
    if (!info.dev || !info.rpcUrl || !info.token) {
      throw new Error(
        `chain ${info.chainId} of ${coordinator} is not a local dev chain: there is no faucet. Send ${address} a little ETH for gas on that chain and the escrow's token (${info.token ?? 'see GET /v1/rewards/chain'}) from an exchange or the operator, then deposit into the JobEscrow ${info.escrow}`,
      );
    }
    provider = rpcProvider(info.rpcUrl, info.chainId);
    const txHashes = await fundFromDevFaucet(provider, info.token, [{ to: address, wei, tokens: amount }]);
    if (deposit) {
      const held = await attachComputeToken(info.token, provider).balanceOf(address);
      if (held < deposit.amount) {
        throw new Error(
          `${address} holds ${formatTokenAmount(held)} tokens, less than --deposit ${formatTokenAmount(deposit.amount)}`,
        );
      }
      const signer = new NonceManager(deposit.wallet.connect(provider));
      txHashes.push(
        ...(await depositIntoEscrow(signer, { token: info.token, escrow: info.escrow }, deposit.amount)),
      );
      if (!values['no-cap']) {
        // Caps are cumulative (what may ever be debited): the top-up adds what it deposited.
        const escrow = attachJobEscrow(info.escrow, signer);
        const current = await escrow.spendingCapOf(address);
        const raised = current + deposit.amount;
        spendingCap = raised > MAX_SPENDING_CAP ? MAX_SPENDING_CAP : raised;
        if (spendingCap > current) {
          const tx = await escrow.setSpendingCap(spendingCap);
          await tx.wait(1);
          txHashes.push(tx.hash);
        }
      }
    }
    const token = attachComputeToken(info.token, provider);
    const [ethBalance, tokenBalance, symbol] = await Promise.all([
      provider.getBalance(address),
      token.balanceOf(address),
      token.symbol().catch(() => 'tokens'),
    ]);
    const result = {
      address,
      chainId: info.chainId,
      rpcUrl: info.rpcUrl,
      token: info.token,
      escrow: info.escrow,
      eth: ethBalance.toString(),
      tokens: tokenBalance.toString(),
      deposited: deposit ? deposit.amount.toString() : '0',
      spendingCap: spendingCap?.toString() ?? null,
      txHashes,
    };
    if (values.json) {
      io.out(JSON.stringify(result, null, 2));
      return 0;
    }
    io.out(
      [
        `funded ${address} from the dev faucet (chain ${info.chainId}, ${info.rpcUrl})`,
        `  gas      ${formatEther(ethBalance)} ETH`,
        `  tokens   ${formatTokenAmount(tokenBalance)} ${symbol} in the wallet (token ${info.token})`,
        ...(deposit
          ? [
              `  escrow   deposited ${formatTokenAmount(deposit.amount)} ${symbol} into the JobEscrow ${info.escrow}:`,
              '           the coordinator credits it to your account once it is confirmed (a few seconds here)',
              ...(spendingCap === null
                ? []
                : [
                    `  cap      your spending cap on the JobEscrow is now ${formatTokenAmount(spendingCap)} ${symbol}: jobs may spend what you deposited`,
                  ]),
            ]
          : []),
        'next:',
        ...(deposit
          ? []
          : [
              `  1. deposit from ${address}: ComputeToken(${info.token}).approve(${info.escrow}, amount), then`,
              `     JobEscrow(${info.escrow}).deposit(amount) (amounts in base units, 6 decimals), or let this do it:`,
              `     gpumesh dev fund ${address} --amount 0 --eth 0 --deposit ${formatTokenAmount(amount)} --key-env <VAR with its key>`,
            ]),
        `  ${deposit ? '1' : '2'}. sign in with that wallet (GET ${coordinator}/v1/auth/nonce, POST /v1/auth/siwe) and create an API key`,
        '     (POST /v1/auth/api-keys); GET /v1/account shows the deposit as your balance',
        ...(spendingCap === null
          ? [
              `  ${deposit ? '2' : '3'}. sign a spending cap so jobs may spend it: gpumesh spending-cap --cap <base units> --key-env <VAR> \\`,
              `       --coordinator ${coordinator} --api-key-env <VAR with the API key>`,
            ]
          : []),
      ].join('\n'),
    );
    return 0;
  } catch (err) {
    io.err(`gpumesh dev fund: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    provider?.destroy();
  }
}
