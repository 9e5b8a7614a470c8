import type { Signer } from 'ethers';

import { attachJobEscrow } from './contracts/job-escrow.js';
import { attachRewardsDistributor } from './contracts/rewards-distributor.js';
import type { EpochFile } from './epoch-file.js';
import { RewardsError } from './errors.js';
import { committedBatches } from './funding.js';

export interface FundEpochParams {
  /** The RewardsDistributor the epoch is posted on. */
  readonly distributor: string;
  /** Sends the transactions: any account with gas (the debits are open to anyone). */
  readonly signer: Signer;
  /** The epoch's file, already checked against the chain (root and file hash). */
  readonly file: EpochFile;
  readonly confirmations?: number;
}

export interface FundEpochResult {
  readonly epoch: number;
  /** The debit transactions this call sent (batches already debited by anyone are skipped). */
  readonly txHashes: readonly string[];
  /** Base units funded for the epoch after this call, and its total. */
  readonly funded: bigint;
  readonly total: bigint;
  /** True once the epoch (with every one before it) is funded: claims against it open. */
  readonly fullyFunded: boolean;
}

/**
 * Funds a final epoch from the escrow without the settler: sends every batch of the epoch's
 * committed debits (rebuilt from its file, each with its proof against the `fundingRoot` on chain)
 * that nobody has debited yet. Anyone may do it — a provider whose coordinator is gone, a watcher —
 * since `JobEscrow.debit` takes effect only for the committed batches, once each. The epoch must be
 * final and the next one to fund (earlier epochs first). Refuses an escrow that does not fund this
 * distributor (the file names it; a batch for another escrow proves nothing anyway).
 */
export async function fundEpochFromEscrow(params: FundEpochParams): Promise<FundEpochResult> {
  const { file, signer } = params;
  const epoch = file.epoch;
  const distributor = attachRewardsDistributor(params.distributor, signer);
  if (file.funding === null) {
    throw new RewardsError('NOT_FUNDABLE', `epoch ${epoch}'s file names no escrow funding`);
  }
  const escrow = attachJobEscrow(file.funding.escrow, signer);
  const escrowDistributor = (await escrow.distributor()).toLowerCase();
  if (escrowDistributor !== params.distributor.toLowerCase()) {
    throw new RewardsError(
      'NOT_FUNDABLE',
      `epoch ${epoch}'s file names escrow ${file.funding.escrow}, which funds ${escrowDistributor}, not ${params.distributor}`,
    );
  }
  if (!(await distributor.isFinal(epoch))) {
    throw new RewardsError(
      'NOT_FUNDABLE',
      `epoch ${epoch} is not final yet (in its challenge window, or not posted)`,
    );
  }
  const fundedEpoch = Number(await distributor.fundedEpoch());
  const total = await distributor.epochTotal(epoch);
  if (epoch <= fundedEpoch) {
    return { epoch, txHashes: [], funded: await distributor.fundedIn(epoch), total, fullyFunded: true };
  }
  if (epoch !== fundedEpoch + 1) {
    throw new RewardsError(
      'NOT_FUNDABLE',
      `epoch ${epoch} is funded after epoch ${fundedEpoch + 1}: fund that first`,
    );
  }
  const onChainRoot = (await distributor.fundingRoot(epoch)).toLowerCase();
  if (onChainRoot !== file.funding.root.toLowerCase()) {
    throw new RewardsError(
      'NOT_FUNDABLE',
      `epoch ${epoch}'s funding root on chain is ${onChainRoot}, the file says ${file.funding.root}`,
    );
  }
  const txHashes: string[] = [];
  for (const batch of committedBatches(file)) {
    if (await escrow.isBatchDebited(epoch, batch.index)) continue;
    const tx = await escrow.debit(
      epoch,
      batch.index,
      [...batch.accounts],
      [...batch.amounts],
      [...batch.proof],
    );
    await tx.wait(params.confirmations ?? 1);
    txHashes.push(tx.hash);
  }
  let funded = await distributor.fundedIn(epoch);
  // An epoch whose funding already covers its total (total 0, or a treasury's top-up) is marked here.
  if (funded >= total && !(await distributor.isFunded(epoch))) {
    const tx = await distributor.markFunded(epoch);
    await tx.wait(params.confirmations ?? 1);
    txHashes.push(tx.hash);
    funded = await distributor.fundedIn(epoch);
  }
  return { epoch, txHashes, funded, total, fullyFunded: await distributor.isFunded(epoch) };
}
