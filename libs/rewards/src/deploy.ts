import { getAddress, id, NonceManager, type Signer } from 'ethers';

import { computeTokenBytecode, deployComputeToken } from './contracts/compute-token.js';
import { deployJobEscrow, jobEscrowBytecode } from './contracts/job-escrow.js';
import { deployProviderStaking, providerStakingBytecode } from './contracts/provider-staking.js';
import { deployRewardsDistributor, rewardsDistributorBytecode } from './contracts/rewards-distributor.js';
import { keccak256Hex } from './keccak.js';

/** The local dev chain's id: the only chain where the contracts accept dev-sized windows. */
export const DEV_CHAIN_ID = 31337;
/** RewardsDistributor's bounds on the challenge window (MIN only off the dev chain). */
export const MIN_CHALLENGE_WINDOW_SECONDS = 3_600;
export const MAX_CHALLENGE_WINDOW_SECONDS = 30 * 86_400;
/** JobEscrow's bounds: every duration at most MAX_DELAY; the funding margin at least MIN (off 31337). */
export const MAX_DELAY_SECONDS = 365 * 86_400;
export const MIN_FUNDING_MARGIN_SECONDS = 3_600;
/** The default admin delay off the dev chain: two days. */
export const DEFAULT_ADMIN_DELAY_SECONDS = 2 * 86_400;
/** The default token cap: 10^9 tokens of six decimals. */
export const DEFAULT_TOKEN_CAP = 10n ** 15n;

export interface DeployOptions {
  /** Gets DEFAULT_ADMIN_ROLE everywhere (default: the deployer). */
  readonly admin?: string;
  /** Delay of a default admin transfer on token and distributor (default: 0 on chain 31337, else 2 days). */
  readonly adminDelaySeconds?: number;
  /** Gets SETTLER_ROLE on the distributor: posts roots (default: the deployer). The escrow has no roles. */
  readonly settler?: string;
  /** Gets GUARDIAN_ROLE on the distributor (default: the deployer). */
  readonly guardian?: string;
  /** Gets SLASHER_ROLE on the staking contract (default: the deployer). */
  readonly slasher?: string;
  /** Gets MINTER_ROLE on the token (default: the deployer). */
  readonly minter?: string;
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
  /** At least maxEpochSeconds + challengeWindowSeconds + fundingMarginSeconds. */
  readonly unlockDelaySeconds: number;
  /** The longest epoch the settler runs. */
  readonly maxEpochSeconds: number;
  /** How long after an epoch is final the settler takes to debit it (≥ 1 h off chain 31337). */
  readonly fundingMarginSeconds: number;
  readonly unbondingDelaySeconds: number;
  /** The token's supply cap in base units (default 10^15 = 10^9 tokens). */
  readonly tokenCap?: bigint;
  /** Mints these amounts (base units) to these accounts, from the deployer, which must be the minter. */
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

/**
 * keccak256 of the four contracts' creation code as this build deploys them: a saved deployment
 * whose fingerprint differs runs code older (or newer) than this build's, e.g. a dev chain kept in a
 * data dir across an upgrade that changed the leaf encoding.
 */
export function contractsFingerprint(): string {
  return keccak256Hex(
    [computeTokenBytecode, rewardsDistributorBytecode, jobEscrowBytecode, providerStakingBytecode].join(''),
  );
}

export const SETTLER_ROLE = id('SETTLER_ROLE');
export const GUARDIAN_ROLE = id('GUARDIAN_ROLE');
export const SLASHER_ROLE = id('SLASHER_ROLE');
export const MINTER_ROLE = id('MINTER_ROLE');
export const DEFAULT_ADMIN_ROLE = `0x${'00'.repeat(32)}`;

/** The smallest unlock delay JobEscrow accepts for these durations. */
export function minimumUnlockDelay(opts: {
  readonly maxEpochSeconds: number;
  readonly challengeWindowSeconds: number;
  readonly fundingMarginSeconds: number;
}): number {
  return opts.maxEpochSeconds + opts.challengeWindowSeconds + opts.fundingMarginSeconds;
}

export const SLASH_REVIEWER_ROLE = id('SLASH_REVIEWER_ROLE');

/** The chain id of anvil (and other local dev chains): short default delays there only. */
const ONE_DAY_SECONDS = 86_400;

/**
 * Deploys ComputeToken, RewardsDistributor, JobEscrow and ProviderStaking in a fixed order from one
 * signer. Token, distributor and escrow get their roles in their constructors; the staking contract
 * is deployed with the deployer as admin, which grants SLASHER_ROLE and, when the admin is someone
 * else, hands its admin role over and renounces it. Addresses depend only on the deployer and its
 * nonce, so a fresh anvil with the same dev key gives the same addresses every time.
 */
export async function deployAll(signer: Signer, opts: DeployOptions): Promise<DeployedAddresses> {
  const sender = signer instanceof NonceManager ? signer : new NonceManager(signer);
  const deployer = getAddress(await sender.getAddress());
  const admin = getAddress(opts.admin ?? deployer);
  const minter = getAddress(opts.minter ?? deployer);
  const settler = getAddress(opts.settler ?? deployer);
  if ((opts.mint?.length ?? 0) > 0 && minter !== deployer) {
    throw new Error(
      `deployAll: mint needs the deployer (${deployer}) to be the minter, but the minter is ${minter}`,
    );
  }
  const network = await sender.provider?.getNetwork();
  if (!network) throw new Error('deployAll: the signer has no provider');
  const local = Number(network.chainId) === DEV_CHAIN_ID;
  const adminDelay = opts.adminDelaySeconds ?? (local ? 0 : DEFAULT_ADMIN_DELAY_SECONDS);
  const token = await deployComputeToken(
    sender,
    admin,
    adminDelay,
    minter,
    opts.tokenCap ?? DEFAULT_TOKEN_CAP,
  );
  const distributor = await deployRewardsDistributor(
    sender,
    await token.getAddress(),
    admin,
    adminDelay,
    settler,
    getAddress(opts.guardian ?? deployer),
    opts.challengeWindowSeconds,
  );
  const escrow = await deployJobEscrow(
    sender,
    await token.getAddress(),
    await distributor.getAddress(),
    opts.unlockDelaySeconds,
    opts.maxEpochSeconds,
    opts.fundingMarginSeconds,
  );
  // ProviderStaking gets its admin and roles in its constructor (AccessControlDefaultAdminRules
  // refuses a later grant of DEFAULT_ADMIN_ROLE); slashed stake compensates developers through the
  // escrow, or is burnt.
  const staking = await deployProviderStaking(
    sender,
    await token.getAddress(),
    await escrow.getAddress(),
    admin,
    opts.stakingAdminDelaySeconds ?? adminDelay,
    getAddress(opts.slasher ?? deployer),
    getAddress(opts.slashReviewer ?? admin),
    opts.unbondingDelaySeconds,
    opts.slashReviewDelaySeconds ?? (local ? 0 : ONE_DAY_SECONDS),
  );
  const txs = [];
  for (const m of opts.mint ?? []) txs.push(await token.mint(m.to, m.amount));
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
