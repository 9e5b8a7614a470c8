/**
 * One crash-safe, fee-bumping, reorg-aware sender: `sendJournaled` sends the transaction that makes
 * one effect happen (named by `key`), and a later call with the same key resumes it.
 *
 * What is durable when, and what a crash at each point leads to:
 * - before the journal write: nothing was signed that anyone knows of. The next call reads
 *   `isDone()`, finds no entry and signs afresh (the pending nonce).
 * - journal written, broadcast not (or lost): the entry holds the signed transaction. The next call
 *   finds it unmined with its nonce still free and broadcasts that same transaction (same hash,
 *   same nonce): it never takes a second nonce for the same entry.
 * - a replacement: it is signed with the SAME nonce and higher fees and appended to the entry's
 *   attempts BEFORE it is broadcast. All attempts share the nonce, so at most one of them is mined;
 *   the next call looks for a receipt among all of them.
 * - mined, not yet confirmed: the wait re-reads the receipt each poll. If it vanishes (a reorg, or
 *   a node that dropped it), the newest attempt is broadcast again while the nonce is free.
 * - the nonce went to a transaction that is none of the attempts (another sender with this key):
 *   ours can never be mined. If `isDone()` is still false, the entry is replaced by a fresh one
 *   (new nonce); if the foreign transaction is later reorged out, an old attempt could become valid
 *   again, so effects must be idempotent on chain (postRoot is: one root per epoch).
 * - `isDone()` true at the start: nothing is sent; a mined attempt of ours is reported and waited
 *   for. A pending attempt of ours may still be mined later and revert.
 * A timeout throws TX_TIMEOUT and leaves everything in the journal: the caller retries later.
 */
import {
  NonceManager,
  Transaction,
  isError,
  type ContractTransaction,
  type Provider,
  type Signer,
  type TransactionReceipt,
  type TransactionRequest,
} from 'ethers';

import { RewardsError } from './errors.js';

/** Gas estimate headroom. */
export const GAS_HEADROOM_PERCENT = 25n;
/** The smallest raise of both fee fields that nodes accept for a replacement (geth: 10 %). */
export const MIN_BUMP_PERCENT = 12.5;
/** Replace a transaction that is not mined after this long. */
export const DEFAULT_BUMP_AFTER_MS = 30_000;
/** Never sign a maxFeePerGas above this unless the caller's policy says otherwise (500 gwei). */
export const DEFAULT_MAX_FEE_PER_GAS = 500_000_000_000n;
/** Tip when the node does not suggest one (1 gwei). */
export const DEFAULT_PRIORITY_FEE_PER_GAS = 1_000_000_000n;
/** maxFeePerGas = BASE_FEE_MULTIPLIER × base fee + tip: room for six full blocks of base fee rise. */
export const BASE_FEE_MULTIPLIER = 2n;
export const DEFAULT_CONFIRMATIONS = 1;
export const DEFAULT_TX_TIMEOUT_MS = 120_000;
export const DEFAULT_POLL_MS = 1_000;

/** One signed transaction of an entry; all attempts of an entry share its nonce. */
export interface TxAttempt {
  readonly txHash: string;
  readonly rawTransaction: string;
  /** Decimal wei. */
  readonly maxFeePerGas: string;
  /** Decimal wei. */
  readonly maxPriorityFeePerGas: string;
  /** ISO time it was signed (and journaled). */
  readonly sentAt: string;
}

/** The journal entry of one effect: the call, its nonce and every attempt, oldest first. */
export interface JournaledTx {
  readonly key: string;
  readonly from: string;
  readonly nonce: number;
  readonly to: string;
  readonly data: string;
  readonly attempts: readonly TxAttempt[];
}

/** Durable storage of journal entries: `put` replaces the entry of its key and is durable when it resolves. */
export interface TxJournal {
  get(key: string): Promise<JournaledTx | null>;
  put(tx: JournaledTx): Promise<void>;
}

/** A journal in memory, for tests and one-shot tools. */
export class MemoryTxJournal implements TxJournal {
  private readonly entries = new Map<string, JournaledTx>();

  async get(key: string): Promise<JournaledTx | null> {
    return this.entries.get(key) ?? null;
  }

  async put(tx: JournaledTx): Promise<void> {
    this.entries.set(tx.key, tx);
  }
}

export interface FeePolicy {
  /** Replace an attempt not mined after this long. */
  readonly bumpAfterMs: number;
  /** Raise both fee fields by at least this percentage (at least MIN_BUMP_PERCENT). */
  readonly bumpPercent: number;
  /** The highest maxFeePerGas ever signed, wei. */
  readonly maxFeePerGas: bigint;
}

export type JournaledTxEvent =
  | {
      readonly type: 'sent';
      readonly key: string;
      readonly txHash: string;
      readonly nonce: number;
      readonly maxFeePerGas: bigint;
    }
  | {
      readonly type: 'replaced';
      readonly key: string;
      readonly txHash: string;
      readonly replaces: string;
      readonly nonce: number;
      readonly maxFeePerGas: bigint;
    }
  /** The node did not have the newest attempt (dropped, or reorged out): it was sent again. */
  | { readonly type: 'rebroadcast'; readonly key: string; readonly txHash: string; readonly nonce: number }
  /** A receipt seen earlier is gone (reorg). */
  | { readonly type: 'reorged'; readonly key: string; readonly txHash: string; readonly blockNumber: number }
  /** The fee cap leaves no room for another replacement: waiting instead. */
  | { readonly type: 'fee-cap'; readonly key: string; readonly nonce: number; readonly maxFeePerGas: bigint }
  /** The nonce went to a transaction that is none of the attempts; a fresh entry follows. */
  | { readonly type: 'nonce-taken'; readonly key: string; readonly nonce: number };

export interface SendJournaledParams {
  /** Signs locally (a Wallet, or a NonceManager over one) and has a provider. */
  readonly signer: Signer;
  readonly journal: TxJournal;
  /** Names the effect; the same key resumes the same entry. */
  readonly key: string;
  readonly to: string;
  readonly data: string;
  /** A chain read: is the effect already on chain? (default: never) */
  readonly isDone?: () => Promise<boolean>;
  readonly confirmations?: number;
  /** Give up after this long (TX_TIMEOUT); a later call resumes from the journal. */
  readonly timeoutMs?: number;
  readonly fees?: Partial<FeePolicy>;
  readonly pollMs?: number;
  readonly onEvent?: (event: JournaledTxEvent) => void;
}

export interface SentJournaled {
  /** The attempt that was mined, when one of ours was. */
  readonly txHash: string | null;
  readonly receipt: TransactionReceipt | null;
  /** `isDone()` was true before this call sent anything. */
  readonly alreadyDone: boolean;
  /** Replacements this call signed. */
  readonly replacements: number;
}

interface Context {
  readonly provider: Provider;
  readonly signer: Signer;
  readonly from: string;
  readonly policy: FeePolicy;
  readonly params: SendJournaledParams;
  emit(event: JournaledTxEvent): void;
}

interface Fees {
  readonly maxFeePerGas: bigint;
  readonly maxPriorityFeePerGas: bigint;
}

/**
 * Sends the transaction `{to, data}` for the effect `key` once: resumes the journal entry of the key
 * when there is one, replaces it with higher fees when it is not mined in time, re-sends it when it
 * is dropped or reorged out, and waits for `confirmations`. See the top of this file.
 */
export async function sendJournaled(params: SendJournaledParams): Promise<SentJournaled> {
  const { signer, journal, key } = params;
  const provider = signer.provider;
  if (!provider) throw new RewardsError('UNSUPPORTED_SIGNER', 'the signer needs a provider');
  const confirmations = params.confirmations ?? DEFAULT_CONFIRMATIONS;
  const timeoutMs = params.timeoutMs ?? DEFAULT_TX_TIMEOUT_MS;
  const pollMs = params.pollMs ?? DEFAULT_POLL_MS;
  const deadline = Date.now() + timeoutMs;
  const isDone = params.isDone ?? (async (): Promise<boolean> => false);
  const ctx: Context = {
    provider,
    signer,
    from: await signer.getAddress(),
    policy: {
      bumpAfterMs: params.fees?.bumpAfterMs ?? DEFAULT_BUMP_AFTER_MS,
      bumpPercent: params.fees?.bumpPercent ?? MIN_BUMP_PERCENT,
      maxFeePerGas: params.fees?.maxFeePerGas ?? DEFAULT_MAX_FEE_PER_GAS,
    },
    params,
    emit: (event) => params.onEvent?.(event),
  };

  const alreadyDone = await isDone();
  let entry = await journal.get(key);
  if (
    entry &&
    (!same(entry.to, params.to) || !same(entry.data, params.data) || !same(entry.from, ctx.from))
  ) {
    throw new RewardsError('JOURNAL_CONFLICT', `the journal holds another transaction for ${key}`);
  }
  const notSent: SentJournaled = { txHash: null, receipt: null, alreadyDone, replacements: 0 };
  if (entry) {
    const mined = await minedAttempt(provider, entry);
    if (alreadyDone && mined?.status !== 1) return notSent;
    // Reverted earlier while the effect is still not on chain: its nonce is spent, start afresh.
    if (!alreadyDone && mined && mined.status !== 1) entry = null;
  } else if (alreadyDone) {
    return notSent;
  }

  let replacements = 0;
  let seen: TransactionReceipt | null = null;
  let atCap = false;
  /** One look at the chain: the result, or whether to look again now or after a poll. */
  const step = async (): Promise<SentJournaled | 'again' | 'wait'> => {
    if (!entry) entry = await begin(ctx);
    const mined = await minedAttempt(provider, entry);
    if (mined && mined.status !== 1) {
      if (await isDone()) return { ...notSent, replacements };
      throw new RewardsError(
        'TX_FAILED',
        `${key}: ${mined.hash} reverted in block ${mined.blockNumber}: ${await revertReason(ctx, entry, mined)}`,
      );
    }
    if (mined) {
      if ((await provider.getBlockNumber()) - mined.blockNumber + 1 >= confirmations) {
        return { txHash: mined.hash, receipt: mined, alreadyDone, replacements };
      }
      seen = mined;
      return 'wait';
    }
    if (seen) {
      ctx.emit({ type: 'reorged', key, txHash: seen.hash, blockNumber: seen.blockNumber });
      seen = null;
    }
    if (await isDone()) {
      // Done by another transaction, unless ours was mined just now.
      return (await minedAttempt(provider, entry)) ? 'again' : { ...notSent, replacements };
    }
    if ((await provider.getTransactionCount(ctx.from, 'latest')) > entry.nonce) {
      if (await minedAttempt(provider, entry)) return 'again'; // ours, mined just now
      // Taken by a transaction that is none of ours: ours can never be mined.
      ctx.emit({ type: 'nonce-taken', key, nonce: entry.nonce });
      entry = null;
      atCap = false;
      return 'again';
    }
    const newest = lastAttempt(entry);
    // Once the cap leaves no room for a replacement, it never will for this entry: just wait.
    const due = !atCap && Date.now() - Date.parse(newest.sentAt) >= ctx.policy.bumpAfterMs;
    const replacement = due ? await replace(ctx, entry) : null;
    if (replacement) {
      entry = replacement;
      replacements += 1;
      return 'wait';
    }
    if (due) {
      atCap = true;
      ctx.emit({ type: 'fee-cap', key, nonce: entry.nonce, maxFeePerGas: BigInt(newest.maxFeePerGas) });
    }
    // Not mined, nonce free: make sure the node has it (a reorg or the node may have dropped it).
    if ((await broadcast(provider, newest.rawTransaction)) === 'sent') {
      ctx.emit({ type: 'rebroadcast', key, txHash: newest.txHash, nonce: entry.nonce });
    }
    return 'wait';
  };

  for (;;) {
    const outcome = await step();
    if (typeof outcome === 'object') return outcome;
    const left = deadline - Date.now();
    if (left <= 0) {
      const at = entry ? `nonce ${entry.nonce}, ${entry.attempts.length} attempt(s)` : 'no entry';
      throw new RewardsError(
        'TX_TIMEOUT',
        `no receipt for ${key} with ${confirmations} confirmation(s) after ${timeoutMs} ms (${at}); ` +
          'a later call resumes from the journal',
      );
    }
    if (outcome === 'wait') await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, left)));
  }
}

/** A contract call to send as one journaled effect: `populate` builds it (`contract.fn.populateTransaction`). */
export interface JournaledCall {
  readonly key: string;
  populate(): Promise<ContractTransaction>;
  readonly isDone?: () => Promise<boolean>;
}

/**
 * The one way a contract call of libs/rewards is sent: built by `call.populate()`, then
 * `sendJournaled` (journal, sign, broadcast, resume, bump, re-broadcast) with the caller's signer,
 * journal and patience.
 */
export async function sendJournaledCall(
  options: Omit<SendJournaledParams, 'key' | 'to' | 'data' | 'isDone'>,
  call: JournaledCall,
): Promise<SentJournaled> {
  const request = await call.populate();
  return sendJournaled({
    ...options,
    key: call.key,
    to: request.to,
    data: request.data,
    isDone: call.isDone,
  });
}

export interface SettleJournaledParams {
  /** Only its provider is used: nothing is signed. */
  readonly signer: Signer;
  readonly journal: TxJournal;
  readonly key: string;
  readonly confirmations?: number;
  readonly timeoutMs?: number;
  readonly pollMs?: number;
}

/**
 * Waits for the journal entry of `key` to be final WITHOUT signing anything: re-broadcasts its
 * newest attempt while the nonce is free and resolves the receipt of whichever attempt is mined
 * with `confirmations` (possibly reverted), or null when there is no entry or none of its attempts
 * can ever be mined (the nonce went to another transaction). TX_TIMEOUT when it stays pending.
 * For a caller that must know whether an effect it journaled lands before it acts against it (a
 * slash's cancel waits for the journaled proposal).
 */
export async function settleJournaled(params: SettleJournaledParams): Promise<TransactionReceipt | null> {
  const provider = params.signer.provider;
  if (!provider) throw new RewardsError('UNSUPPORTED_SIGNER', 'the signer needs a provider');
  const entry = await params.journal.get(params.key);
  if (!entry || entry.attempts.length === 0) return null;
  const confirmations = params.confirmations ?? DEFAULT_CONFIRMATIONS;
  const timeoutMs = params.timeoutMs ?? DEFAULT_TX_TIMEOUT_MS;
  const pollMs = params.pollMs ?? DEFAULT_POLL_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mined = await minedAttempt(provider, entry);
    if (mined) {
      if ((await provider.getBlockNumber()) - mined.blockNumber + 1 >= confirmations) return mined;
    } else if ((await provider.getTransactionCount(entry.from, 'latest')) > entry.nonce) {
      // Taken by a transaction that is none of the attempts, unless ours was mined just now.
      if (!(await minedAttempt(provider, entry))) return null;
      continue;
    } else {
      await broadcast(provider, lastAttempt(entry).rawTransaction);
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new RewardsError(
        'TX_TIMEOUT',
        `${params.key} (nonce ${entry.nonce}) is neither mined with ${confirmations} confirmation(s) nor replaced ` +
          `after ${timeoutMs} ms; a later call resumes from the journal`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, left)));
  }
}

/** Estimates, takes the pending nonce, signs, journals, then broadcasts the first attempt. */
async function begin(ctx: Context): Promise<JournaledTx> {
  const { provider, signer, from, params } = ctx;
  const call = { from, to: params.to, data: params.data };
  let gas: bigint;
  try {
    gas = await provider.estimateGas(call);
  } catch (err) {
    throw new RewardsError('TX_FAILED', `${params.key} would revert: ${describeError(err)}`);
  }
  const nonce = await provider.getTransactionCount(from, 'pending');
  const { chainId } = await provider.getNetwork();
  const market = await marketFees(provider);
  const maxFeePerGas = min(BASE_FEE_MULTIPLIER * market.baseFee + market.tip, ctx.policy.maxFeePerGas);
  const tx = {
    type: 2,
    chainId,
    nonce,
    to: params.to,
    data: params.data,
    gasLimit: (gas * (100n + GAS_HEADROOM_PERCENT)) / 100n,
    maxFeePerGas,
    maxPriorityFeePerGas: min(market.tip, maxFeePerGas),
  };
  const entry: JournaledTx = { key: params.key, from, nonce, to: params.to, data: params.data, attempts: [] };
  const sent = await journalAndBroadcast(ctx, entry, tx);
  // This sender picks its own nonce: a NonceManager sharing the key must re-read it.
  if (signer instanceof NonceManager) signer.reset();
  ctx.emit({ type: 'sent', key: params.key, txHash: lastAttempt(sent).txHash, nonce, maxFeePerGas });
  return sent;
}

/** A replacement of the newest attempt with the same nonce and higher fees; null at the fee cap. */
async function replace(ctx: Context, entry: JournaledTx): Promise<JournaledTx | null> {
  const newest = lastAttempt(entry);
  const fees = bumpedFees(
    { maxFeePerGas: BigInt(newest.maxFeePerGas), maxPriorityFeePerGas: BigInt(newest.maxPriorityFeePerGas) },
    await marketFees(ctx.provider),
    ctx.policy,
  );
  if (!fees) return null;
  const signed = Transaction.from(newest.rawTransaction);
  const replaced = await journalAndBroadcast(ctx, entry, {
    type: 2,
    chainId: signed.chainId,
    nonce: signed.nonce,
    to: signed.to,
    data: signed.data,
    value: signed.value,
    gasLimit: signed.gasLimit,
    ...fees,
  });
  ctx.emit({
    type: 'replaced',
    key: entry.key,
    txHash: lastAttempt(replaced).txHash,
    replaces: newest.txHash,
    nonce: entry.nonce,
    maxFeePerGas: fees.maxFeePerGas,
  });
  return replaced;
}

/** Signs `tx`, appends it to the entry's attempts, journals the entry (durably), then broadcasts. */
async function journalAndBroadcast(
  ctx: Context,
  entry: JournaledTx,
  tx: TransactionRequest & Fees,
): Promise<JournaledTx> {
  let rawTransaction: string;
  try {
    rawTransaction = await ctx.signer.signTransaction(tx);
  } catch (err) {
    throw new RewardsError('UNSUPPORTED_SIGNER', `the signer must sign locally: ${(err as Error).message}`);
  }
  const attempt: TxAttempt = {
    txHash: Transaction.from(rawTransaction).hash!,
    rawTransaction,
    maxFeePerGas: tx.maxFeePerGas.toString(),
    maxPriorityFeePerGas: tx.maxPriorityFeePerGas.toString(),
    sentAt: new Date().toISOString(),
  };
  const next: JournaledTx = { ...entry, attempts: [...entry.attempts, attempt] };
  await ctx.params.journal.put(next);
  await broadcast(ctx.provider, rawTransaction);
  return next;
}

/**
 * The fees of a replacement: both fields raised by `bumpPercent`, and at least what the current
 * base fee needs; null when the cap leaves no room for a replacement nodes accept.
 */
export function bumpedFees(
  previous: Fees,
  market: { readonly baseFee: bigint; readonly tip: bigint },
  policy: FeePolicy,
): Fees | null {
  const percent = Math.max(policy.bumpPercent, MIN_BUMP_PERCENT);
  const minFee = raise(previous.maxFeePerGas, percent);
  const minTip = raise(previous.maxPriorityFeePerGas, percent);
  const tip = max(minTip, market.tip);
  const maxFeePerGas = min(max(minFee, BASE_FEE_MULTIPLIER * market.baseFee + tip), policy.maxFeePerGas);
  if (maxFeePerGas < minFee || maxFeePerGas < minTip) return null;
  return { maxFeePerGas, maxPriorityFeePerGas: min(tip, maxFeePerGas) };
}

async function marketFees(provider: Provider): Promise<{ baseFee: bigint; tip: bigint }> {
  const [block, feeData] = await Promise.all([provider.getBlock('latest'), provider.getFeeData()]);
  return {
    baseFee: block?.baseFeePerGas ?? feeData.gasPrice ?? 0n,
    tip: feeData.maxPriorityFeePerGas ?? DEFAULT_PRIORITY_FEE_PER_GAS,
  };
}

/** The receipt of whichever attempt was mined (newest first), or null. */
async function minedAttempt(provider: Provider, entry: JournaledTx): Promise<TransactionReceipt | null> {
  for (const attempt of [...entry.attempts].reverse()) {
    const receipt = await provider.getTransactionReceipt(attempt.txHash);
    if (receipt) return receipt;
  }
  return null;
}

/** Why a mined call reverted, replayed on the state before its block. */
async function revertReason(ctx: Context, entry: JournaledTx, receipt: TransactionReceipt): Promise<string> {
  try {
    await ctx.provider.call({
      from: entry.from,
      to: entry.to,
      data: entry.data,
      blockTag: receipt.blockNumber - 1,
    });
    return 'no revert when replayed before its block';
  } catch (err) {
    return describeError(err);
  }
}

function describeError(err: unknown): string {
  if (isError(err, 'CALL_EXCEPTION') && err.revert) {
    return `${err.revert.name}(${err.revert.args.map(String).join(', ')})`;
  }
  const e = err as { shortMessage?: string; message?: string };
  return e.shortMessage ?? e.message ?? String(err);
}

type BroadcastOutcome = 'sent' | 'known' | 'nonce-used' | 'underpriced';

/** What a node's refusal of a signed transaction means, or null when it is another error. */
function classifyBroadcastError(err: unknown): Exclude<BroadcastOutcome, 'sent'> | null {
  const message = (err as Error).message.toLowerCase();
  if (message.includes('already known') || message.includes('already imported')) return 'known';
  // Mined already, or replaced by another transaction with the same nonce.
  if (message.includes('nonce too low') || message.includes('nonce has already been used'))
    return 'nonce-used';
  // Below the base fee, or not enough of a raise over a pending one: waits for the next replacement.
  if (
    message.includes('underpriced') ||
    message.includes('less than block base fee') ||
    message.includes('fee too low')
  )
    return 'underpriced';
  return null;
}

async function broadcast(provider: Provider, rawTransaction: string): Promise<BroadcastOutcome> {
  try {
    await provider.broadcastTransaction(rawTransaction);
    return 'sent';
  } catch (err) {
    const outcome = classifyBroadcastError(err);
    if (outcome) return outcome;
    throw err;
  }
}

/**
 * Broadcasts a signed transaction; 'known' when the node already has it, 'nonce-used' when its nonce
 * was taken (it was mined, or another transaction replaced it). Other refusals throw.
 */
export async function broadcastSignedTransaction(
  provider: Provider,
  rawTransaction: string,
): Promise<'sent' | 'known' | 'nonce-used'> {
  try {
    await provider.broadcastTransaction(rawTransaction);
    return 'sent';
  } catch (err) {
    const outcome = classifyBroadcastError(err);
    if (outcome && outcome !== 'underpriced') return outcome;
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

function lastAttempt(entry: JournaledTx): TxAttempt {
  return entry.attempts[entry.attempts.length - 1];
}

function raise(value: bigint, percent: number): bigint {
  const basisPoints = BigInt(Math.ceil(percent * 100));
  return (value * (10_000n + basisPoints) + 9_999n) / 10_000n;
}

function same(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
