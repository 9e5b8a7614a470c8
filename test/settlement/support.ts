// Helpers for settlement tests: a real anvil with the contracts deployed, and coordinators that
// settle on it against a database the test owns (so a coordinator can be restarted on it).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { JsonRpcProvider, NonceManager, Wallet } from 'ethers';
import {
  ANVIL_DEV_KEYS,
  ONE_TOKEN,
  deployAll,
  startAnvil,
  type AnvilInstance,
  type DeployedAddresses,
} from '#rewards';
import { loadConfig, type AppConfig } from '../../apps/coordinator/src/config/config.js';
import { createLogger } from '../../apps/coordinator/src/logging/logger.js';
import { startCoordinator, type RunningCoordinator } from '../../apps/coordinator/src/bootstrap.js';
import { TEST_REDIS_URL } from '../helpers/coordinator.js';

export interface TestChain {
  anvil: AnvilInstance;
  provider: JsonRpcProvider;
  /** NonceManager wallets of anvil's dev accounts. */
  wallets: NonceManager[];
  stop(): Promise<void>;
}

export async function startTestChain(blockTime?: number): Promise<TestChain> {
  const anvil = await startAnvil(blockTime === undefined ? {} : { blockTime });
  const provider = new JsonRpcProvider(anvil.rpcUrl, undefined, {
    staticNetwork: true,
    cacheTimeout: -1,
    pollingInterval: 100,
  });
  const wallets = ANVIL_DEV_KEYS.map((k) => new NonceManager(new Wallet(k, provider)));
  return {
    anvil,
    provider,
    wallets,
    async stop() {
      provider.destroy();
      await anvil.stop();
    },
  };
}

/** Deploys from account 0 (admin, minter; funded) with `settlerIndex` as the settler. */
export async function deployForSettlement(
  chain: TestChain,
  settlerIndex: number,
  challengeWindowSeconds: number,
): Promise<DeployedAddresses> {
  return deployAll(chain.wallets[0], {
    challengeWindowSeconds,
    unlockDelaySeconds: 60,
    unbondingDelaySeconds: 60,
    settler: chain.anvil.accounts[settlerIndex].address,
    mint: [{ to: chain.anvil.accounts[0].address, amount: 1_000n * ONE_TOKEN }],
  });
}

export function settlementEnv(
  chain: TestChain,
  addresses: DeployedAddresses,
  settlerIndex: number,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    SETTLEMENT_ENABLED: 'true',
    CHAIN_RPC_URL: chain.anvil.rpcUrl,
    CHAIN_ID: String(chain.anvil.chainId),
    DISTRIBUTOR_ADDRESS: addresses.distributor,
    ESCROW_ADDRESS: addresses.escrow,
    ESCROW_DEPLOY_BLOCK: String(addresses.deployBlock),
    SETTLER_KEY: ANVIL_DEV_KEYS[settlerIndex],
    DISPATCH_BACKOFF_MS: '50',
    OFFER_ACCEPT_TIMEOUT_MS: '3000',
    ...extra,
  };
}

export interface OwnedCoordinator {
  url: string;
  devKey: string;
  config: AppConfig;
  running: RunningCoordinator;
  /** Stops the coordinator; the database stays. */
  close(): Promise<void>;
}

/** A coordinator on `databaseUrl` (already migrated) with the dev accounts bootstrapped. */
export async function startOwnedCoordinator(
  databaseUrl: string,
  env: Record<string, string>,
): Promise<OwnedCoordinator> {
  const dataDir = await mkdtemp(join(tmpdir(), 'gpumesh-settle-'));
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    REDIS_URL: TEST_REDIS_URL,
    PORT: '0',
    QUEUE_PREFIX: `t${randomBytes(6).toString('hex')}`,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATA_DIR: dataDir,
    DEV_BOOTSTRAP: 'true',
    API_KEY_CACHE_TTL_MS: '0',
    ...env,
  });
  const running = await startCoordinator(config, createLogger(config.LOG_LEVEL));
  if (!running.dev) throw new Error('dev bootstrap did not run');
  return {
    url: running.url,
    devKey: running.dev.developerKey,
    config,
    running,
    close: async () => {
      await running.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export async function query<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function balanceOf(databaseUrl: string, account: string): Promise<bigint> {
  const rows = await query<{ balance: string }>(
    databaseUrl,
    'SELECT balance::text FROM "LedgerBalance" WHERE account = $1',
    [account],
  );
  return BigInt(rows[0]?.balance ?? '0');
}
