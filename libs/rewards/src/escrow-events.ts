import { Interface, type Log, type Provider } from 'ethers';

import { jobEscrowAbi } from './contracts/job-escrow.js';
import { RewardsError } from './errors.js';

/** Position of the last escrow event handled: everything at or before it is done. */
export interface EscrowEventCursor {
  readonly blockNumber: number;
  /**
   * Log index inside the block: -1 when none of this block is done yet, `BLOCK_DONE` when all of it is.
   */
  readonly logIndex: number;
  /** Hash of `blockNumber`'s block when it was read, to notice a reorg deeper than the confirmations. */
  readonly blockHash?: string;
}

/** Where an escrow event sits on chain; every event kind carries it. */
interface EscrowEventBase {
  /** `${txHash}:${logIndex}`: unique per event, a natural idempotency key. */
  readonly id: string;
  /** The escrow account the event is about (lower-case): the SIWE account of the developer. */
  readonly account: string;
  readonly txHash: string;
  readonly blockNumber: number;
  readonly blockHash: string;
  readonly logIndex: number;
  /** Persist this with the event's effect, in the same database transaction: exactly once across restarts. */
  readonly cursor: EscrowEventCursor;
}

/** `Deposited(account, amount)`: tokens entered the escrow for `account` (its own or a `depositFor`). */
export interface EscrowDeposit extends EscrowEventBase {
  readonly kind: 'deposit';
  readonly amount: bigint;
}

/** `UnlockRequested(account, unlockAt)`: from now on the account may not start new spending. */
export interface EscrowUnlockRequested extends EscrowEventBase {
  readonly kind: 'unlock-requested';
  /** Unix seconds when `withdraw` becomes possible. */
  readonly unlockAt: number;
}

/** `UnlockCancelled(account)`: the account may spend again. */
export interface EscrowUnlockCancelled extends EscrowEventBase {
  readonly kind: 'unlock-cancelled';
}

/** `Withdrawn(account, amount)`: tokens left the escrow (the unlock is spent). */
export interface EscrowWithdrawal extends EscrowEventBase {
  readonly kind: 'withdrawal';
  readonly amount: bigint;
}

/**
 * `SpendingCapAuthorized(account, cap)`: the account's spending cap on chain rose to `cap` (its own
 * `setSpendingCap`, or a signature anyone submitted): what it may commit off chain rises with it.
 */
export interface EscrowSpendingCapAuthorized extends EscrowEventBase {
  readonly kind: 'spending-cap';
  /** The cap as signed (a uint256; the escrow stores at most 2^128 - 1). */
  readonly cap: bigint;
}

/** Every escrow event that changes what an account may spend off chain, in chain order. */
export type EscrowEvent =
  | EscrowDeposit
  | EscrowUnlockRequested
  | EscrowUnlockCancelled
  | EscrowWithdrawal
  | EscrowSpendingCapAuthorized;

export interface ScanEscrowEventsParams {
  readonly provider: Provider;
  readonly escrow: string;
  /** Resume after this cursor (`{blockNumber: deployBlock, logIndex: -1}` the first time). */
  readonly cursor: EscrowEventCursor;
  /** An event counts once its block has this many confirmations (1 = mined). */
  readonly confirmations: number;
  /** Largest block range per `eth_getLogs` (default 2,000). */
  readonly maxBlockRange?: number;
  /** Each event in chain order, awaited before the next (persist its cursor with its effect). */
  readonly onEvent: (event: EscrowEvent) => Promise<void>;
  /** Called when the cursor moves past blocks without events (persist it to skip them next time). */
  readonly onCursor?: (cursor: EscrowEventCursor) => Promise<void>;
}

/** `logIndex` of a cursor whose block is fully handled. */
export const BLOCK_DONE = Number.MAX_SAFE_INTEGER;

const escrowInterface = new Interface(jobEscrowAbi);
/** The events an account's off-chain balance follows, by topic. */
const ACCOUNT_EVENT_TOPICS = [
  'Deposited',
  'UnlockRequested',
  'UnlockCancelled',
  'Withdrawn',
  'SpendingCapAuthorized',
].map((name) => escrowInterface.getEvent(name)!.topicHash);

function toEscrowEvent(log: Log, cursor: EscrowEventCursor): EscrowEvent | null {
  const parsed = escrowInterface.parseLog({ topics: [...log.topics], data: log.data });
  if (!parsed) return null;
  const base = {
    id: `${log.transactionHash}:${log.index}`,
    account: (parsed.args[0] as string).toLowerCase(),
    txHash: log.transactionHash,
    blockNumber: log.blockNumber,
    blockHash: log.blockHash,
    logIndex: log.index,
    cursor,
  };
  switch (parsed.name) {
    case 'Deposited':
      return { ...base, kind: 'deposit', amount: parsed.args[1] as bigint };
    case 'UnlockRequested':
      return { ...base, kind: 'unlock-requested', unlockAt: Number(parsed.args[1] as bigint) };
    case 'UnlockCancelled':
      return { ...base, kind: 'unlock-cancelled' };
    case 'Withdrawn':
      return { ...base, kind: 'withdrawal', amount: parsed.args[1] as bigint };
    case 'SpendingCapAuthorized':
      return { ...base, kind: 'spending-cap', cap: parsed.args[1] as bigint };
    default:
      return null;
  }
}

function after(log: Log, cursor: EscrowEventCursor): boolean {
  return (
    log.blockNumber > cursor.blockNumber ||
    (log.blockNumber === cursor.blockNumber && log.index > cursor.logIndex)
  );
}

/**
 * One pass: hands every account event of the escrow (deposit, unlock requested or cancelled,
 * withdrawal) after `cursor` and at least `confirmations` deep to `onEvent`, in chain order, awaiting
 * each. Returns the new cursor. Blocks younger than the confirmation depth are left for a later pass,
 * so a shallow reorg never delivers an event that disappears; a reorg deeper than that (the cursor's
 * block hash changed) stops with `REORG_TOO_DEEP`.
 */
export async function scanEscrowEvents(params: ScanEscrowEventsParams): Promise<EscrowEventCursor> {
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
      topics: [ACCOUNT_EVENT_TOPICS],
      fromBlock: from,
      toBlock: to,
    });
    logs.sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
    for (const log of logs) {
      if (log.removed || !after(log, cursor)) continue;
      const next: EscrowEventCursor = {
        blockNumber: log.blockNumber,
        logIndex: log.index,
        blockHash: log.blockHash,
      };
      const event = toEscrowEvent(log, next);
      if (!event) continue;
      await params.onEvent(event);
      cursor = next;
    }
    const block = await provider.getBlock(to);
    cursor = { blockNumber: to, logIndex: BLOCK_DONE, blockHash: block?.hash ?? undefined };
    await params.onCursor?.(cursor);
    from = to + 1;
  }
  return cursor;
}

export interface WatchEscrowEventsParams extends Omit<ScanEscrowEventsParams, 'cursor'> {
  /** First block to read (used when there is no cursor yet). */
  readonly fromBlock: number;
  /** The persisted cursor, when resuming. */
  readonly cursor?: EscrowEventCursor;
  readonly pollIntervalMs?: number;
  /**
   * Called when a pass fails, with how many passes in a row have failed; the watcher tries again next
   * poll (except on REORG_TOO_DEEP, which stops it).
   */
  readonly onError?: (err: unknown, failuresInARow: number) => void;
  /** Called when a pass succeeds after `failures` failed ones. */
  readonly onRecovered?: (failures: number) => void;
}

export interface EscrowEventWatcher {
  /** Stops polling and resolves after the current pass. */
  stop(): Promise<void>;
  /** The latest cursor. */
  cursor(): EscrowEventCursor;
  /** Resolves when the watcher stops, rejects when it stops on an error. */
  readonly done: Promise<void>;
}

/** Polls `scanEscrowEvents` until stopped. Exactly once when the consumer persists `event.cursor` with each effect. */
export function watchEscrowEvents(params: WatchEscrowEventsParams): EscrowEventWatcher {
  let cursor: EscrowEventCursor = params.cursor ?? { blockNumber: params.fromBlock, logIndex: -1 };
  let stopped = false;
  let wake: (() => void) | null = null;
  const interval = params.pollIntervalMs ?? 1_000;
  let failures = 0;
  const loop = async (): Promise<void> => {
    while (!stopped) {
      try {
        cursor = await scanEscrowEvents({ ...params, cursor });
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
