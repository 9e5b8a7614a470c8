// `gpumesh-agent stake | unstake | claim`: the agent's wallet on the settlement chain. The coordinator
// says which chain and contracts (GET /v1/rewards/chain) and which epoch to claim (GET
// /v1/rewards/proof/:address); `claim` then checks the epoch's file (GET /v1/rewards/epochs/:n/file)
// against the root and file hash on chain and builds the wallet's proof from it itself.
import { readFile } from 'node:fs/promises';

import { JsonRpcProvider, Wallet, formatEther, parseEther } from 'ethers';
import {
  RewardsError,
  attachComputeToken,
  attachProviderStaking,
  EpochProofs,
  attachRewardsDistributor,
  auditEpoch,
  claimRewards,
  formatTokenAmount,
  fundFromDevFaucet,
  parseEpochFile,
  parseTokenAmount,
  readStake,
  requestUnbond,
  stakeTokens,
  withdrawUnbonded,
  fundEpochFromEscrow,
  type ClaimTicket,
  type FundEpochResult,
  type StakeInfo,
  rpcProvider,
} from '@gpumesh/rewards';
import { agentPaths, readAgentConfig } from '../agent-config.js';
import { EpochFileStore } from '../daemon/epoch-store.js';
import { readKeystore, unlockKeystore, type UnlockedIdentity } from '../keystore.js';
import { epochFileFromStoreOrPeers, type EpochFileSource } from './peer-epoch-files.js';
import { CliError, type Output } from './output.js';
import { readPassphrase } from './passphrase.js';
import type { CommonOptions } from './commands.js';

export const CHAIN_RPC_ENV = 'GPUMESH_CHAIN_RPC_URL';

export interface ChainOptions extends CommonOptions {
  /** Overrides the coordinator URL of the agent's config. */
  coordinator?: string;
  /** Overrides the RPC URL the coordinator publishes (also GPUMESH_CHAIN_RPC_URL). */
  rpc?: string;
  /** Pins the RewardsDistributor: the coordinator's chain info must name it (claim). */
  distributor?: string;
}

interface ChainInfo {
  chainId: number;
  rpcUrl: string | null;
  dev: boolean;
  token: string | null;
  distributor: string;
  escrow: string;
  staking: string | null;
}

interface ClaimTicketBody {
  epoch: number;
  index: number;
  account: string;
  cumulativeAmount: string;
  proof: string[];
  distributor: string | null;
  chainId: number | null;
}

interface Session {
  coordinatorUrl: string;
  info: ChainInfo;
  rpcUrl: string;
  provider: JsonRpcProvider;
  wallet: Wallet;
  /** The agent's libp2p identity (it asks its epoch peers for files as itself: they only let it in). */
  peerKey: UnlockedIdentity['peerKey'];
  symbol: string;
}

export async function getJson<T>(
  base: string,
  path: string,
): Promise<{ ok: true; body: T } | { ok: false; status: number; message: string }> {
  let response: Response;
  try {
    response = await fetch(new URL(path, base), { signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    throw new CliError(`cannot reach the coordinator at ${base}: ${(err as Error).message}`);
  }
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (response.ok) return { ok: true, body: body as T };
  const message =
    (body as { error?: { message?: string } } | null)?.error?.message ?? `HTTP ${response.status}`;
  return { ok: false, status: response.status, message };
}

/** The chain the coordinator settles on (or the one --rpc and --distributor name), connected. */
export interface ChainConnection {
  coordinatorUrl: string;
  info: ChainInfo;
  rpcUrl: string;
  provider: JsonRpcProvider;
}

/**
 * Connects to the chain the coordinator settles on, checking the RPC serves that chain. `offline`
 * (claim --file, earnings --files): the coordinator is not asked anything; --rpc and --distributor
 * say where to go.
 */
export async function connectChain(opts: ChainOptions, offline = false): Promise<ChainConnection> {
  const config = await readAgentConfig(agentPaths(opts.dataDir).config);
  const coordinatorUrl = opts.coordinator ?? config.coordinatorUrl;
  let info: ChainInfo;
  if (offline) {
    const rpc = opts.rpc ?? opts.env[CHAIN_RPC_ENV] ?? config.chainRpcUrl;
    if (!rpc || !opts.distributor) {
      throw new CliError(
        'without the coordinator (--file, --files) it needs --rpc <url> and --distributor <address>',
      );
    }
    const probe = new JsonRpcProvider(rpc, undefined, { staticNetwork: true });
    try {
      const chainId = Number(await probe.send('eth_chainId', []));
      info = {
        chainId,
        rpcUrl: rpc,
        dev: false,
        token: null,
        distributor: opts.distributor,
        escrow: '',
        staking: null,
      };
    } catch (err) {
      throw new CliError(`cannot reach the chain at ${rpc}: ${(err as Error).message.split('\n')[0]}`);
    } finally {
      probe.destroy();
    }
  } else {
    const chain = await getJson<ChainInfo>(coordinatorUrl, '/v1/rewards/chain');
    if (!chain.ok) {
      throw new CliError(
        chain.status === 404
          ? `the coordinator at ${coordinatorUrl} does not settle on a chain (${chain.message})`
          : `${coordinatorUrl}/v1/rewards/chain answered ${chain.status}: ${chain.message}`,
      );
    }
    info = chain.body;
    if (opts.distributor && opts.distributor.toLowerCase() !== info.distributor.toLowerCase()) {
      throw new CliError(
        `refusing: the coordinator settles on the distributor ${info.distributor}, not the --distributor ${opts.distributor} you pinned`,
      );
    }
  }
  const rpcUrl = opts.rpc ?? opts.env[CHAIN_RPC_ENV] ?? info.rpcUrl ?? config.chainRpcUrl;
  if (!rpcUrl) {
    throw new CliError(
      `no chain RPC URL: the coordinator publishes none; pass --rpc <url> or set ${CHAIN_RPC_ENV}`,
    );
  }
  const provider = rpcProvider(rpcUrl, info.chainId);
  try {
    const network = await Promise.race([
      provider.send('eth_chainId', []) as Promise<string>,
      new Promise<never>((_r, reject) =>
        setTimeout(() => reject(new Error('no answer in 10 s')), 10_000).unref(),
      ),
    ]);
    if (Number(network) !== info.chainId) {
      throw new CliError(
        `the chain at ${rpcUrl} is chain ${Number(network)}, the coordinator settles on ${info.chainId}`,
      );
    }
  } catch (err) {
    provider.destroy();
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot reach the chain at ${rpcUrl}: ${(err as Error).message.split('\n')[0]}`);
  }
  return { coordinatorUrl, info, rpcUrl, provider };
}

/** Unlocks the keystore and connects its wallet to the chain (`connectChain`). */
async function openSession(opts: ChainOptions, offline = false): Promise<Session> {
  const { coordinatorUrl, info, rpcUrl, provider } = await connectChain(opts, offline);
  const paths = agentPaths(opts.dataDir);
  try {
    const passphrase = await readPassphrase(opts.env, false);
    const identity = await unlockKeystore(await readKeystore(paths.keystore), passphrase);
    const wallet = identity.wallet.connect(provider);
    const tokenAddress = info.token ?? (await attachRewardsDistributor(info.distributor, provider).token());
    const symbol = await attachComputeToken(tokenAddress, provider)
      .symbol()
      .catch(() => 'tokens');
    return {
      coordinatorUrl,
      info: { ...info, token: tokenAddress },
      rpcUrl,
      provider,
      wallet,
      peerKey: identity.peerKey,
      symbol,
    };
  } catch (err) {
    provider.destroy();
    throw err;
  }
}

async function withSession<T>(
  opts: ChainOptions,
  run: (s: Session) => Promise<T>,
  offline = false,
): Promise<T> {
  const session = await openSession(opts, offline);
  try {
    return await run(session);
  } catch (err) {
    throw toCliError(err, session);
  } finally {
    session.provider.destroy();
  }
}

function toCliError(err: unknown, s: Session): Error {
  if (err instanceof CliError) return err;
  if (err instanceof RewardsError) return new CliError(err.message);
  const e = err as { code?: string; shortMessage?: string; message?: string };
  if (e.code === 'INSUFFICIENT_FUNDS') {
    return new CliError(
      `the wallet ${s.wallet.address} has too little ETH to pay for gas on chain ${s.info.chainId}`,
    );
  }
  if (e.code === 'CALL_EXCEPTION' && e.shortMessage)
    return new CliError(`the chain refused: ${e.shortMessage}`);
  if (
    e.code === 'NETWORK_ERROR' ||
    e.code === 'TIMEOUT' ||
    /ECONNREFUSED|fetch failed/.test(e.message ?? '')
  ) {
    return new CliError(`the chain at ${s.rpcUrl} stopped answering: ${e.shortMessage ?? e.message}`);
  }
  return err instanceof Error ? err : new Error(String(err));
}

async function ensureGas(s: Session): Promise<void> {
  if ((await s.provider.getBalance(s.wallet.address)) === 0n) {
    throw new CliError(
      `the wallet ${s.wallet.address} has no ETH to pay for gas on chain ${s.info.chainId}; send it a little first`,
    );
  }
}

function stakingOf(s: Session): string {
  if (!s.info.staking)
    throw new CliError(`the coordinator at ${s.coordinatorUrl} publishes no staking contract`);
  return s.info.staking;
}

function amountArg(text: string | undefined, what: string): bigint {
  if (text === undefined) throw new CliError(`${what} needs an amount of tokens, e.g. 100 or 2.5`);
  let amount: bigint;
  try {
    amount = parseTokenAmount(text);
  } catch {
    throw new CliError(`${what}: "${text}" is not a token amount (up to 6 decimals, e.g. 100 or 2.5)`);
  }
  if (amount <= 0n) throw new CliError(`${what}: the amount must be positive`);
  return amount;
}

function stakeJson(stake: StakeInfo): Record<string, string | number> {
  return {
    bonded: stake.bonded.toString(),
    unbonding: stake.unbonding.toString(),
    unbondingEndsAt: stake.unbondingEndsAt,
    frozen: stake.frozen.toString(),
  };
}

function stakeLines(s: Session, stake: StakeInfo): string[] {
  const lines = [`  bonded     ${formatTokenAmount(stake.bonded)} ${s.symbol}`];
  if (stake.unbonding > 0n) {
    lines.push(
      `  unbonding  ${formatTokenAmount(stake.unbonding)} ${s.symbol} (withdrawable from ${new Date(stake.unbondingEndsAt * 1000).toISOString()}; slashable until then)`,
    );
  }
  if (stake.frozen > 0n) {
    lines.push(
      `  frozen     ${formatTokenAmount(stake.frozen)} ${s.symbol} (held by pending slash proposals: see the coordinator's /v1/evidence)`,
    );
  }
  return lines;
}

/** `stake [amount]`: approve + stake from the keystore wallet; without an amount, shows the stake. */
export async function stakeCommand(opts: ChainOptions & { amount?: string }, out: Output): Promise<void> {
  await withSession(opts, async (s) => {
    const staking = stakingOf(s);
    const token = attachComputeToken(s.info.token!, s.provider);
    if (opts.amount === undefined) {
      const stake = await readStake(attachProviderStaking(staking, s.provider), s.wallet.address);
      const balance = await token.balanceOf(s.wallet.address);
      out.result(
        { address: s.wallet.address, staking, ...stakeJson(stake), balance: balance.toString() },
        () =>
          [
            `stake of ${s.wallet.address} on ${staking}`,
            ...stakeLines(s, stake),
            `  wallet     ${formatTokenAmount(balance)} ${s.symbol}`,
          ].join('\n'),
      );
      return;
    }
    const amount = amountArg(opts.amount, 'stake');
    await ensureGas(s);
    const done = await stakeTokens({ staking, signer: s.wallet, amount }).catch((err: unknown) => {
      if (err instanceof RewardsError && err.code === 'INSUFFICIENT_FUNDS') {
        throw new CliError(`cannot stake ${formatTokenAmount(amount)} ${s.symbol}: ${err.message}`);
      }
      throw err;
    });
    out.result(
      {
        address: s.wallet.address,
        staking,
        staked: amount.toString(),
        txHash: done.txHash,
        ...stakeJson(done.stake),
      },
      () =>
        [
          `staked ${formatTokenAmount(amount)} ${s.symbol} from ${s.wallet.address} (tx ${done.txHash})`,
          ...stakeLines(s, done.stake),
        ].join('\n'),
    );
  });
}

/** `unstake <amount|all>`: starts unbonding; `unstake --withdraw` takes out what finished unbonding. */
export async function unstakeCommand(
  opts: ChainOptions & { amount?: string; withdraw: boolean },
  out: Output,
): Promise<void> {
  await withSession(opts, async (s) => {
    const staking = stakingOf(s);
    await ensureGas(s);
    if (opts.withdraw) {
      const done = await withdrawUnbonded({ staking, signer: s.wallet });
      out.result(
        {
          address: s.wallet.address,
          withdrawn: done.withdrawn.toString(),
          txHash: done.txHash,
          ...stakeJson(done.stake),
        },
        () =>
          [
            `withdrew ${formatTokenAmount(done.withdrawn)} ${s.symbol} to ${s.wallet.address} (tx ${done.txHash})`,
            ...stakeLines(s, done.stake),
          ].join('\n'),
      );
      return;
    }
    const amount = opts.amount === 'all' ? undefined : amountArg(opts.amount, 'unstake');
    const done = await requestUnbond({ staking, signer: s.wallet, amount });
    out.result({ address: s.wallet.address, txHash: done.txHash, ...stakeJson(done.stake) }, () =>
      [
        `unbonding started (tx ${done.txHash}); run \`gpumesh-agent unstake --withdraw\` once it ends`,
        ...stakeLines(s, done.stake),
      ].join('\n'),
    );
  });
}

/**
 * `claim`: asks the coordinator which epoch is claimable, checks that epoch's file against the root
 * and file hash posted on chain (`auditEpoch`), builds the wallet's leaf and proof from the checked
 * file, and claims everything owed so far. Nothing the coordinator says is sent without that check:
 * a coordinator serving a file the chain does not commit to gets a refusal, not a transaction.
 */
export async function claimCommand(
  opts: ChainOptions & { file?: string; peers?: readonly string[] },
  out: Output,
): Promise<void> {
  // --file: an epoch file kept from before (a watcher's, a peer's); the coordinator may be gone.
  const fileText = opts.file === undefined ? undefined : await readEpochFileText(opts.file);
  if (fileText === undefined) {
    const config = await readAgentConfig(agentPaths(opts.dataDir).config);
    const coordinatorUrl = opts.coordinator ?? config.coordinatorUrl;
    if (!(await answers(coordinatorUrl))) {
      await claimWithoutCoordinator(opts, out, coordinatorUrl);
      return;
    }
  }
  await withSession(
    opts,
    async (s) => {
      const address = s.wallet.address;
      const distributorAddress = s.info.distributor;
      let epoch: number;
      if (fileText !== undefined) {
        epoch = epochOf(fileText);
      } else {
        const ticketRes = await getJson<ClaimTicketBody>(s.coordinatorUrl, `/v1/rewards/proof/${address}`);
        if (!ticketRes.ok) {
          if (ticketRes.status === 404) throw new CliError(`nothing claimable yet: ${ticketRes.message}`);
          throw new CliError(
            `${s.coordinatorUrl}/v1/rewards/proof answered ${ticketRes.status}: ${ticketRes.message}`,
          );
        }
        const offered = ticketRes.body;
        if (offered.distributor && offered.distributor.toLowerCase() !== distributorAddress.toLowerCase()) {
          throw new CliError(
            `refusing to claim: the coordinator's ticket names the distributor ${offered.distributor}, its chain info ${distributorAddress}`,
          );
        }
        epoch = offered.epoch;
      }
      // With --file, a final epoch nobody funded is funded from that file (earlier ones must be funded).
      const fileOf =
        fileText === undefined
          ? undefined
          : async (e: number): Promise<string> => {
              if (e === epoch) return fileText;
              throw new CliError(`epoch ${e} is not funded either: claim with its file first (--file)`);
            };
      await claimEpoch(s, out, epoch, fileText, undefined, fileOf);
    },
    fileText !== undefined,
  );
}

/** Whether anything answers HTTP at `base` (a coordinator that is down or gone does not). */
async function answers(base: string): Promise<boolean> {
  try {
    await fetch(new URL('/v1/rewards/chain', base), { signal: AbortSignal.timeout(10_000) });
    return true;
  } catch {
    return false;
  }
}

/** Epochs `claim` looks back from the chain's last one for a final and funded one. */
const OFFLINE_EPOCH_SCAN = 256;

/**
 * `claim` with the coordinator unreachable: the chain says which epoch is the newest final and funded
 * one and what its file hashes to; the file comes from this agent's kept files or from a peer
 * (epochPeers of the config, --peer), and is checked against the chain like any other.
 */
async function claimWithoutCoordinator(
  opts: ChainOptions & { peers?: readonly string[] },
  out: Output,
  coordinatorUrl: string,
): Promise<void> {
  const paths = agentPaths(opts.dataDir);
  const config = await readAgentConfig(paths.config);
  const keystore = (await readKeystore(paths.keystore)) as { address?: string };
  const store = await EpochFileStore.open(paths.epochs, keystore.address ?? '0x', config.keepOtherEpochFiles);
  const kept = store.distributors();
  const distributorAddress = opts.distributor ?? (kept.length === 1 ? kept[0] : undefined);
  if (distributorAddress === undefined) {
    throw new CliError(
      `the coordinator at ${coordinatorUrl} does not answer; to claim without it pass --distributor <address>` +
        (kept.length > 1 ? ` (kept files name ${kept.join(', ')})` : ''),
    );
  }
  const peers = [...(opts.peers ?? []), ...config.epochPeers];
  await withSession(
    { ...opts, distributor: distributorAddress },
    async (s) => {
      const distributor = attachRewardsDistributor(s.info.distributor, s.provider);
      const last = Number(await distributor.lastEpoch());
      let epoch = 0;
      // The newest final epoch: if nobody funded it (the settler is gone), this claim funds it.
      for (let e = last; e >= 1 && e > last - OFFLINE_EPOCH_SCAN; e--) {
        if (await distributor.isFinal(e)) {
          epoch = e;
          break;
        }
      }
      if (epoch === 0) {
        throw new CliError(
          `nothing claimable yet: no final epoch on ${s.info.distributor} (last posted: ${last})`,
        );
      }
      const fileOf = async (e: number): Promise<{ text: string; source: EpochFileSource }> => {
        const [, fileHash] = await distributor.epochRoot(e);
        try {
          return await epochFileFromStoreOrPeers(
            store,
            s.peerKey,
            peers,
            s.info.distributor.toLowerCase(),
            e,
            fileHash.toLowerCase(),
          );
        } catch (err) {
          throw new CliError(
            `the coordinator at ${coordinatorUrl} does not answer and epoch ${e}'s file (hash ${fileHash}) could not be had: ${(err as Error).message}`,
          );
        }
      };
      const file = await fileOf(epoch);
      await claimEpoch(s, out, epoch, file.text, file.source, async (e) => (await fileOf(e)).text);
    },
    true,
  );
}

async function readEpochFileText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read the epoch file ${path}: ${(err as Error).message}`);
  }
}

function epochOf(text: string): number {
  try {
    return parseEpochFile(text).epoch;
  } catch (err) {
    throw new CliError(`not an epoch file: ${(err as Error).message}`);
  }
}

/**
 * Checks epoch `epoch`'s file against the chain, then claims what the wallet is owed. An epoch that
 * is final but that nobody has funded (the settler gone) is funded first from the escrow, with the
 * debits committed on chain beside its root: those of the epochs before it too, in order, with their
 * files from `fileOf` (each checked against the chain before anything is sent).
 */
async function claimEpoch(
  s: Session,
  out: Output,
  epoch: number,
  fileText: string | undefined,
  fileSource?: EpochFileSource,
  fileOf?: (epoch: number) => Promise<string>,
): Promise<void> {
  const address = s.wallet.address;
  const distributorAddress = s.info.distributor;
  const distributor = attachRewardsDistributor(distributorAddress, s.provider);
  const t = await verifiedTicket(s, distributor, epoch, address, fileText);
  const cumulative = t.cumulativeAmount;
  if (!(await distributor.isFinal(t.epoch))) {
    const [, , claimableAt] = await distributor.epochRoot(t.epoch);
    throw new CliError(
      claimableAt > 0n
        ? `the challenge window of epoch ${t.epoch} has not passed yet: claimable from ${new Date(Number(claimableAt) * 1000).toISOString()}`
        : `epoch ${t.epoch} is not on chain ${s.info.chainId} (a vetoed root, or another chain)`,
    );
  }
  let fundedHere: FundEpochResult[] = [];
  if (!(await distributor.isFunded(t.epoch)) && fileOf !== undefined) {
    fundedHere = await fundPendingEpochs(s, distributor, t, fileOf);
  }
  if (!(await distributor.isFunded(t.epoch))) {
    const [total, funded] = await Promise.all([
      distributor.epochTotal(t.epoch),
      distributor.fundedIn(t.epoch),
    ]);
    throw new CliError(
      `epoch ${t.epoch} is final but not funded yet (the escrow has paid ${formatTokenAmount(funded)} of ${formatTokenAmount(total)} ${s.symbol}): claims open once it is; try again later`,
    );
  }
  if (await distributor.paused()) throw new CliError('claims are paused on the distributor; try again later');
  const claimed = await distributor.claimedAmount(t.index);
  if (claimed >= cumulative) {
    throw new CliError(
      `already claimed: ${formatTokenAmount(claimed)} ${s.symbol} paid to ${address} so far; epoch ${t.epoch} adds nothing new`,
    );
  }
  const token = attachComputeToken(s.info.token!, s.provider);
  const held = await token.balanceOf(distributorAddress);
  if (held < cumulative - claimed) {
    throw new CliError(
      `the distributor holds ${formatTokenAmount(held)} ${s.symbol}, less than the ${formatTokenAmount(cumulative - claimed)} owed to you: ` +
        `epoch ${t.epoch} is not funded yet; try again later`,
    );
  }
  await ensureGas(s);
  const result = await claimRewards({ distributor: distributorAddress, signer: s.wallet, ticket: t });
  const balance = await token.balanceOf(address);
  out.result(
    {
      address,
      epoch: t.epoch,
      paid: result.paid.toString(),
      cumulativeAmount: cumulative.toString(),
      txHash: result.txHash,
      gasUsed: result.gasUsed?.toString() ?? null,
      balance: balance.toString(),
      symbol: s.symbol,
      verified: { root: t.root, fileHash: t.fileHash, leaves: t.leaves },
      fileSource: fileSource ?? (fileText === undefined ? 'coordinator' : 'file'),
      funded: fundedHere.map((f) => ({ epoch: f.epoch, txHashes: f.txHashes, funded: f.funded.toString() })),
    },
    () =>
      [
        ...fundedHere.map(
          (f) =>
            `funded epoch ${f.epoch} from the escrow's committed debits: ${formatTokenAmount(f.funded)} of ${formatTokenAmount(f.total)} ${s.symbol} (${f.txHashes.length} tx)`,
        ),
        `claimed ${formatTokenAmount(result.paid)} ${s.symbol} for ${address} (epoch ${t.epoch}, tx ${result.txHash})`,
        `  earned so far  ${formatTokenAmount(cumulative)} ${s.symbol}`,
        `  checked        epoch ${t.epoch}'s file (${t.leaves} leaves${fileSource === undefined ? '' : `, ${fileSource === 'kept' ? 'a kept file' : `from ${fileSource}`}`}) matches root ${t.root} on chain`,
        `  wallet         ${formatTokenAmount(balance)} ${s.symbol}`,
      ].join('\n'),
  );
}

/**
 * Funds the final epochs up to `t.epoch` that nobody has funded, in order, from the escrow's
 * committed debits (`fundEpochFromEscrow`); each epoch's file is checked against the chain first.
 */
async function fundPendingEpochs(
  s: Session,
  distributor: ReturnType<typeof attachRewardsDistributor>,
  t: ClaimTicket & { root: string; fileHash: string },
  fileOf: (epoch: number) => Promise<string>,
): Promise<FundEpochResult[]> {
  const results: FundEpochResult[] = [];
  await ensureGas(s);
  for (let e = Number(await distributor.fundedEpoch()) + 1; e <= t.epoch; e++) {
    const text = await fileOf(e);
    const [root, fileHash] = await distributor.epochRoot(e);
    const report = auditEpoch(text, root, fileHash, {
      domain: { chainId: s.info.chainId, distributor: s.info.distributor },
      chainFundingRoot: await distributor.fundingRoot(e),
    });
    if (!report.ok || report.file === null || report.epoch !== e) {
      const problems = report.problems.map((p) => `${p.code}: ${p.message}`).slice(0, 3);
      throw new CliError(`cannot fund epoch ${e}: its file does not match the chain: ${problems.join('; ')}`);
    }
    try {
      const result = await fundEpochFromEscrow({
        distributor: s.info.distributor,
        signer: s.wallet,
        file: report.file,
      });
      results.push(result);
      if (!result.fullyFunded) break;
    } catch (err) {
      throw new CliError(`cannot fund epoch ${e} from the escrow: ${(err as Error).message}`);
    }
  }
  return results;
}

/**
 * The wallet's ticket for `epoch`, built from the epoch's file after checking it against the chain:
 * its leaves' arithmetic and receipts, the Merkle root and the file hash (`auditEpoch`).
 */
async function verifiedTicket(
  s: Session,
  distributor: ReturnType<typeof attachRewardsDistributor>,
  epoch: number,
  address: string,
  fileText?: string,
): Promise<ClaimTicket & { root: string; fileHash: string; leaves: number }> {
  const [root, fileHash] = await distributor.epochRoot(epoch);
  if (/^0x0+$/.test(root)) {
    throw new CliError(`epoch ${epoch} is not on chain ${s.info.chainId} (a vetoed root, or another chain)`);
  }
  let file: unknown = fileText;
  if (file === undefined) {
    const fileRes = await getJson<unknown>(s.coordinatorUrl, `/v1/rewards/epochs/${epoch}/file`);
    if (!fileRes.ok) {
      throw new CliError(
        `cannot check epoch ${epoch} before claiming: ${s.coordinatorUrl}/v1/rewards/epochs/${epoch}/file answered ${fileRes.status}: ${fileRes.message}`,
      );
    }
    file = fileRes.body;
  }
  const whose = fileText === undefined ? "the coordinator's file" : 'the file';
  const domain = { chainId: s.info.chainId, distributor: await distributor.getAddress() };
  const report = auditEpoch(file, root, fileHash, { domain });
  if (!report.ok || report.epoch !== epoch) {
    const problems = report.problems.map((p) => `${p.code}: ${p.message}`).slice(0, 5);
    if (report.epoch !== epoch) problems.unshift(`the file is of epoch ${report.epoch ?? '?'}`);
    throw new CliError(
      `refusing to claim: ${whose} of epoch ${epoch} does not match the chain (root ${root}, file hash ${fileHash}): ${problems.join('; ')}`,
    );
  }
  const ticket = new EpochProofs(parseEpochFile(file)).ticket(address);
  if (!ticket) {
    throw new CliError(
      `nothing to claim: epoch ${epoch}'s file, as committed on chain, has no leaf for ${address}`,
    );
  }
  return { ...ticket, root, fileHash, leaves: report.leafCount };
}

/** What `dev-fund` sends by default: gas, and tokens to stake (from the dev faucet, fundFromDevFaucet). */
export const DEV_FUND_ETH = '1';
export const DEV_FUND_TOKENS = '1000';

/**
 * `dev-fund`: on a coordinator's local dev chain only, sends the keystore wallet ETH for gas and tokens
 * from the dev faucet, so `stake` and `claim` can be tried at once. On a real network it refuses and
 * says where gas and tokens come from.
 */
export async function devFundCommand(
  opts: ChainOptions & { eth?: string; tokens?: string },
  out: Output,
): Promise<void> {
  await withSession(opts, async (s) => {
    if (!s.info.dev) {
      throw new CliError(
        `chain ${s.info.chainId} is not a local dev chain: there is no faucet. Buy a little ETH for gas on chain ` +
          `${s.info.chainId} and send it to ${s.wallet.address}; get the stake token (${s.info.token}) from the ` +
          'operator or an exchange (see docs/provider-guide.md)',
      );
    }
    let eth: bigint;
    try {
      eth = parseEther(opts.eth ?? DEV_FUND_ETH);
    } catch {
      throw new CliError(`--eth: "${opts.eth}" is not an ETH amount`);
    }
    const tokens = amountArg(opts.tokens ?? DEV_FUND_TOKENS, '--tokens');
    const txHashes = await fundFromDevFaucet(s.provider, s.info.token!, [
      { to: s.wallet.address, wei: eth, tokens },
    ]);
    const [ethBalance, tokenBalance] = await Promise.all([
      s.provider.getBalance(s.wallet.address),
      attachComputeToken(s.info.token!, s.provider).balanceOf(s.wallet.address),
    ]);
    out.result(
      {
        address: s.wallet.address,
        eth: ethBalance.toString(),
        tokens: tokenBalance.toString(),
        txHashes,
      },
      () =>
        [
          `funded ${s.wallet.address} from the dev faucet (chain ${s.info.chainId})`,
          `  gas     ${formatEther(ethBalance)} ETH`,
          `  tokens  ${formatTokenAmount(tokenBalance)} ${s.symbol}`,
          `next: gpumesh-agent stake 100`,
        ].join('\n'),
    );
  });
}
