// gpumesh account | deposit | withdraw: a developer's money. `deposit` approves and deposits tokens
// into the JobEscrow with the wallet and, in the same step, signs a spending cap raised by as much
// (EIP-712, PUT to the coordinator): what was added may be spent. `withdraw` follows the escrow's
// flow: request an unlock (no new jobs from then on), wait the escrow's unlock delay, withdraw.
import { JsonRpcProvider, NonceManager, type HDNodeWallet, type Wallet } from 'ethers';
import {
  attachComputeToken,
  attachJobEscrow,
  depositIntoEscrow,
  formatTokenAmount,
  parseTokenAmount,
  rpcProvider,
} from '@gpumesh/rewards';
import type { AccountDto, ChainInfoDto, GpumeshClient } from '@gpumesh/sdk';
import { consoleIo, type CliIo } from '../io.js';
import {
  CommandError,
  developerClient,
  loadWallet,
  parseCommandArgs,
  printJson,
  runCommand,
  UsageError,
  WALLET_OPTIONS,
  WALLET_USAGE,
} from './command.js';

export const ACCOUNT_USAGE = [
  'usage: gpumesh account [--coordinator <url>] [--json]',
  '  Your balance (free to spend), reserved (held for running jobs), charged (spent so far), your',
  '  signed spending cap and what remains under it. Amounts in tokens (6 decimals); --json: base units.',
].join('\n');

export const DEPOSIT_USAGE = [
  'usage: gpumesh deposit <tokens> (--key-env <NAME> | --keystore <file>) [--no-cap] [--rpc <url>]',
  '                       [--coordinator <url>] [--json]',
  '  Deposits <tokens> (e.g. 25 or 2.5) from your wallet into the JobEscrow (approve + deposit) and',
  '  raises your spending cap by as much (you sign it; the coordinator stores it), so jobs may spend',
  '  it: one step. The coordinator credits the deposit once it is confirmed. --no-cap: deposit only.',
  WALLET_USAGE,
  "  --rpc <url>              the chain's JSON-RPC URL when the coordinator publishes none",
].join('\n');

export const WITHDRAW_USAGE = [
  'usage: gpumesh withdraw <tokens> (--key-env <NAME> | --keystore <file>) [--rpc <url>]',
  '       gpumesh withdraw --cancel (--key-env <NAME> | --keystore <file>)',
  '                       [--coordinator <url>] [--json]',
  '  Withdrawing from the JobEscrow takes two steps: the first run requests an unlock (from then on',
  '  the coordinator accepts no new jobs from you, and what you spent is settled); once the',
  "  escrow's unlock delay has passed, run it again to withdraw <tokens> to your wallet.",
  '  --cancel withdraws the unlock request (you may submit jobs again).',
  WALLET_USAGE,
  "  --rpc <url>              the chain's JSON-RPC URL when the coordinator publishes none",
].join('\n');

/** A positive token amount from the command line, in base units (a usage error otherwise). */
export function tokens(text: string | undefined, what: string): bigint {
  if (text === undefined) throw new UsageError(`expected the amount of tokens to ${what}`);
  let amount: bigint;
  try {
    amount = parseTokenAmount(text);
  } catch {
    throw new UsageError(`"${text}" is not a token amount (e.g. 25 or 2.5; up to 6 decimals)`);
  }
  if (amount <= 0n) throw new UsageError(`the amount to ${what} must be more than 0`);
  return amount;
}

export const fmt = (units: string | bigint): string => formatTokenAmount(BigInt(units));

/** What GET /v1/account shows, with charged (spent − reserved) when the account has a cap. */
function accountSummary(a: AccountDto): Record<string, string | null> {
  const cap = a.spendingCap ?? null;
  return {
    address: a.address,
    balance: a.balance,
    reserved: a.reserved,
    charged: cap ? (BigInt(cap.spent) - BigInt(a.reserved)).toString() : null,
    cap: cap?.cap ?? null,
    remaining: cap?.authorisedRemaining ?? null,
    escrowUnlockAt: a.escrowUnlockAt ?? null,
  };
}

export async function runAccountCli(
  argv: readonly string[],
  io: CliIo = consoleIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  return runCommand('account', ACCOUNT_USAGE, io, async () => {
    const args = parseCommandArgs(argv, {}, ACCOUNT_USAGE, io);
    if (!args) return 0;
    const { values, positionals } = args;
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const client = await developerClient(env, values.coordinator);
    const s = accountSummary(await client.account());
    if (values.json) {
      printJson(io, s);
      return 0;
    }
    io.out(
      [
        `account   ${s.address}`,
        `balance   ${fmt(s.balance ?? '0')}   free to spend`,
        `reserved  ${fmt(s.reserved ?? '0')}   held for running jobs`,
        `charged   ${s.charged === null ? '—' : fmt(s.charged)}`,
        `cap       ${s.cap === null ? '— (no chain)' : fmt(s.cap)}   the most your escrow may ever be debited`,
        `remaining ${s.remaining === null ? '—' : fmt(s.remaining)}   still authorised under the cap`,
        ...(s.escrowUnlockAt
          ? [`unlock    requested: withdrawable from ${s.escrowUnlockAt}; no new jobs until then`]
          : []),
      ].join('\n'),
    );
    return 0;
  });
}

interface ChainContext {
  client: GpumeshClient;
  wallet: Wallet | HDNodeWallet;
  signer: NonceManager;
  provider: JsonRpcProvider;
  info: ChainInfoDto;
  account: AccountDto;
}

/** The coordinator's chain, the wallet connected to it, and a check that it is the logged-in account's. */
async function chainContext(
  values: {
    coordinator?: string;
    rpc?: string;
    'key-env'?: string;
    keystore?: string;
    'passphrase-env'?: string;
  },
  env: NodeJS.ProcessEnv,
): Promise<ChainContext> {
  const wallet = await loadWallet(values, env);
  const client = await developerClient(env, values.coordinator);
  const [info, account] = await Promise.all([
    client.request<ChainInfoDto>('GET', '/v1/rewards/chain').catch((err: unknown) => {
      throw new CommandError(
        `${client.baseUrl} settles on no chain: there is no escrow (${(err as Error).message})`,
      );
    }),
    client.account(),
  ]);
  if (account.address.toLowerCase() !== wallet.address.toLowerCase()) {
    throw new UsageError(`the wallet is ${wallet.address}, but you are logged in as ${account.address}`);
  }
  const rpcUrl = values.rpc ?? info.rpcUrl;
  if (!rpcUrl)
    throw new UsageError(`${client.baseUrl} publishes no RPC URL for chain ${info.chainId}: pass --rpc`);
  const provider = rpcProvider(rpcUrl, info.chainId);
  return { client, wallet, signer: new NonceManager(wallet.connect(provider)), provider, info, account };
}

export async function runDepositCli(
  argv: readonly string[],
  io: CliIo = consoleIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  return runCommand('deposit', DEPOSIT_USAGE, io, async () => {
    const args = parseCommandArgs(
      argv,
      {
        ...WALLET_OPTIONS,
        rpc: { type: 'string' },
        'no-cap': { type: 'boolean' },
      },
      DEPOSIT_USAGE,
      io,
    );
    if (!args) return 0;
    const { values, positionals } = args;
    if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
    const amount = tokens(positionals[0], 'deposit');
    const ctx = await chainContext(values, env);
    try {
      const escrowAddress = ctx.info.escrow;
      const escrow = attachJobEscrow(escrowAddress, ctx.provider);
      const token = ctx.info.token ?? (await escrow.token());
      const held = await attachComputeToken(token, ctx.provider).balanceOf(ctx.wallet.address);
      if (held < amount) {
        throw new CommandError(`${ctx.wallet.address} holds ${fmt(held)} tokens, less than ${fmt(amount)}`);
      }
      const txHashes = await depositIntoEscrow(ctx.signer, { token, escrow: escrowAddress }, amount);
      let cap: string | null = null;
      if (!values['no-cap']) {
        // Caps are cumulative (the most ever debited): the top-up adds what it deposited.
        const current = BigInt(ctx.account.spendingCap?.cap ?? '0');
        cap = (await ctx.client.authorizeSpending(ctx.wallet, current + amount)).cap;
      }
      const result = { deposited: amount.toString(), escrow: escrowAddress, txHashes, spendingCap: cap };
      if (values.json) printJson(io, result);
      else
        io.out(
          [
            `deposited ${fmt(amount)} tokens into the JobEscrow ${escrowAddress} (tx ${txHashes.at(-1)})`,
            '  the coordinator credits it once it is confirmed (gpumesh account shows it)',
            ...(cap === null ? [] : [`  spending cap signed and stored: ${fmt(cap)} tokens`]),
          ].join('\n'),
        );
      return 0;
    } finally {
      ctx.provider.destroy();
    }
  });
}

export async function runWithdrawCli(
  argv: readonly string[],
  io: CliIo = consoleIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  return runCommand('withdraw', WITHDRAW_USAGE, io, async () => {
    const args = parseCommandArgs(
      argv,
      {
        ...WALLET_OPTIONS,
        rpc: { type: 'string' },
        cancel: { type: 'boolean' },
      },
      WITHDRAW_USAGE,
      io,
    );
    if (!args) return 0;
    const { values, positionals } = args;
    if (values.cancel && positionals.length > 0) throw new UsageError('--cancel takes no amount');
    if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
    const amount = values.cancel ? 0n : tokens(positionals[0], 'withdraw');
    const ctx = await chainContext(values, env);
    try {
      const escrow = attachJobEscrow(ctx.info.escrow, ctx.signer);
      const address = ctx.wallet.address;
      const [unlockAt, delay, escrowed, block] = await Promise.all([
        escrow.unlockAt(address),
        escrow.unlockDelay(),
        escrow.balanceOf(address),
        ctx.provider.getBlock('latest'),
      ]);
      const now = BigInt(block?.timestamp ?? Math.floor(Date.now() / 1000));
      const at = (t: bigint): string => new Date(Number(t) * 1000).toISOString();
      const report = (step: string, extra: Record<string, unknown>, text: string): number => {
        if (values.json) printJson(io, { step, escrowed: escrowed.toString(), ...extra });
        else io.out(text);
        return 0;
      };
      if (values.cancel) {
        if (unlockAt === 0n) throw new CommandError('no unlock is pending');
        const tx = await escrow.cancelUnlock();
        await tx.wait();
        return report(
          'unlock-cancelled',
          { txHash: tx.hash },
          'unlock request withdrawn: you may submit jobs again',
        );
      }
      if (amount > escrowed) {
        throw new CommandError(`the escrow holds ${fmt(escrowed)} tokens for you, less than ${fmt(amount)}`);
      }
      if (unlockAt === 0n) {
        const tx = await escrow.requestUnlock();
        await tx.wait();
        const when = now + delay;
        return report(
          'unlock-requested',
          { txHash: tx.hash, unlockAt: at(when), unlockDelaySeconds: Number(delay) },
          [
            `unlock requested (tx ${tx.hash}): withdrawable from ${at(when)} (the escrow's delay is ${delay} s)`,
            '  until then the coordinator accepts no new jobs from you and settles what you spent;',
            `  then run: gpumesh withdraw ${fmt(amount)} (gpumesh withdraw --cancel to resume instead)`,
          ].join('\n'),
        );
      }
      if (now < unlockAt) {
        throw new CommandError(
          `your unlock is pending: withdrawable from ${at(unlockAt)} (in ${unlockAt - now} s); run this again then`,
        );
      }
      const tx = await escrow.withdraw(amount);
      await tx.wait();
      return report(
        'withdrawn',
        { txHash: tx.hash, withdrawn: amount.toString() },
        `withdrew ${fmt(amount)} tokens from the JobEscrow to ${address} (tx ${tx.hash})`,
      );
    } finally {
      ctx.provider.destroy();
    }
  });
}
