import type { Signer } from 'ethers';

import {
  attachRewardsDistributor,
  type RewardsDistributorContract,
} from './contracts/rewards-distributor.js';
import { epochTree, type EpochFile } from './epoch-file.js';
import type { MerkleTree } from './merkle.js';

/** Everything `RewardsDistributor.claim` needs for one provider. */
export interface ClaimTicket {
  readonly epoch: number;
  readonly index: number;
  readonly account: string;
  readonly cumulativeAmount: bigint;
  readonly proof: readonly string[];
}

/** An epoch file with its tree built once, to hand out many tickets. */
export class EpochProofs {
  private readonly tree: MerkleTree;
  private readonly positions: Map<string, number>;

  constructor(private readonly file: EpochFile) {
    this.tree = epochTree(file);
    this.positions = new Map(file.leaves.map((l, i) => [l.account, i]));
  }

  get root(): string {
    return this.tree.root;
  }

  /** The ticket of `account` (any case), or null when it has no leaf in this epoch. */
  ticket(account: string): ClaimTicket | null {
    const position = this.positions.get(account.toLowerCase());
    if (position === undefined) return null;
    const leaf = this.file.leaves[position];
    return {
      epoch: this.file.epoch,
      index: leaf.index,
      account: leaf.account,
      cumulativeAmount: BigInt(leaf.cumulativeAmount),
      proof: this.tree.proof(position),
    };
  }
}

/** The ticket of `account` in `file` (builds the tree: use `EpochProofs` for many accounts). */
export function claimTicket(file: EpochFile, account: string): ClaimTicket | null {
  return new EpochProofs(file).ticket(account);
}

/**
 * The newest epoch whose root is claimable: final and fully funded together with every epoch before
 * it (the distributor's `fundedEpoch`); 0 when none is. Claim against it: all claims together never
 * exceed the cumulative total of the root they are made against.
 */
export async function latestClaimableEpoch(distributor: RewardsDistributorContract): Promise<number> {
  return Number(await distributor.fundedEpoch());
}

export interface ClaimResult {
  /** Base units paid by this claim (0 when nothing was owed and no transaction was sent). */
  readonly paid: bigint;
  readonly txHash: string | null;
  readonly gasUsed: bigint | null;
}

export interface ClaimRewardsParams {
  readonly distributor: string;
  /** Sends the transaction (any account may claim for any other; tokens go to the ticket's account). */
  readonly signer: Signer;
  readonly ticket: ClaimTicket;
  readonly confirmations?: number;
}

/** Claims what the ticket's account is owed; sends nothing when it has already claimed as much. */
export async function claimRewards(params: ClaimRewardsParams): Promise<ClaimResult> {
  const { ticket } = params;
  const distributor = attachRewardsDistributor(params.distributor, params.signer);
  const claimed = await distributor.claimedAmount(ticket.index);
  if (ticket.cumulativeAmount <= claimed) return { paid: 0n, txHash: null, gasUsed: null };
  const tx = await distributor.claim(ticket.epoch, ticket.index, ticket.account, ticket.cumulativeAmount, [
    ...ticket.proof,
  ]);
  const receipt = await tx.wait(params.confirmations ?? 1);
  return { paid: ticket.cumulativeAmount - claimed, txHash: tx.hash, gasUsed: receipt?.gasUsed ?? null };
}
