import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { JsonRpcProvider, NonceManager, Wallet, getAddress } from 'ethers';
import type { Logger } from 'pino';
import {
  ANVIL_DEV_KEYS,
  DEV_FAUCET_ANVIL_INDEX,
  ONE_TOKEN,
  attachProviderStaking,
  depositIntoEscrow,
  contractsFingerprint,
  deployAll,
} from '@gpumesh/rewards';
import { startAnvil } from '@gpumesh/devchain';
import { ConfigError, type AppConfig } from '../config/config.js';

/** The contracts settlement talks to. */
export interface SettlementContracts {
  /** Read from the distributor when absent. */
  token?: string;
  distributor: string;
  escrow: string;
  staking?: string;
  /** Where the deposit watcher starts. */
  deployBlock: number;
}

/** The chain a worker settles on, resolved before Nest boots. */
export interface SettlementChain {
  rpcUrl: string;
  chainId: number;
  contracts: SettlementContracts;
  /** Holds SETTLER_ROLE on the distributor (posts roots); sends the escrow debits, open to anyone. */
  settlerKey: string;
  /** Holds SLASHER_ROLE on ProviderStaking (SLASHER_KEY, else the settler key). */
  slasherKey: string;
  /** The RPC URL agents are told to use (PUBLIC_CHAIN_RPC_URL; the local dev chain's own URL). */
  publicRpcUrl: string | null;
  /**
   * True for the local dev chain this process runs (anvil, its state kept under DATA_DIR/chain so a
   * restart finds its deposits, roots and claims again).
   */
  dev: boolean;
}

export const SETTLEMENT_CHAIN = Symbol('SETTLEMENT_CHAIN');

/** Settlement settings derived from the configuration. */
export interface SettlementSettings {
  enabled: boolean;
  /** The configured default; the run-time value is SettingsService's `epochSeconds`. */
  epochSeconds: number;
  tickMs: number;
  depositConfirmations: number;
  confirmations: number;
}

export function settlementSettings(config: AppConfig): SettlementSettings {
  return {
    enabled: config.SETTLEMENT_ENABLED,
    epochSeconds: config.EPOCH_SECONDS ?? (config.DEV_BOOTSTRAP ? 20 : 3600),
    tickMs: config.SETTLEMENT_TICK_MS,
    depositConfirmations: config.DEPOSIT_CONFIRMATIONS,
    confirmations: config.SETTLEMENT_CONFIRMATIONS,
  };
}

/** Tokens the dev developer (anvil account 0) keeps in its wallet beside its escrow deposit. */
const DEV_WALLET_TOKENS = 1_000_000n * ONE_TOKEN;
/** Anvil account 7: the dev chain's platform account (canaries are paid from its escrow deposit). */
export const DEV_PLATFORM_INDEX = 7;
/** What the dev platform account deposits into the escrow to pay canary jobs. */
const DEV_PLATFORM_DEPOSIT = 100_000n * ONE_TOKEN;
/** What the dev chain's faucet (DEV_FAUCET_ANVIL_INDEX) gets at deploy, to fund wallets with. */
const DEV_FAUCET_FUNDING = 1_000_000n * ONE_TOKEN;
/** The dev chain's role keys (anvil accounts): one key per role, as in production. */
const DEV_DEPLOYER_INDEX = 2;
const DEV_SETTLER_INDEX = 3;
/** The dev chain's guardian: `npm start`'s own `gpumesh watch` vetoes with it (dev-watcher.ts). */
export const DEV_GUARDIAN_INDEX = 4;
const DEV_SLASHER_INDEX = 5;
/** The dev chain's longest epoch (the dev default is 20 s; EPOCH_SECONDS above 60 s breaks the unlock bound's promise) and funding margin. */
const DEV_MAX_EPOCH_SECONDS = 60;
const DEV_FUNDING_MARGIN_SECONDS = 30;
/** ProviderStaking's bound on its delays (365 days). */
const MAX_SLASH_REVIEW_DELAY_SECONDS = 365 * 86_400;

function checksum(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new ConfigError(`${what}: expected an address`);
  try {
    return getAddress(value);
  } catch {
    throw new ConfigError(`${what}: invalid address ${value}`);
  }
}

async function readContractsFile(file: string): Promise<SettlementContracts> {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`CONTRACTS_FILE ${file}: ${(err as Error).message}`);
  }
  const deployBlock = Number(parsed.deployBlock ?? 0);
  if (!Number.isSafeInteger(deployBlock) || deployBlock < 0) {
    throw new ConfigError(`CONTRACTS_FILE ${file}: deployBlock must be a non-negative integer`);
  }
  return {
    token: checksum(parsed.token, `CONTRACTS_FILE ${file}: token`),
    distributor: checksum(parsed.distributor, `CONTRACTS_FILE ${file}: distributor`),
    escrow: checksum(parsed.escrow, `CONTRACTS_FILE ${file}: escrow`),
    staking:
      parsed.staking === undefined ? undefined : checksum(parsed.staking, `CONTRACTS_FILE ${file}: staking`),
    deployBlock,
  };
}

/** Checks that the RPC answers with the configured chain id and that the contracts have code. */
async function validateChain(chain: SettlementChain): Promise<void> {
  const provider = new JsonRpcProvider(chain.rpcUrl, undefined, { staticNetwork: true });
  try {
    const network = await provider.getNetwork().catch((err: unknown) => {
      throw new ConfigError(`CHAIN_RPC_URL ${chain.rpcUrl} does not answer: ${(err as Error).message}`);
    });
    if (Number(network.chainId) !== chain.chainId) {
      throw new ConfigError(`CHAIN_RPC_URL is chain ${network.chainId}, CHAIN_ID says ${chain.chainId}`);
    }
    for (const [name, address] of [
      ['distributor', chain.contracts.distributor],
      ['escrow', chain.contracts.escrow],
      ['staking', chain.contracts.staking],
    ] as const) {
      if (address && (await provider.getCode(address)) === '0x') {
        throw new ConfigError(`no contract at the ${name} address ${address} on ${chain.rpcUrl}`);
      }
    }
    if (chain.contracts.staking) {
      // Slash compensation is paid into ProviderStaking's escrow: it must be the one whose deposits
      // this coordinator credits.
      const escrow = await attachProviderStaking(chain.contracts.staking, provider)
        .escrow()
        .catch((err: unknown) => {
          throw new ConfigError(
            `STAKING_ADDRESS ${chain.contracts.staking} is not a ProviderStaking with an escrow: ${(err as Error).message}`,
          );
        });
      if (getAddress(escrow) !== getAddress(chain.contracts.escrow)) {
        throw new ConfigError(
          `ProviderStaking ${chain.contracts.staking} pays slash compensation into escrow ${escrow}, not the configured escrow ${chain.contracts.escrow}`,
        );
      }
    }
  } finally {
    provider.destroy();
  }
}

/**
 * Resolves the settlement chain of a worker: nothing when settlement is off or the process serves
 * the API only; the configured chain (validated) when CHAIN_RPC_URL is set; otherwise (role `all`)
 * the local dev chain (see startDevChain).
 */
export async function resolveSettlementChain(
  config: AppConfig,
  logger: Logger,
): Promise<{ chain: SettlementChain | null; stop: () => Promise<void> }> {
  const none = { chain: null, stop: async () => undefined };
  if (!config.SETTLEMENT_ENABLED || config.ROLE === 'api') return none;
  if (config.CHAIN_RPC_URL) {
    if (!config.SETTLER_KEY) throw new ConfigError('SETTLEMENT_ENABLED with CHAIN_RPC_URL needs SETTLER_KEY');
    let contracts: SettlementContracts;
    if (config.CONTRACTS_FILE) {
      contracts = await readContractsFile(config.CONTRACTS_FILE);
    } else {
      if (!config.DISTRIBUTOR_ADDRESS || !config.ESCROW_ADDRESS) {
        throw new ConfigError(
          'SETTLEMENT_ENABLED with CHAIN_RPC_URL needs CONTRACTS_FILE or DISTRIBUTOR_ADDRESS and ESCROW_ADDRESS',
        );
      }
      contracts = {
        distributor: getAddress(config.DISTRIBUTOR_ADDRESS),
        escrow: getAddress(config.ESCROW_ADDRESS),
        deployBlock: config.ESCROW_DEPLOY_BLOCK,
      };
    }
    if (config.STAKING_ADDRESS) contracts.staking = getAddress(config.STAKING_ADDRESS);
    const chain: SettlementChain = {
      rpcUrl: config.CHAIN_RPC_URL,
      chainId: config.CHAIN_ID,
      contracts,
      settlerKey: config.SETTLER_KEY,
      slasherKey: config.SLASHER_KEY ?? config.SETTLER_KEY,
      publicRpcUrl: config.PUBLIC_CHAIN_RPC_URL ?? null,
      dev: false,
    };
    await validateChain(chain);
    return { chain, stop: none.stop };
  }
  if (config.ROLE !== 'all') {
    throw new ConfigError(
      'SETTLEMENT_ENABLED on a worker-only process needs CHAIN_RPC_URL (one shared chain)',
    );
  }
  return startDevChain(config, logger);
}

/** Where the local dev chain keeps its state and its contract addresses. */
function devChainFiles(config: AppConfig): { dir: string; state: string; contracts: string } {
  const dir = join(config.DATA_DIR, 'chain');
  return { dir, state: join(dir, 'anvil-state.json'), contracts: join(dir, 'contracts.json') };
}

/**
 * The local dev chain of `npm start`: anvil with its state in DATA_DIR/chain (saved every few
 * seconds and on exit), so a restart continues the same chain. The first start deploys the
 * contracts (dev keys), funds the dev developer and the platform account and deposits for both into
 * the escrow, as a real chain's users would: every credit the coordinator gives comes from an escrow
 * deposit, nothing is minted later.
 */
async function startDevChain(
  config: AppConfig,
  logger: Logger,
): Promise<{ chain: SettlementChain; stop: () => Promise<void> }> {
  const started = performance.now();
  const files = devChainFiles(config);
  await mkdir(files.dir, { recursive: true });
  const anvil = await startAnvil({
    blockTime: 1,
    chainId: config.CHAIN_ID,
    extraArgs: ['--state', files.state, '--state-interval', String(DEV_STATE_INTERVAL_SECONDS)],
  });
  try {
    const provider = new JsonRpcProvider(anvil.rpcUrl, undefined, {
      staticNetwork: true,
      pollingInterval: 200,
    });
    let contracts: SettlementContracts;
    let deployed = false;
    try {
      const saved = await readSavedDevContracts(files.contracts, anvil.chainId);
      if (saved && saved.fingerprint !== contractsFingerprint()) {
        // Its epochs, deposits and caps live in the old contracts (and the embedded database beside
        // them): nothing of it carries over to a fresh deployment, so ask rather than half-work.
        throw new ConfigError(
          `the dev chain saved in ${files.dir} runs contracts built from other sources than this build (an upgrade changed them: leaf encoding, spending caps): delete the data directory ${config.DATA_DIR} (dev data only: chain, embedded database, keys) to deploy this build's contracts`,
        );
      }
      if (saved && (await provider.getCode(saved.contracts.distributor)) !== '0x') {
        contracts = saved.contracts;
      } else {
        if (saved) {
          logger.warn(
            { state: files.state },
            'the dev chain state was lost (its contracts are gone): deploying afresh; earlier epochs and deposits in this data dir belong to the old chain, so settlement stops until you delete the data dir',
          );
        }
        contracts = await deployDevContracts(provider, anvil.accounts, config);
        deployed = true;
      }
    } finally {
      provider.destroy();
    }
    await writeFile(
      files.contracts,
      `${JSON.stringify({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId, dev: true, fingerprint: contractsFingerprint(), ...contracts }, null, 2)}\n`,
    );
    logger.info(
      { rpcUrl: anvil.rpcUrl, ms: Math.round(performance.now() - started), deployed, ...contracts },
      deployed
        ? 'local dev chain started and contracts deployed'
        : 'local dev chain resumed from its saved state',
    );
    return {
      chain: {
        rpcUrl: anvil.rpcUrl,
        chainId: anvil.chainId,
        contracts,
        settlerKey: ANVIL_DEV_KEYS[DEV_SETTLER_INDEX],
        slasherKey: config.SLASHER_KEY ?? ANVIL_DEV_KEYS[DEV_SLASHER_INDEX],
        publicRpcUrl: config.PUBLIC_CHAIN_RPC_URL ?? anvil.rpcUrl,
        dev: true,
      },
      stop: () => anvil.stop(),
    };
  } catch (err) {
    await anvil.stop();
    throw err;
  }
}

/** Seconds between saves of the dev chain's state (it is also saved when it stops). */
const DEV_STATE_INTERVAL_SECONDS = 5;

async function readSavedDevContracts(
  file: string,
  chainId: number,
): Promise<{ contracts: SettlementContracts; fingerprint: unknown } | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  const saved = JSON.parse(text) as { chainId?: unknown; dev?: unknown; fingerprint?: unknown };
  if (saved.chainId !== chainId || saved.dev !== true) return null;
  return { contracts: await readContractsFile(file), fingerprint: saved.fingerprint };
}

/** Deploys the contracts on a fresh dev chain and makes the dev accounts' escrow deposits. */
async function deployDevContracts(
  provider: JsonRpcProvider,
  accounts: readonly { address: string; privateKey: string }[],
  config: AppConfig,
): Promise<SettlementContracts> {
  // Distinct keys per role, as in production: deployer/admin/minter account 2, settler 3,
  // guardian 4, slasher 5 (or SLASHER_KEY).
  const deployer = new NonceManager(new Wallet(ANVIL_DEV_KEYS[DEV_DEPLOYER_INDEX], provider));
  const developer = accounts[0];
  const platform = accounts[DEV_PLATFORM_INDEX];
  const challengeWindowSeconds = config.DEV_CHALLENGE_WINDOW_SECONDS;
  // The escrow's unlock bound must cover the longest epoch this chain will see.
  const maxEpochSeconds = Math.max(DEV_MAX_EPOCH_SECONDS, settlementSettings(config).epochSeconds);
  const deployed = await deployAll(deployer, {
    settler: accounts[DEV_SETTLER_INDEX].address,
    guardian: accounts[DEV_GUARDIAN_INDEX].address,
    slasher: new Wallet(config.SLASHER_KEY ?? ANVIL_DEV_KEYS[DEV_SLASHER_INDEX]).address,
    challengeWindowSeconds,
    maxEpochSeconds,
    fundingMarginSeconds: DEV_FUNDING_MARGIN_SECONDS,
    unlockDelaySeconds: maxEpochSeconds + challengeWindowSeconds + DEV_FUNDING_MARGIN_SECONDS,
    unbondingDelaySeconds: 60,
    // The chain's review delay never exceeds the coordinator's (the executor waits for both).
    slashReviewDelaySeconds: Math.min(config.SLASH_REVIEW_SECONDS, MAX_SLASH_REVIEW_DELAY_SECONDS),
    mint: [
      { to: developer.address, amount: DEV_WALLET_TOKENS + config.DEV_CREDITS },
      { to: platform.address, amount: DEV_PLATFORM_DEPOSIT },
      { to: accounts[DEV_FAUCET_ANVIL_INDEX].address, amount: DEV_FAUCET_FUNDING },
    ],
  });
  await Promise.all([
    depositIntoEscrow(
      new NonceManager(new Wallet(developer.privateKey, provider)),
      deployed,
      config.DEV_CREDITS,
    ),
    depositIntoEscrow(
      new NonceManager(new Wallet(platform.privateKey, provider)),
      deployed,
      DEV_PLATFORM_DEPOSIT,
    ),
  ]);
  return { ...deployed };
}
