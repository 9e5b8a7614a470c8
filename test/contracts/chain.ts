// Shared helpers for tests against a real anvil: start it once per file, deploy, move time.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  ContractFactory,
  ZeroHash,
  JsonRpcProvider,
  NonceManager,
  Wallet,
  type BaseContract,
  type Interface,
  type InterfaceAbi,
} from 'ethers';

import {
  attachComputeToken,
  attachJobEscrow,
  attachProviderStaking,
  attachRewardsDistributor,
  deployAll,
  fundingTree,
  minimumUnlockDelay,
  type CommittedBatch,
  type ComputeTokenContract,
  type DeployedAddresses,
  type DeployOptions,
  type JobEscrowContract,
  type ProviderStakingContract,
  type LeafDomain,
  type RewardsDistributorContract,
} from '@gpumesh/rewards';
import { startAnvil, type AnvilInstance } from '@gpumesh/devchain';

export interface Chain {
  readonly anvil: AnvilInstance;
  readonly provider: JsonRpcProvider;
  /** NonceManager-wrapped wallets for anvil's ten dev accounts. */
  readonly wallets: readonly NonceManager[];
  readonly addresses: readonly string[];
  stop(): Promise<void>;
}

export async function startChain(options: { readonly chainId?: number } = {}): Promise<Chain> {
  const anvil = await startAnvil(options);
  const provider = new JsonRpcProvider(anvil.rpcUrl, undefined, {
    staticNetwork: true,
    cacheTimeout: -1,
    pollingInterval: 50,
  });
  const wallets = anvil.accounts.map((a) => new NonceManager(new Wallet(a.privateKey, provider)));
  return {
    anvil,
    provider,
    wallets,
    addresses: anvil.accounts.map((a) => a.address),
    async stop(): Promise<void> {
      provider.destroy();
      await anvil.stop();
    },
  };
}

export interface System {
  readonly addresses: DeployedAddresses;
  readonly token: ComputeTokenContract;
  readonly distributor: RewardsDistributorContract;
  readonly escrow: JobEscrowContract;
  readonly staking: ProviderStakingContract;
  /** What the distributor's leaves are bound to: close epochs for it with `{ epoch, ...domain }`. */
  readonly domain: LeafDomain;
}

export const DEFAULT_DEPLOY: Omit<DeployOptions, 'unlockDelaySeconds'> = {
  challengeWindowSeconds: 3_600,
  maxEpochSeconds: 3_600,
  fundingMarginSeconds: 60,
  unbondingDelaySeconds: 86_400,
};

/**
 * Deploys everything from dev account 0 (admin, minter, settler, guardian, slasher) and connects to
 * it. Without `unlockDelaySeconds`, the unlock delay is the smallest the escrow accepts.
 */
export async function deploySystem(chain: Chain, opts: Partial<DeployOptions> = {}): Promise<System> {
  const merged = { ...DEFAULT_DEPLOY, ...opts };
  const addresses = await deployAll(chain.wallets[0], {
    ...merged,
    unlockDelaySeconds: opts.unlockDelaySeconds ?? minimumUnlockDelay(merged),
  });
  const signer = chain.wallets[0];
  return {
    addresses,
    token: attachComputeToken(addresses.token, signer),
    distributor: attachRewardsDistributor(addresses.distributor, signer),
    escrow: attachJobEscrow(addresses.escrow, signer),
    staking: attachProviderStaking(addresses.staking, signer),
    domain: { chainId: chain.anvil.chainId, distributor: addresses.distributor },
  };
}

/** The accounts and amounts of one escrow debit batch. */
export interface DebitBatchInput {
  readonly accounts: readonly string[];
  readonly amounts: readonly bigint[];
}

/**
 * Posts `epoch`'s root with `batches` committed as its funding root (batch `i` gets index `i`) and
 * returns them with their proofs: what `debitBatch` sends once the epoch is final.
 */
export async function postRootWithDebits(
  sys: System,
  epoch: number,
  root: string,
  fileHash: string,
  total: bigint,
  batches: readonly DebitBatchInput[],
): Promise<CommittedBatch[]> {
  const indexed = batches.map((b, index) => ({ index, accounts: b.accounts, amounts: b.amounts }));
  const tree = fundingTree({ chainId: sys.domain.chainId, escrow: sys.addresses.escrow }, epoch, indexed);
  await (await sys.distributor.postRoot(epoch, root, fileHash, total, tree?.root ?? ZeroHash)).wait();
  return tree ? indexed.map((b, i) => ({ ...b, proof: tree.proof(i) })) : [];
}

/** Sends `JobEscrow.debit` for a committed batch of `epoch` (from account 0 unless `escrow` says otherwise). */
export function debitBatch(
  escrow: JobEscrowContract,
  epoch: number,
  batch: CommittedBatch,
  overrides: { gasLimit?: number } = {},
): ReturnType<JobEscrowContract['debit']> {
  return escrow.debit(
    epoch,
    batch.index,
    [...batch.accounts],
    [...batch.amounts],
    [...batch.proof],
    overrides,
  );
}

/** Moves the chain clock forward and mines a block. */
export async function increaseTime(chain: Chain, seconds: number): Promise<void> {
  await chain.provider.send('evm_increaseTime', [seconds]);
  await chain.provider.send('evm_mine', []);
}

export async function mine(chain: Chain, blocks: number): Promise<void> {
  await chain.provider.send('anvil_mine', [`0x${blocks.toString(16)}`]);
}

interface Artifact {
  readonly abi: InterfaceAbi;
  readonly bytecode: string;
}

/** A compiled test mock from contracts/artifacts/test. */
export function mockArtifact(name: string): Artifact {
  return JSON.parse(
    readFileSync(join(process.cwd(), 'contracts', 'artifacts', 'test', `${name}.json`), 'utf8'),
  ) as Artifact;
}

export async function deployMock(chain: Chain, name: string, from = 0): Promise<BaseContract> {
  const a = mockArtifact(name);
  const c = await new ContractFactory(a.abi, a.bytecode, chain.wallets[from]).deploy();
  await c.waitForDeployment();
  return c;
}

/** Awaits `call` (use a `.staticCall`, which spends no nonce) and returns the custom error's name it reverted with. */
export async function revertName(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
  } catch (err) {
    const e = err as { revert?: { name?: string }; shortMessage?: string; message?: string };
    if (e.revert?.name) return e.revert.name;
    return `unknown revert: ${e.shortMessage ?? e.message ?? String(err)}`;
  }
  return 'did not revert';
}

/**
 * Funds `epoch` (final, next in order) with `amount` tokens minted to account 0 (the deployer, minter
 * in `deploySystem`); an amount of 0 marks an epoch with nothing to fund as funded.
 */
export async function fundEpoch(chain: Chain, sys: System, epoch: number, amount: bigint): Promise<void> {
  if (amount === 0n) {
    await (await sys.distributor.markFunded(epoch)).wait();
    return;
  }
  await (await sys.token.mint(chain.addresses[0], amount)).wait();
  await (await sys.token.approve(sys.addresses.distributor, amount)).wait();
  await (await sys.distributor.fund(epoch, amount)).wait();
}

/**
 * Like `revertName`, for errors raised by a contract the called one calls (e.g. the distributor's
 * errors bubbling up through JobEscrow.debit): decodes the revert data with `iface`.
 */
export async function nestedRevertName(call: () => Promise<unknown>, iface: Interface): Promise<string> {
  try {
    await call();
  } catch (err) {
    const e = err as { data?: string; shortMessage?: string; message?: string };
    const parsed = e.data ? iface.parseError(e.data) : null;
    if (parsed) return parsed.name;
    return `unknown revert: ${e.shortMessage ?? e.message ?? String(err)}`;
  }
  return 'did not revert';
}
