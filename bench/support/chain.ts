// The chaos bench's money on a real chain: anvil with the contracts deployed, the developer and the
// platform account funded through escrow deposits (as real users would), the settlement environment
// of the coordinator processes, and, at the end, settlement driven to quiescence and the off-chain
// ledger compared with the escrow on chain, account by account.
import pg from 'pg';
import { JsonRpcProvider, NonceManager, Wallet } from 'ethers';
import {
  ANVIL_DEV_KEYS,
  ONE_TOKEN,
  attachComputeToken,
  attachJobEscrow,
  attachRewardsDistributor,
  deployAll,
  type DeployedAddresses,
} from '@gpumesh/rewards';
import { startAnvil, type AnvilInstance } from '@gpumesh/devchain';

/** Anvil accounts by role: deployer (admin, minter), settler, developer (the dev developer), platform. */
const DEVELOPER_INDEX = 0;
const DEPLOYER_INDEX = 2;
const SETTLER_INDEX = 3;
const PLATFORM_INDEX = 7;

/** Short enough that the end of a run settles in seconds; anvil (chain 31337) allows it. */
const CHALLENGE_WINDOW_SECONDS = 5;
const MAX_EPOCH_SECONDS = 3_600;
const FUNDING_MARGIN_SECONDS = 60;
/** What the developer and the platform account deposit into the escrow before the load. */
const DEVELOPER_DEPOSIT = 100_000n * ONE_TOKEN;
const PLATFORM_DEPOSIT = 1_000n * ONE_TOKEN;

export interface BenchChain {
  readonly anvil: AnvilInstance;
  readonly provider: JsonRpcProvider;
  readonly addresses: DeployedAddresses;
  /** The addresses (lower-case) that deposit: the dev developer and the platform account. */
  readonly depositors: readonly string[];
  stop(): Promise<void>;
}

/** Anvil (1 s blocks), the contracts, and escrow deposits for the dev developer and the platform. */
export async function startBenchChain(): Promise<BenchChain> {
  const anvil = await startAnvil({ blockTime: 1 });
  const provider = new JsonRpcProvider(anvil.rpcUrl, undefined, {
    staticNetwork: true,
    cacheTimeout: -1,
    pollingInterval: 200,
  });
  try {
    const wallet = (i: number): NonceManager => new NonceManager(new Wallet(ANVIL_DEV_KEYS[i], provider));
    const developer = anvil.accounts[DEVELOPER_INDEX].address;
    const platform = anvil.accounts[PLATFORM_INDEX].address;
    const addresses = await deployAll(wallet(DEPLOYER_INDEX), {
      settler: anvil.accounts[SETTLER_INDEX].address,
      challengeWindowSeconds: CHALLENGE_WINDOW_SECONDS,
      maxEpochSeconds: MAX_EPOCH_SECONDS,
      fundingMarginSeconds: FUNDING_MARGIN_SECONDS,
      unlockDelaySeconds: MAX_EPOCH_SECONDS + CHALLENGE_WINDOW_SECONDS + FUNDING_MARGIN_SECONDS,
      unbondingDelaySeconds: 60,
      mint: [
        { to: developer, amount: DEVELOPER_DEPOSIT },
        { to: platform, amount: PLATFORM_DEPOSIT },
      ],
    });
    const deposit = async (i: number, amount: bigint): Promise<void> => {
      const w = wallet(i);
      await (await attachComputeToken(addresses.token, w).approve(addresses.escrow, amount)).wait();
      // The spending cap first: the watcher records it before it credits the deposit.
      await (await attachJobEscrow(addresses.escrow, w).setSpendingCap(amount)).wait();
      await (await attachJobEscrow(addresses.escrow, w).deposit(amount)).wait();
    };
    await Promise.all([
      deposit(DEVELOPER_INDEX, DEVELOPER_DEPOSIT),
      deposit(PLATFORM_INDEX, PLATFORM_DEPOSIT),
    ]);
    return {
      anvil,
      provider,
      addresses,
      depositors: [developer.toLowerCase(), platform.toLowerCase()],
      async stop() {
        provider.destroy();
        await anvil.stop();
      },
    };
  } catch (err) {
    provider.destroy();
    await anvil.stop();
    throw err;
  }
}

/** The settlement environment of the coordinator processes (only the worker settles). */
export function benchSettlementEnv(chain: BenchChain, epochSeconds: number): Record<string, string> {
  return {
    SETTLEMENT_ENABLED: 'true',
    CHAIN_RPC_URL: chain.anvil.rpcUrl,
    CHAIN_ID: String(chain.anvil.chainId),
    DISTRIBUTOR_ADDRESS: chain.addresses.distributor,
    ESCROW_ADDRESS: chain.addresses.escrow,
    ESCROW_DEPLOY_BLOCK: String(chain.addresses.deployBlock),
    SETTLER_KEY: ANVIL_DEV_KEYS[SETTLER_INDEX],
    PLATFORM_ACCOUNT_ADDRESS: chain.anvil.accounts[PLATFORM_INDEX].address,
    DEPOSIT_CONFIRMATIONS: '1',
    EPOCH_SECONDS: String(epochSeconds),
    // Credit providers at once (a worker without --dev would hold them an hour): the run ends settled.
    VERIFICATION_HOLD_SECONDS: '0',
    // The agents stake nothing (and no staking address is given, so gating is off anyway).
    MIN_PROVIDER_STAKE: '0',
  };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function depositorBalances(
  client: pg.Client,
  addresses: readonly string[],
): Promise<Map<string, bigint>> {
  const rows = await client.query<{ address: string; balance: string }>(
    `SELECT a.address, COALESCE(SUM(b.balance), 0)::text AS balance FROM "Account" a
       LEFT JOIN "LedgerBalance" b ON b.account IN ('acct:' || a.id || ':available', 'acct:' || a.id || ':reserved')
      WHERE a.address = ANY($1::text[]) GROUP BY a.address`,
    [addresses],
  );
  return new Map(rows.rows.map((r) => [r.address, BigInt(r.balance)]));
}

/** Waits until the worker's deposit watcher has credited every depositor (before the load starts). */
export async function waitDepositsCredited(
  chain: BenchChain,
  databaseUrl: string,
  timeoutMs = 90_000,
): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const balances = await depositorBalances(client, chain.depositors);
      if (chain.depositors.every((a) => (balances.get(a) ?? 0n) > 0n)) return;
      if (Date.now() > until) throw new Error(`escrow deposits not credited after ${timeoutMs} ms`);
      await pause(500);
    }
  } finally {
    await client.end();
  }
}

interface SettlementState {
  openJobs: number;
  fees: bigint;
  providerEarned: bigint;
  /** Closed epochs not yet FINALIZED. */
  unfinalized: number;
  /** Of those, how many wait for their challenge window (POSTED). */
  posted: number;
}

async function settlementState(client: pg.Client): Promise<SettlementState> {
  const [row] = (
    await client.query<{
      open_jobs: number;
      fees: string;
      earned: string;
      unfinalized: number;
      posted: number;
    }>(`SELECT
      (SELECT count(*)::int FROM "Job" WHERE state IN ('QUEUED', 'DISPATCHED', 'RUNNING', 'VERIFYING')) AS open_jobs,
      (SELECT COALESCE(SUM(balance), 0)::text FROM "LedgerBalance" WHERE account = 'system:fees') AS fees,
      (SELECT COALESCE(SUM(abs(balance)), 0)::text FROM "LedgerBalance" WHERE account LIKE 'provider:%:earned') AS earned,
      (SELECT count(*)::int FROM "Epoch" WHERE state NOT IN ('OPEN', 'FINALIZED')) AS unfinalized,
      (SELECT count(*)::int FROM "Epoch" WHERE state = 'POSTED') AS posted`)
  ).rows;
  return {
    openJobs: row.open_jobs,
    fees: BigInt(row.fees),
    providerEarned: BigInt(row.earned),
    unfinalized: row.unfinalized,
    posted: row.posted,
  };
}

export interface ChainComparison {
  /** Whether settlement reached quiescence before the timeout (else the comparison is mid-flight). */
  settled: boolean;
  settleSeconds: number;
  offChainEqualsOnChain: boolean;
  /** max over accounts of |off-chain available + reserved − JobEscrow.balanceOf|. */
  largestDifferenceBaseUnits: string;
  /** Σ closed epochs' totals − Σ RewardsDistributor.fundedIn. */
  unfundedBaseUnits: string;
  /** Σ RewardsDistributor.fundedIn: what the escrow paid out on chain for the closed epochs. */
  fundedBaseUnits: string;
  epochsFinalized: number;
  accountsCompared: number;
}

/**
 * Drives settlement to quiescence (no job open, `system:fees` and every `provider:%:earned` at 0,
 * every closed epoch FINALIZED; the worker's tick does the work, this only moves chain time past the
 * challenge window of posted roots), then compares every account's off-chain balance with its
 * escrow balance on chain.
 */
export async function settleAndCompare(
  chain: BenchChain,
  databaseUrl: string,
  timeoutMs: number,
  log: (line: string) => void,
): Promise<ChainComparison> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const started = Date.now();
  try {
    let settled = false;
    for (let round = 0; Date.now() - started < timeoutMs; round++) {
      const s = await settlementState(client);
      if (s.openJobs === 0 && s.fees === 0n && s.providerEarned === 0n && s.unfinalized === 0) {
        settled = true;
        break;
      }
      if (round % 10 === 0) {
        log(
          `settling: open jobs ${s.openJobs}, fees ${s.fees}, provider earned ${s.providerEarned}, epochs not final ${s.unfinalized} (posted ${s.posted})`,
        );
      }
      if (s.posted > 0) {
        await chain.provider.send('evm_increaseTime', [CHALLENGE_WINDOW_SECONDS + 1]);
        await chain.provider.send('evm_mine', []);
      }
      await pause(1_000);
    }
    const settleSeconds = (Date.now() - started) / 1000;

    const escrow = attachJobEscrow(chain.addresses.escrow, chain.provider);
    const distributor = attachRewardsDistributor(chain.addresses.distributor, chain.provider);
    // Every account (developers, the platform account; an admin holds nothing on either side).
    const accounts = await client.query<{ address: string; balance: string }>(
      `SELECT a.address, COALESCE(SUM(b.balance), 0)::text AS balance FROM "Account" a
         LEFT JOIN "LedgerBalance" b ON b.account IN ('acct:' || a.id || ':available', 'acct:' || a.id || ':reserved')
        GROUP BY a.address`,
    );
    let largest = 0n;
    for (const a of accounts.rows) {
      const onChain = await escrow.balanceOf(a.address);
      const diff = BigInt(a.balance) - onChain;
      const abs = diff < 0n ? -diff : diff;
      if (abs > 0n) log(`account ${a.address}: off chain ${a.balance}, on chain ${onChain}`);
      if (abs > largest) largest = abs;
    }
    const epochs = await client.query<{ id: number; state: string; total: string | null }>(
      `SELECT id, state::text, total::text FROM "Epoch" WHERE state <> 'OPEN' ORDER BY id`,
    );
    let total = 0n;
    let funded = 0n;
    for (const e of epochs.rows) {
      total += BigInt(e.total ?? '0');
      funded += await distributor.fundedIn(e.id);
    }
    return {
      settled,
      settleSeconds: Math.round(settleSeconds * 10) / 10,
      offChainEqualsOnChain: largest === 0n,
      largestDifferenceBaseUnits: largest.toString(),
      unfundedBaseUnits: (total - funded).toString(),
      fundedBaseUnits: funded.toString(),
      epochsFinalized: epochs.rows.filter((e) => e.state === 'FINALIZED').length,
      accountsCompared: accounts.rows.length,
    };
  } finally {
    await client.end();
  }
}
