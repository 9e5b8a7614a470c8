import { mkdir, readFile, rename, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';

import {
  NonceManager,
  Transaction,
  isError,
  type Provider,
  type Signer,
  type TransactionReceipt,
} from 'ethers';

import type { RewardsDistributorContract } from './contracts/rewards-distributor.js';
import { RewardsError } from './errors.js';

/** What the settlement client wrote down before broadcasting an epoch's root. */
export interface SettlementRecord {
  readonly epoch: number;
  readonly root: string;
  readonly fileHash: string;
  /** Decimal base units. */
  readonly total: string;
  readonly txHash: string;
  /** The signed transaction, re-broadcast unchanged after a crash. */
  readonly rawTransaction: string;
  readonly nonce: number;
  readonly sentAt: string;
}

/**
 * Durable storage for settlement records (the coordinator keeps them in PostgreSQL). `put` must
 * be durable when it resolves: the transaction is broadcast only after it.
 */
export interface SettlementJournal {
  get(epoch: number): Promise<SettlementRecord | null>;
  put(record: SettlementRecord): Promise<void>;
}

/** A journal in memory, for tests and one-shot tools. */
export class MemorySettlementJournal implements SettlementJournal {
  private readonly records = new Map<number, SettlementRecord>();

  async get(epoch: number): Promise<SettlementRecord | null> {
    return this.records.get(epoch) ?? null;
  }

  async put(record: SettlementRecord): Promise<void> {
    this.records.set(record.epoch, record);
  }
}

/** A journal of one JSON file per epoch in `dir`, written with write-fsync-rename. */
export class FileSettlementJournal implements SettlementJournal {
  constructor(private readonly dir: string) {}

  async get(epoch: number): Promise<SettlementRecord | null> {
    try {
      return JSON.parse(await readFile(this.path(epoch), 'utf8')) as SettlementRecord;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async put(record: SettlementRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.path(record.epoch)}.tmp`;
    await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`);
    const handle = await open(tmp, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.path(record.epoch));
  }

  private path(epoch: number): string {
    return join(this.dir, `epoch-${epoch}.json`);
  }
}

export interface PostEpochRootParams {
  /** The distributor, connected to a provider (reads) — sending goes through `signer`. */
  readonly distributor: RewardsDistributorContract;
  /** Holds SETTLER_ROLE; must sign locally (a Wallet, or a NonceManager over one). */
  readonly signer: Signer;
  readonly journal: SettlementJournal;
  readonly epoch: number;
  readonly root: string;
  readonly fileHash: string;
  /** Σ of what the epoch adds, base units. */
  readonly total: bigint;
  /** Blocks to wait for (default 1: mined). */
  readonly confirmations?: number;
  /** Give up waiting after this long (default 120,000 ms); a later call resumes. */
  readonly timeoutMs?: number;
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

async function chainEpoch(
  distributor: RewardsDistributorContract,
  epoch: number,
): Promise<{ last: number; root: string; fileHash: string }> {
  const last = Number(await distributor.lastEpoch());
  const [root, fileHash] = await distributor.epochRoot(epoch);
  return { last, root, fileHash };
}

/**
 * Posts an epoch's root once, crash-safe and idempotent:
 * 1. reads the chain: if the epoch already has this root it returns (`alreadyPosted`); a different
 *    root is a conflict; an epoch beyond `lastEpoch + 1` is a gap (post the earlier ones first);
 * 2. if the journal holds a transaction for the epoch it re-broadcasts that same signed transaction
 *    (same hash, same nonce: it can be mined once at most) instead of signing a new one;
 * 3. otherwise it signs, writes the record (hash + raw transaction) to the journal, then broadcasts;
 * 4. waits for `confirmations` and checks the chain holds the root.
 * A coordinator killed at any point and restarted with the same journal never posts twice and never
 * skips an epoch (the contract also rejects anything but `lastEpoch + 1`).
 */
export async function postEpochRoot(params: PostEpochRootParams): Promise<PostedRoot> {
  const { distributor, signer, journal, epoch, root, fileHash, total } = params;
  const confirmations = params.confirmations ?? 1;
  const timeoutMs = params.timeoutMs ?? 120_000;
  const provider = signer.provider;
  if (!provider) throw new RewardsError('UNSUPPORTED_SIGNER', 'the signer needs a provider');

  const before = await chainEpoch(distributor, epoch);
  let record = await journal.get(epoch);
  if (epoch <= before.last) {
    if (!same(before.root, root) || !same(before.fileHash, fileHash)) {
      throw new RewardsError(
        'ROOT_CONFLICT',
        `epoch ${epoch} already has root ${before.root} on chain, not ${root}`,
      );
    }
    const receipt = record ? await provider.getTransactionReceipt(record.txHash) : null;
    if (receipt && receipt.status === 1)
      await waitConfirmed(provider, record!.txHash, confirmations, timeoutMs);
    return {
      epoch,
      txHash: receipt?.status === 1 ? receipt.hash : null,
      blockNumber: receipt?.status === 1 ? receipt.blockNumber : null,
      alreadyPosted: true,
    };
  }
  if (epoch !== before.last + 1) {
    throw new RewardsError('EPOCH_GAP', `epoch ${epoch} cannot be posted before epoch ${before.last + 1}`);
  }
  if (
    record &&
    (!same(record.root, root) || !same(record.fileHash, fileHash) || record.total !== total.toString())
  ) {
    throw new RewardsError(
      'ROOT_CONFLICT',
      `the journal holds a different root for epoch ${epoch} (${record.root}, tx ${record.txHash})`,
    );
  }
  if (record) {
    const receipt = await provider.getTransactionReceipt(record.txHash);
    if (receipt && receipt.status !== 1)
      record = null; // reverted while the epoch stayed open: sign anew
    else if (
      !receipt &&
      (await broadcastSignedTransaction(provider, record.rawTransaction)) === 'nonce-used'
    ) {
      // Its nonce went to another transaction: this one can never be mined. The epoch is still
      // open on chain (checked above), so a new transaction is safe.
      if (!(await provider.getTransactionReceipt(record.txHash))) record = null;
    }
  }
  if (!record) {
    const from = await signer.getAddress();
    await distributor.postRoot.staticCall(epoch, root, fileHash, total, { from });
    const request = await distributor.postRoot.populateTransaction(epoch, root, fileHash, total);
    const nonce = await provider.getTransactionCount(from, 'pending');
    const gasLimit = ((await provider.estimateGas({ ...request, from })) * 5n) / 4n; // 25% headroom
    const populated = await signer.populateTransaction({ ...request, from, nonce, gasLimit });
    let rawTransaction: string;
    try {
      rawTransaction = await signer.signTransaction(populated);
    } catch (err) {
      throw new RewardsError(
        'UNSUPPORTED_SIGNER',
        `the settlement signer must sign locally: ${(err as Error).message}`,
      );
    }
    record = {
      epoch,
      root,
      fileHash,
      total: total.toString(),
      txHash: Transaction.from(rawTransaction).hash!,
      rawTransaction,
      nonce,
      sentAt: new Date().toISOString(),
    };
    await journal.put(record);
    await broadcastSignedTransaction(provider, rawTransaction);
    // This client picks its own nonce: a NonceManager sharing the key must re-read it.
    if (signer instanceof NonceManager) signer.reset();
  }
  const receipt = await waitConfirmed(provider, record.txHash, confirmations, timeoutMs);
  if (receipt.status !== 1) {
    const now = await chainEpoch(distributor, epoch);
    if (epoch <= now.last && same(now.root, root)) {
      return { epoch, txHash: null, blockNumber: null, alreadyPosted: true };
    }
    throw new RewardsError('TX_FAILED', `postRoot for epoch ${epoch} reverted in ${record.txHash}`);
  }
  const after = await chainEpoch(distributor, epoch);
  if (epoch > after.last || !same(after.root, root)) {
    throw new RewardsError(
      'ROOT_CONFLICT',
      `epoch ${epoch} is not on chain with root ${root} after ${record.txHash}`,
    );
  }
  return { epoch, txHash: record.txHash, blockNumber: receipt.blockNumber, alreadyPosted: false };
}

/**
 * Broadcasts a signed transaction; 'known' when the node already has it, 'nonce-used' when its nonce
 * was taken (it was mined, or another transaction replaced it).
 */
export async function broadcastSignedTransaction(
  provider: Provider,
  rawTransaction: string,
): Promise<'sent' | 'known' | 'nonce-used'> {
  try {
    await provider.broadcastTransaction(rawTransaction);
    return 'sent';
  } catch (err) {
    const message = (err as Error).message.toLowerCase();
    if (message.includes('already known') || message.includes('already imported')) return 'known';
    // Mined already, or replaced by another transaction with the same nonce.
    if (message.includes('nonce too low') || message.includes('nonce has already been used'))
      return 'nonce-used';
    throw err;
  }
}

/** Waits for `confirmations` of `txHash`; a TX_FAILED RewardsError when none comes in `timeoutMs`. */
export async function waitConfirmed(
  provider: Provider,
  txHash: string,
  confirmations: number,
  timeoutMs: number,
): Promise<TransactionReceipt> {
  let receipt: TransactionReceipt | null;
  try {
    receipt = await provider.waitForTransaction(txHash, confirmations, timeoutMs);
  } catch (err) {
    // ethers rejects with TIMEOUT (rather than resolving null) when the time runs out.
    if (isError(err, 'TIMEOUT')) receipt = null;
    else throw err;
  }
  if (!receipt) throw new RewardsError('TX_FAILED', `no receipt for ${txHash} after ${timeoutMs} ms`);
  return receipt;
}
