import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { JsonRpcProvider, NonceManager, Wallet, getAddress } from 'ethers';
import type { Logger } from 'pino';
import { ANVIL_DEV_KEYS, ONE_TOKEN, attachProviderStaking, deployAll, startAnvil } from '#rewards';
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
  /** Holds SETTLER_ROLE on the distributor and the escrow. */
  settlerKey: string;
  /** Holds SLASHER_ROLE on ProviderStaking (SLASHER_KEY, else the settler key). */
  slasherKey: string;
  /** The RPC URL agents are told to use (PUBLIC_CHAIN_RPC_URL; the local dev chain's own URL). */
  publicRpcUrl: string | null;
  /** True for the local anvil started by this process: its state dies with it. */
  ephemeral: boolean;
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

/** The dev developer account (anvil account 0), funded with tokens on the local chain. */
const DEV_FUNDING = 1_000_000n * ONE_TOKEN;
/**
 * Anvil account 8: the dev chain's faucet. It gets tokens at deploy and funds the local agents' wallets
 * (gas and stake), so it never competes for nonces with the settler/slasher key (account 0).
 */
export const DEV_FAUCET_INDEX = 8;
const DEV_FAUCET_FUNDING = 1_000_000n * ONE_TOKEN;
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
 * a local anvil with the contracts deployed from anvil's dev key and the dev developer funded.
 * The local chain is ephemeral: its addresses are written to DATA_DIR/chain/contracts.json.
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
      ephemeral: false,
    };
    await validateChain(chain);
    return { chain, stop: none.stop };
  }
  if (config.ROLE !== 'all') {
    throw new ConfigError(
      'SETTLEMENT_ENABLED on a worker-only process needs CHAIN_RPC_URL (one shared chain)',
    );
  }
  const started = performance.now();
  const anvil = await startAnvil({ blockTime: 1, chainId: config.CHAIN_ID });
  try {
    const provider = new JsonRpcProvider(anvil.rpcUrl, undefined, {
      staticNetwork: true,
      pollingInterval: 200,
    });
    const deployer = new NonceManager(new Wallet(ANVIL_DEV_KEYS[0], provider));
    const developer = anvil.accounts[0].address;
    const deployed = await deployAll(deployer, {
      challengeWindowSeconds: config.DEV_CHALLENGE_WINDOW_SECONDS,
      unlockDelaySeconds: 60,
      unbondingDelaySeconds: 60,
      // The chain's review delay never exceeds the coordinator's (the executor waits for both).
      slashReviewDelaySeconds: Math.min(config.SLASH_REVIEW_SECONDS, MAX_SLASH_REVIEW_DELAY_SECONDS),
      mint: [
        { to: developer, amount: DEV_FUNDING },
        { to: anvil.accounts[DEV_FAUCET_INDEX].address, amount: DEV_FAUCET_FUNDING },
      ],
    });
    provider.destroy();
    const contracts: SettlementContracts = { ...deployed };
    const dir = join(config.DATA_DIR, 'chain');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'contracts.json'),
      `${JSON.stringify({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId, ephemeral: true, ...contracts }, null, 2)}\n`,
    );
    logger.info(
      { rpcUrl: anvil.rpcUrl, ms: Math.round(performance.now() - started), ...contracts },
      'local anvil started and contracts deployed (dev chain: its state is lost on exit)',
    );
    return {
      chain: {
        rpcUrl: anvil.rpcUrl,
        chainId: anvil.chainId,
        contracts,
        settlerKey: ANVIL_DEV_KEYS[0],
        slasherKey: config.SLASHER_KEY ?? ANVIL_DEV_KEYS[0],
        publicRpcUrl: config.PUBLIC_CHAIN_RPC_URL ?? anvil.rpcUrl,
        ephemeral: true,
      },
      stop: () => anvil.stop(),
    };
  } catch (err) {
    await anvil.stop();
    throw err;
  }
}
