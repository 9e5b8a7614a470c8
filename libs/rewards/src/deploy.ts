import { id, NonceManager, type Signer } from 'ethers';

import { deployComputeToken } from './contracts/compute-token.js';
import { deployJobEscrow } from './contracts/job-escrow.js';
import { deployProviderStaking } from './contracts/provider-staking.js';
import { deployRewardsDistributor } from './contracts/rewards-distributor.js';

export interface DeployOptions {
  /** Gets DEFAULT_ADMIN_ROLE everywhere (default: the deployer). */
  readonly admin?: string;
  /** Gets SETTLER_ROLE on the distributor and the escrow (default: the deployer). */
  readonly settler?: string;
  /** Gets GUARDIAN_ROLE on the distributor (default: the deployer). */
  readonly guardian?: string;
  /** Gets SLASHER_ROLE on the staking contract (default: the deployer). */
  readonly slasher?: string;
  /** Gets SLASH_REVIEWER_ROLE (may cancel pending slashes) on the staking contract (default: the admin). */
  readonly slashReviewer?: string;
  /**
   * Seconds between a slash proposal (which freezes the stake) and its earliest execution
   * (default: 0 on a local chain, id 31337; 1 day elsewhere). Keep it ≤ the coordinator's
   * SLASH_REVIEW_SECONDS.
   */
  readonly slashReviewDelaySeconds?: number;
  /**
   * Delay of a DEFAULT_ADMIN_ROLE transfer on ProviderStaking (AccessControlDefaultAdminRules;
   * default: 0 on a local chain, id 31337; 1 day elsewhere).
   */
  readonly stakingAdminDelaySeconds?: number;
  readonly challengeWindowSeconds: number;
  readonly unlockDelaySeconds: number;
  readonly unbondingDelaySeconds: number;
  /** Mints these amounts (base units) to these accounts; the deployer keeps MINTER_ROLE. */
  readonly mint?: readonly { readonly to: string; readonly amount: bigint }[];
}

export interface DeployedAddresses {
  readonly token: string;
  readonly distributor: string;
  readonly escrow: string;
  readonly staking: string;
  /** Block of the last deployment transaction: where a deposit watcher can start. */
  readonly deployBlock: number;
}

export const SETTLER_ROLE = id('SETTLER_ROLE');
export const GUARDIAN_ROLE = id('GUARDIAN_ROLE');
export const SLASHER_ROLE = id('SLASHER_ROLE');
export const MINTER_ROLE = id('MINTER_ROLE');
export const SLASH_REVIEWER_ROLE = id('SLASH_REVIEWER_ROLE');

/** The chain id of anvil (and other local dev chains): short default delays there only. */
export const LOCAL_CHAIN_ID = 31337n;
const ONE_DAY_SECONDS = 86_400;

/**
 * Deploys ComputeToken, RewardsDistributor, JobEscrow and ProviderStaking in a fixed order from one
 * signer, then grants the roles. Addresses depend only on the deployer and its nonce, so a fresh
 * anvil with the same dev key gives the same addresses every time.
 */
export async function deployAll(signer: Signer, opts: DeployOptions): Promise<DeployedAddresses> {
  const sender = signer instanceof NonceManager ? signer : new NonceManager(signer);
  const deployer = await sender.getAddress();
  const admin = opts.admin ?? deployer;
  const token = await deployComputeToken(sender, deployer);
  const distributor = await deployRewardsDistributor(
    sender,
    await token.getAddress(),
    deployer,
    opts.challengeWindowSeconds,
  );
  const escrow = await deployJobEscrow(
    sender,
    await token.getAddress(),
    await distributor.getAddress(),
    deployer,
    opts.unlockDelaySeconds,
  );
  // ProviderStaking gets its admin and roles in its constructor (AccessControlDefaultAdminRules
  // refuses a later grant of DEFAULT_ADMIN_ROLE); slashed stake compensates developers through the
  // escrow, or is burnt.
  const local = (await sender.provider?.getNetwork())?.chainId === LOCAL_CHAIN_ID;
  const localDefault = local ? 0 : ONE_DAY_SECONDS;
  const staking = await deployProviderStaking(
    sender,
    await token.getAddress(),
    await escrow.getAddress(),
    admin,
    opts.stakingAdminDelaySeconds ?? localDefault,
    opts.slasher ?? deployer,
    opts.slashReviewer ?? admin,
    opts.unbondingDelaySeconds,
    opts.slashReviewDelaySeconds ?? localDefault,
  );
  const txs = [
    await token.grantRole(MINTER_ROLE, deployer),
    await distributor.grantRole(SETTLER_ROLE, opts.settler ?? deployer),
    await distributor.grantRole(GUARDIAN_ROLE, opts.guardian ?? deployer),
    await escrow.grantRole(SETTLER_ROLE, opts.settler ?? deployer),
  ];
  for (const m of opts.mint ?? []) txs.push(await token.mint(m.to, m.amount));
  if (admin !== deployer) {
    const adminRole = await token.DEFAULT_ADMIN_ROLE();
    for (const c of [token, distributor, escrow]) txs.push(await c.grantRole(adminRole, admin));
  }
  let deployBlock = 0;
  for (const tx of txs) {
    const receipt = await tx.wait();
    deployBlock = Math.max(deployBlock, receipt?.blockNumber ?? 0);
  }
  return {
    token: await token.getAddress(),
    distributor: await distributor.getAddress(),
    escrow: await escrow.getAddress(),
    staking: await staking.getAddress(),
    deployBlock,
  };
}
