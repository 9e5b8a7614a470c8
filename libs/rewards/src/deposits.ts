import { Interface, type Log, type Provider } from 'ethers';

import { jobEscrowAbi } from './contracts/job-escrow.js';
import { RewardsError } from './errors.js';

/** Position of the last deposit handled: everything at or before it is done. */
export interface DepositCursor {
  readonly blockNumber: number;
  /**
   * Log index inside the block: -1 when none of this block is done yet, `BLOCK_DONE` when all of it is.
   */
  readonly logIndex: number;
  /** Hash of `blockNumber`'s block when it was read, to notice a reorg deeper than the confirmations. */
  readonly blockHash?: string;
}

export interface EscrowDeposit {
  /** `${txHash}:${logIndex}`: unique per deposit, a natural idempotency key. */
  readonly id: string;
  /** The depositing address: the SIWE account to credit. */
  readonly account: string;
  readonly amount: bigint;
  readonly txHash: string;
  readonly blockNumber: number;
  readonly blockHash: string;
  readonly logIndex: number;
  /** Persist this with the credit, in the same database transaction: exactly once across restarts. */
  readonly cursor: DepositCursor;
}

export interface ScanDepositsParams {
  readonly provider: Provider;
  readonly escrow: string;
  /** Resume after this cursor (`{blockNumber: deployBlock, logIndex: -1}` the first time). */
  readonly cursor: DepositCursor;
  /** A deposit counts once its block has this many confirmations (1 = mined). */
  readonly confirmations: number;
  /** Largest block range per `eth_getLogs` (default 2,000). */
  readonly maxBlockRange?: number;
  readonly onDeposit: (deposit: EscrowDeposit) => Promise<void>;
  /** Called when the cursor moves past blocks without deposits (persist it to skip them next time). */
  readonly onCursor?: (cursor: DepositCursor) => Promise<void>;
}

/** `logIndex` of a cursor whose block is fully handled. */
export const BLOCK_DONE = Number.MAX_SAFE_INTEGER;

const escrowInterface = new Interface(jobEscrowAbi);
const depositedTopic = escrowInterface.getEvent('Deposited')!.topicHash;

function after(log: Log, cursor: DepositCursor): boolean {
  return (
    log.blockNumber > cursor.blockNumber ||
    (log.blockNumber === cursor.blockNumber && log.index > cursor.logIndex)
  );
}

/**
 * One pass: hands every `Deposited` log after `cursor` and at least `confirmations` deep to
 * `onDeposit`, in chain order, awaiting each. Returns the new cursor. Blocks younger than the
 * confirmation depth are left for a later pass, so a shallow reorg never delivers a deposit that
 * disappears; a reorg deeper than that (the cursor's block hash changed) stops with `REORG_TOO_DEEP`.
 */
export async function scanDeposits(params: ScanDepositsParams): Promise<DepositCursor> {
  const { provider, escrow, confirmations } = params;
  if (!Number.isInteger(confirmations) || confirmations < 1)
    throw new RangeError('confirmations must be ≥ 1');
  let cursor = params.cursor;
  if (cursor.blockHash) {
    const block = await provider.getBlock(cursor.blockNumber);
    if (!block || block.hash !== cursor.blockHash) {
      throw new RewardsError(
        'REORG_TOO_DEEP',
        `block ${cursor.blockNumber} changed from ${cursor.blockHash} to ${block?.hash ?? 'nothing'}`,
      );
    }
  }
  const head = await provider.getBlockNumber();
  const safe = head - confirmations + 1;
  const range = params.maxBlockRange ?? 2_000;
  let from = cursor.logIndex === BLOCK_DONE ? cursor.blockNumber + 1 : cursor.blockNumber;
  while (from <= safe) {
    const to = Math.min(safe, from + range - 1);
    const logs = await provider.getLogs({
      address: escrow,
      topics: [depositedTopic],
      fromBlock: from,
      toBlock: to,
    });
    logs.sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
    for (const log of logs) {
      if (log.removed || !after(log, cursor)) continue;
      const parsed = escrowInterface.parseLog({ topics: [...log.topics], data: log.data });
      if (!parsed) continue;
      const next: DepositCursor = {
        blockNumber: log.blockNumber,
        logIndex: log.index,
        blockHash: log.blockHash,
      };
      await params.onDeposit({
        id: `${log.transactionHash}:${log.index}`,
        account: (parsed.args[0] as string).toLowerCase(),
        amount: parsed.args[1] as bigint,
        txHash: log.transactionHash,
        blockNumber: log.blockNumber,
        blockHash: log.blockHash,
        logIndex: log.index,
        cursor: next,
      });
      cursor = next;
    }
    const block = await provider.getBlock(to);
    cursor = { blockNumber: to, logIndex: BLOCK_DONE, blockHash: block?.hash ?? undefined };
    await params.onCursor?.(cursor);
    from = to + 1;
  }
  return cursor;
}

export interface WatchDepositsParams extends Omit<ScanDepositsParams, 'cursor'> {
  /** First block to read (used when there is no cursor yet). */
  readonly fromBlock: number;
  /** The persisted cursor, when resuming. */
  readonly cursor?: DepositCursor;
  readonly pollIntervalMs?: number;
  /**
   * Called when a pass fails, with how many passes in a row have failed; the watcher tries again next
   * poll (except on REORG_TOO_DEEP, which stops it).
   */
  readonly onError?: (err: unknown, failuresInARow: number) => void;
  /** Called when a pass succeeds after `failures` failed ones. */
  readonly onRecovered?: (failures: number) => void;
}

export interface DepositWatcher {
  /** Stops polling and resolves after the current pass. */
  stop(): Promise<void>;
  /** The latest cursor. */
  cursor(): DepositCursor;
  /** Resolves when the watcher stops, rejects when it stops on an error. */
  readonly done: Promise<void>;
}

/** Polls `scanDeposits` until stopped. Exactly once when the consumer persists `deposit.cursor` with each credit. */
export function watchDeposits(params: WatchDepositsParams): DepositWatcher {
  let cursor: DepositCursor = params.cursor ?? { blockNumber: params.fromBlock, logIndex: -1 };
  let stopped = false;
  let wake: (() => void) | null = null;
  const interval = params.pollIntervalMs ?? 1_000;
  let failures = 0;
  const loop = async (): Promise<void> => {
    while (!stopped) {
      try {
        cursor = await scanDeposits({ ...params, cursor });
        if (failures > 0) params.onRecovered?.(failures);
        failures = 0;
      } catch (err) {
        if (err instanceof RewardsError && err.code === 'REORG_TOO_DEEP') throw err;
        failures += 1;
        params.onError?.(err, failures);
      }
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, interval);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  };
  const done = loop();
  return {
    async stop(): Promise<void> {
      stopped = true;
      (wake as (() => void) | null)?.();
      await done.catch(() => undefined);
    },
    cursor: () => cursor,
    done,
  };
}
