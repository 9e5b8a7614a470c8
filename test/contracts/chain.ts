// Shared helpers for tests against a real anvil: start it once per file, deploy, move time.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  ContractFactory,
  JsonRpcProvider,
  NonceManager,
  Wallet,
  type BaseContract,
  type InterfaceAbi,
} from 'ethers';

import {
  attachComputeToken,
  attachJobEscrow,
  attachProviderStaking,
  attachRewardsDistributor,
  deployAll,
  startAnvil,
  type AnvilInstance,
  type ComputeTokenContract,
  type DeployedAddresses,
  type DeployOptions,
  type JobEscrowContract,
  type ProviderStakingContract,
  type RewardsDistributorContract,
} from '#rewards';

export interface Chain {
  readonly anvil: AnvilInstance;
  readonly provider: JsonRpcProvider;
  /** NonceManager-wrapped wallets for anvil's ten dev accounts. */
  readonly wallets: readonly NonceManager[];
  readonly addresses: readonly string[];
  stop(): Promise<void>;
}

export async function startChain(): Promise<Chain> {
  const anvil = await startAnvil();
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
}

export const DEFAULT_DEPLOY: DeployOptions = {
  challengeWindowSeconds: 3_600,
  unlockDelaySeconds: 7_200,
  unbondingDelaySeconds: 86_400,
};

/** Deploys everything from dev account 0 (admin, settler, guardian, slasher) and connects to it. */
export async function deploySystem(chain: Chain, opts: Partial<DeployOptions> = {}): Promise<System> {
  const addresses = await deployAll(chain.wallets[0], { ...DEFAULT_DEPLOY, ...opts });
  const signer = chain.wallets[0];
  return {
    addresses,
    token: attachComputeToken(addresses.token, signer),
    distributor: attachRewardsDistributor(addresses.distributor, signer),
    escrow: attachJobEscrow(addresses.escrow, signer),
    staking: attachProviderStaking(addresses.staking, signer),
  };
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
