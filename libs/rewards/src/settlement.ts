import type { Signer } from 'ethers';

import type { RewardsDistributorContract } from './contracts/rewards-distributor.js';
import { RewardsError } from './errors.js';
import {
  sendJournaledCall,
  type FeePolicy,
  type JournaledTxEvent,
  type SentJournaled,
  type TxJournal,
} from './journaled-tx.js';

// staking.ts (executeSlash) sends through these.
export { broadcastSignedTransaction, waitConfirmed } from './journaled-tx.js';

export interface PostEpochRootParams {
  /** The distributor, connected to a provider (reads) — sending goes through `signer`. */
  readonly distributor: RewardsDistributorContract;
  /** Holds SETTLER_ROLE; must sign locally (a Wallet, or a NonceManager over one). */
  readonly signer: Signer;
  /** Where the signed transaction is written before it is broadcast (entry `postRootKey(epoch, root)`). */
  readonly journal: TxJournal;
  readonly epoch: number;
  readonly root: string;
  readonly fileHash: string;
  /** Σ of what the epoch adds, base units. */
  readonly total: bigint;
  /** The root of the epoch's escrow debit batches (the file's `funding.root`; zero hash when none). */
  readonly fundingRoot: string;
  /** Blocks to wait for (default 1: mined). */
  readonly confirmations?: number;
  /** Give up waiting after this long (default 120,000 ms); a later call resumes. */
  readonly timeoutMs?: number;
  /** Fee bumping of a transaction that is not mined (defaults in journaled-tx.ts). */
  readonly fees?: Partial<FeePolicy>;
  readonly pollMs?: number;
  readonly onEvent?: (event: JournaledTxEvent) => void;
}

export interface PostedRoot {
  readonly epoch: number;
  /** The transaction that posted it, when this client (or its journal) knows it. */
  readonly txHash: string | null;
  readonly blockNumber: number | null;
  /** True when the chain already had this root before this call sent anything. */
  readonly alreadyPosted: boolean;
}

function same(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

interface ChainEpoch {
  readonly last: number;
  readonly root: string;
  readonly fileHash: string;
}

async function chainEpoch(distributor: RewardsDistributorContract, epoch: number): Promise<ChainEpoch> {
  const last = Number(await distributor.lastEpoch());
  const [root, fileHash] = await distributor.epochRoot(epoch);
  return { last, root, fileHash };
}

/** The journal key of posting `root` for `epoch` (a re-post after a veto, with another root, is another entry). */
export function postRootKey(epoch: number, root: string): string {
  return `postRoot:${epoch}:${root.toLowerCase()}`;
}

/**
 * Posts an epoch's root once, crash-safe and idempotent:
 * 1. reads the chain: if the epoch already has this root it sends nothing (`alreadyPosted`; the
 *    journaled transaction that posted it, if any, is reported); a different root is a conflict; an
 *    epoch beyond `lastEpoch + 1` is a gap (post the earlier ones first);
 * 2. sends `postRoot` through `sendJournaled` (key `postRootKey(epoch, root)`): signed, journaled,
 *    then broadcast; a journaled transaction is resumed instead of signing another, replaced with
 *    the same nonce and higher fees when it is not mined in time, and sent again when a reorg or a
 *    node drops it;
 * 3. waits for `confirmations` and checks the chain holds the root.
 * A coordinator killed at any point and restarted with the same journal never posts twice and never
 * skips an epoch (the contract also rejects anything but `lastEpoch + 1`).
 */
export async function postEpochRoot(params: PostEpochRootParams): Promise<PostedRoot> {
  const { distributor, epoch, root, fileHash, total, fundingRoot } = params;
  const onChain = (e: ChainEpoch): boolean =>
    epoch <= e.last && same(e.root, root) && same(e.fileHash, fileHash);
  const conflict = (e: ChainEpoch): RewardsError | null =>
    epoch <= e.last && !onChain(e)
      ? new RewardsError(
          'ROOT_CONFLICT',
          `epoch ${epoch} already has root ${e.root} (file ${e.fileHash}) on chain, not ${root}`,
        )
      : null;

  const before = await chainEpoch(distributor, epoch);
  const early = conflict(before);
  if (early) throw early;
  if (epoch > before.last + 1) {
    throw new RewardsError('EPOCH_GAP', `epoch ${epoch} cannot be posted before epoch ${before.last + 1}`);
  }
  let sent: SentJournaled;
  try {
    sent = await sendJournaledCall(
      {
        signer: params.signer,
        journal: params.journal,
        confirmations: params.confirmations,
        timeoutMs: params.timeoutMs,
        fees: params.fees,
        pollMs: params.pollMs,
        onEvent: params.onEvent,
      },
      {
        key: postRootKey(epoch, root),
        populate: () => distributor.postRoot.populateTransaction(epoch, root, fileHash, total, fundingRoot),
        isDone: async () => onChain(await chainEpoch(distributor, epoch)),
      },
    );
  } catch (err) {
    // Reverted because another root got there first: say so.
    if (err instanceof RewardsError && err.code === 'TX_FAILED')
      throw conflict(await chainEpoch(distributor, epoch)) ?? err;
    throw err;
  }
  if (!sent.alreadyDone) {
    const after = await chainEpoch(distributor, epoch);
    if (!onChain(after)) {
      throw new RewardsError(
        'ROOT_CONFLICT',
        `epoch ${epoch} is not on chain with root ${root} after ${sent.txHash}`,
      );
    }
  }
  return {
    epoch,
    txHash: sent.txHash,
    blockNumber: sent.receipt?.blockNumber ?? null,
    alreadyPosted: sent.alreadyDone,
  };
}
