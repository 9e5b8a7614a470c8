// Helpers for settlement tests: a real anvil with the contracts deployed, and coordinators that
// settle on it against a database the test owns (so a coordinator can be restarted on it).
export { query } from '../helpers/poll.js';
import { JsonRpcProvider, NonceManager, Wallet } from 'ethers';
import {
  ANVIL_DEV_KEYS,
  ONE_TOKEN,
  attachComputeToken,
  attachJobEscrow,
  deployAll,
  signSpendingCap,
  spendingCapDomain,
  type DeployedAddresses,
} from '@gpumesh/rewards';
import { startAnvil, type AnvilInstance } from '@gpumesh/devchain';
import { api, startCoordinatorOn, type TestCoordinator } from '../helpers/coordinator.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { pollUntil, query } from '../helpers/poll.js';

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
    maxEpochSeconds: 3600,
    fundingMarginSeconds: 60,
    unlockDelaySeconds: 3600 + challengeWindowSeconds + 60,
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
    // The escrowed platform account (anvil account 7) pays canaries and receives the fees.
    PLATFORM_ACCOUNT_ADDRESS: chain.anvil.accounts[7].address,
    DISPATCH_BACKOFF_MS: '50',
    OFFER_ACCEPT_TIMEOUT_MS: '3000',
    ...extra,
  };
}

/**
 * Wallet `index` approves and deposits `amount` into the escrow, as a developer would (coordinators
 * settling on a chain credit accounts from escrow deposits only), having first raised its spending
 * cap on chain by as much (the watcher records it before the deposit). Resolves once both are mined.
 */
export async function depositIntoEscrow(
  chain: TestChain,
  addresses: DeployedAddresses,
  index: number,
  amount: bigint,
): Promise<void> {
  const wallet = chain.wallets[index];
  await raiseSpendingCapOnChain(chain, addresses, index, amount);
  await (await attachComputeToken(addresses.token, wallet).approve(addresses.escrow, amount)).wait();
  await (await attachJobEscrow(addresses.escrow, wallet).deposit(amount)).wait();
}

/** Wallet `index` raises its spending cap on chain by `by` (setSpendingCap); returns the new cap. */
export async function raiseSpendingCapOnChain(
  chain: TestChain,
  addresses: DeployedAddresses,
  index: number,
  by: bigint,
): Promise<bigint> {
  const escrow = attachJobEscrow(addresses.escrow, chain.wallets[index]);
  const cap = (await escrow.spendingCapOf(chain.anvil.accounts[index].address)) + by;
  await (await escrow.setSpendingCap(cap)).wait();
  return cap;
}

/** Wallet `index`'s EIP-712 signature of the spending cap `cap` for the escrow (to PUT or submit). */
export async function signSpendingCapOf(
  chain: TestChain,
  addresses: DeployedAddresses,
  index: number,
  cap: bigint,
): Promise<string> {
  const domain = spendingCapDomain(chain.anvil.chainId, addresses.escrow);
  return (await signSpendingCap(chain.wallets[index], domain, cap)).signature;
}

/** A coordinator whose close() stops it and leaves the database to the test. */
export type OwnedCoordinator = TestCoordinator;

/** A coordinator on `databaseUrl` (already migrated) with the dev accounts bootstrapped. */
export function startOwnedCoordinator(
  databaseUrl: string,
  env: Record<string, string>,
): Promise<OwnedCoordinator> {
  return startCoordinatorOn(databaseUrl, env);
}

export function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  return pollUntil(what, probe, timeoutMs);
}

export async function balanceOf(databaseUrl: string, account: string): Promise<bigint> {
  const rows = await query<{ balance: string }>(
    databaseUrl,
    'SELECT balance::text FROM "LedgerBalance" WHERE account = $1',
    [account],
  );
  return BigInt(rows[0]?.balance ?? '0');
}

/** An epoch row as settlement tests read it. */
export interface EpochRow {
  id: number;
  state: string;
  total: string | null;
  funded: string | null;
  root: string | null;
  blockedReason: string | null;
}

/** Every epoch, oldest first. */
export async function epochs(url: string): Promise<EpochRow[]> {
  return query<EpochRow>(
    url,
    `SELECT id, state::text AS state, total::text AS total, funded::text AS funded, root, "blockedReason"
       FROM "Epoch" ORDER BY id`,
  );
}

/** Moves the chain's clock `seconds` on and mines a block at the new time. */
export async function increaseTime(chain: TestChain, seconds: number): Promise<void> {
  await chain.provider.send('evm_increaseTime', [seconds]);
  await chain.provider.send('evm_mine', []);
}

/** A fake provider at `pricePerUnit` (and `options`), once the coordinator lists it. */
export async function startListedAgent(
  c: TestCoordinator,
  pricePerUnit: string,
  options: Omit<Parameters<typeof startFakeAgent>[1], 'pricePerUnit'> = {},
): Promise<FakeAgent> {
  const agent = await startFakeAgent(c.url, { ...options, pricePerUnit });
  await waitFor('the provider', async () => {
    const res = await api<{ peerId: string }[]>(c.url, 'GET', '/v1/providers');
    return res.body.some((p) => p.peerId === agent.peerId) ? true : undefined;
  });
  return agent;
}
