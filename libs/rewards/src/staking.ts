import {
  NonceManager,
  Transaction,
  isError,
  type Log,
  type Provider,
  type Signer,
  type TransactionReceipt,
} from 'ethers';

import { attachComputeToken } from './contracts/compute-token.js';
import { attachProviderStaking, type ProviderStakingContract } from './contracts/provider-staking.js';
import { RewardsError } from './errors.js';
import { broadcastSignedTransaction, waitConfirmed } from './settlement.js';

/** A provider's stake on ProviderStaking, base units. */
export interface StakeInfo {
  readonly bonded: bigint;
  readonly unbonding: bigint;
  /** Unix seconds when the unbonding part may be withdrawn (0 when nothing unbonds). */
  readonly unbondingEndsAt: number;
}

export async function readStake(staking: ProviderStakingContract, provider: string): Promise<StakeInfo> {
  const [bonded, unbonding, endsAt] = await staking.stakeOf(provider);
  return { bonded, unbonding, unbondingEndsAt: Number(endsAt) };
}

export interface StakeTxResult {
  readonly txHash: string;
  readonly gasUsed: bigint;
  readonly stake: StakeInfo;
}

async function mined(
  tx: { hash: string; wait(confirmations?: number): Promise<TransactionReceipt | null> },
  confirmations: number,
): Promise<TransactionReceipt> {
  const receipt = await tx.wait(confirmations);
  if (!receipt || receipt.status !== 1) throw new RewardsError('TX_FAILED', `transaction ${tx.hash} failed`);
  return receipt;
}

/**
 * Bonds `amount` of the signer's tokens on ProviderStaking: approves the staking contract first when
 * its allowance is short, then stakes. Throws INSUFFICIENT_FUNDS (with the balance) before sending
 * anything when the signer holds fewer tokens.
 */
export async function stakeTokens(params: {
  readonly staking: string;
  readonly signer: Signer;
  readonly amount: bigint;
  readonly confirmations?: number;
}): Promise<StakeTxResult> {
  const { signer, amount } = params;
  if (amount <= 0n) throw new RewardsError('INVALID_AMOUNT', 'the amount to stake must be positive');
  const confirmations = params.confirmations ?? 1;
  const sender = signer instanceof NonceManager ? signer : new NonceManager(signer);
  const owner = await sender.getAddress();
  const staking = attachProviderStaking(params.staking, sender);
  const token = attachComputeToken(await staking.token(), sender);
  const balance = await token.balanceOf(owner);
  if (balance < amount) {
    throw new RewardsError(
      'INSUFFICIENT_FUNDS',
      `${owner} holds ${balance} base units, fewer than ${amount}`,
    );
  }
  if ((await token.allowance(owner, params.staking)) < amount) {
    await mined(await token.approve(params.staking, amount), confirmations);
  }
  const receipt = await mined(await staking.stake(amount), confirmations);
  return { txHash: receipt.hash, gasUsed: receipt.gasUsed, stake: await readStake(staking, owner) };
}

/** Moves `amount` (default: all bonded) to unbonding; the unbonding delay (re)starts. */
export async function requestUnbond(params: {
  readonly staking: string;
  readonly signer: Signer;
  readonly amount?: bigint;
  readonly confirmations?: number;
}): Promise<StakeTxResult> {
  const owner = await params.signer.getAddress();
  const staking = attachProviderStaking(params.staking, params.signer);
  const before = await readStake(staking, owner);
  const amount = params.amount ?? before.bonded;
  if (amount <= 0n) throw new RewardsError('INVALID_AMOUNT', `${owner} has nothing bonded to unbond`);
  if (amount > before.bonded) {
    throw new RewardsError(
      'INSUFFICIENT_FUNDS',
      `${owner} has ${before.bonded} base units bonded, fewer than ${amount}`,
    );
  }
  const receipt = await mined(await staking.requestUnbond(amount), params.confirmations ?? 1);
  return { txHash: receipt.hash, gasUsed: receipt.gasUsed, stake: await readStake(staking, owner) };
}

/** Withdraws the whole unbonding amount once its delay has passed. */
export async function withdrawUnbonded(params: {
  readonly staking: string;
  readonly signer: Signer;
  readonly confirmations?: number;
}): Promise<StakeTxResult & { readonly withdrawn: bigint }> {
  const owner = await params.signer.getAddress();
  const staking = attachProviderStaking(params.staking, params.signer);
  const before = await readStake(staking, owner);
  if (before.unbonding === 0n) throw new RewardsError('INVALID_AMOUNT', `${owner} has nothing unbonding`);
  const block = await params.signer.provider?.getBlock('latest');
  if (block && block.timestamp < before.unbondingEndsAt) {
    throw new RewardsError(
      'STILL_UNBONDING',
      `${before.unbonding} base units unbond until ${new Date(before.unbondingEndsAt * 1000).toISOString()}`,
    );
  }
  const receipt = await mined(await staking.withdraw(), params.confirmations ?? 1);
  return {
    txHash: receipt.hash,
    gasUsed: receipt.gasUsed,
    withdrawn: before.unbonding,
    stake: await readStake(staking, owner),
  };
}

// ---------------------------------------------------------------- slashing

/** What the slash executor wrote down before broadcasting a slash. */
export interface SlashRecord {
  readonly txHash: string;
  /** The signed transaction, re-broadcast unchanged after a crash. */
  readonly rawTransaction: string;
  readonly nonce: number;
}

/**
 * Durable storage of one slash's transaction (the coordinator keeps it on the SlashProposal row).
 * `put` must be durable when it resolves, and may refuse (throw) when the slash was cancelled meanwhile:
 * the transaction is broadcast only after it.
 */
export interface SlashJournal {
  get(): Promise<SlashRecord | null>;
  put(record: SlashRecord): Promise<void>;
}

export interface ExecuteSlashParams {
  /** ProviderStaking connected to a provider (reads); sending goes through `signer`. */
  readonly staking: ProviderStakingContract;
  /** Holds SLASHER_ROLE; must sign locally (a Wallet, or a NonceManager over one). */
  readonly signer: Signer;
  readonly journal: SlashJournal;
  /** The operator address whose stake is slashed. */
  readonly operator: string;
  /** Base units requested; capped at the operator's stake (bonded + unbonding). */
  readonly amount: bigint;
  /** keccak256 of the evidence bundle; the contract slashes once per hash. */
  readonly evidenceHash: string;
  readonly confirmations?: number;
  /** Give up waiting after this long (default 120,000 ms); a later call resumes. */
  readonly timeoutMs?: number;
}

export interface ExecutedSlash {
  readonly txHash: string;
  readonly blockNumber: number;
  /** Base units moved to the treasury. */
  readonly slashed: bigint;
  readonly requested: bigint;
  /** Where the slashed tokens went (ProviderStaking's treasury at the time). */
  readonly treasury: string;
  readonly gasUsed: bigint | null;
  /** True when the chain had this evidence used before this call sent anything. */
  readonly alreadyExecuted: boolean;
}

interface SlashedEvent {
  readonly provider: string;
  readonly evidenceHash: string;
  readonly requested: bigint;
  readonly slashed: bigint;
  readonly treasury: string;
}

function parseSlashed(staking: ProviderStakingContract, logs: readonly Log[]): SlashedEvent | null {
  const target = staking.target.toString().toLowerCase();
  for (const log of logs) {
    if (log.address.toLowerCase() !== target) continue;
    const parsed = staking.interface.parseLog({ topics: [...log.topics], data: log.data });
    if (parsed?.name !== 'Slashed') continue;
    return {
      provider: String(parsed.args[0]),
      evidenceHash: String(parsed.args[1]),
      requested: BigInt(parsed.args[2] as bigint),
      slashed: BigInt(parsed.args[3] as bigint),
      treasury: String(parsed.args[4]),
    };
  }
  return null;
}

/** The Slashed event that used `evidenceHash`, found by its indexed topic. */
async function findSlashed(
  staking: ProviderStakingContract,
  evidenceHash: string,
): Promise<{ event: SlashedEvent; txHash: string; blockNumber: number } | null> {
  const filter = staking.filters.Slashed(null, evidenceHash);
  const logs = await staking.queryFilter(filter, 0);
  const log = logs[0];
  if (!log) return null;
  const event = parseSlashed(staking, [log]);
  return event ? { event, txHash: log.transactionHash, blockNumber: log.blockNumber } : null;
}

/**
 * Slashes once per evidence hash, crash-safe and idempotent (like `postEpochRoot`):
 * 1. if the chain already used the evidence, returns that slash (`alreadyExecuted`);
 * 2. if the journal holds a transaction, re-broadcasts that same signed transaction (same hash and
 *    nonce) and waits for it; if it reverted, or its nonce went to another transaction, the evidence
 *    is still unused on chain (checked in 1), so a new transaction is safe;
 * 3. otherwise reads the operator's stake (NOTHING_TO_SLASH when it has none), caps the amount at it,
 *    checks the call would succeed, signs, writes the journal, then broadcasts;
 * 4. waits for `confirmations` and returns the Slashed event's figures.
 * The contract refuses a used evidence hash, so even two executors racing slash at most once.
 */
export async function executeSlash(params: ExecuteSlashParams): Promise<ExecutedSlash> {
  const { signer, journal, operator, evidenceHash } = params;
  const confirmations = params.confirmations ?? 1;
  const timeoutMs = params.timeoutMs ?? 120_000;
  const provider: Provider | null = signer.provider;
  if (!provider) throw new RewardsError('UNSUPPORTED_SIGNER', 'the signer needs a provider');
  // Reads and simulations go through the provider (a `from` override needs a read-only runner).
  const staking = attachProviderStaking(await params.staking.getAddress(), provider);
  if (!/^0x[0-9a-fA-F]{64}$/.test(evidenceHash)) {
    throw new RewardsError('INVALID_AMOUNT', `evidence hash ${evidenceHash} is not 32 bytes of hex`);
  }

  let record = await journal.get();
  if (await staking.isEvidenceUsed(evidenceHash)) {
    const found = await findSlashed(staking, evidenceHash);
    if (!found) throw new RewardsError('TX_FAILED', `evidence ${evidenceHash} is used but no Slashed event`);
    const receipt = await waitConfirmed(provider, found.txHash, confirmations, timeoutMs);
    return {
      txHash: found.txHash,
      blockNumber: found.blockNumber,
      slashed: found.event.slashed,
      requested: found.event.requested,
      treasury: found.event.treasury,
      gasUsed: receipt.gasUsed,
      alreadyExecuted: record === null || record.txHash !== found.txHash,
    };
  }
  if (record) {
    const receipt = await provider.getTransactionReceipt(record.txHash);
    if (receipt && receipt.status !== 1)
      record = null; // reverted, evidence unused: sign anew
    else if (
      !receipt &&
      (await broadcastSignedTransaction(provider, record.rawTransaction)) === 'nonce-used'
    ) {
      if (!(await provider.getTransactionReceipt(record.txHash))) record = null;
    }
  }
  if (!record) {
    const stake = await readStake(staking, operator);
    const total = stake.bonded + stake.unbonding;
    if (total === 0n) throw new RewardsError('NOTHING_TO_SLASH', `no stake: ${operator} has nothing staked`);
    const amount = params.amount < total ? params.amount : total;
    if (amount <= 0n) throw new RewardsError('INVALID_AMOUNT', 'the amount to slash must be positive');
    const from = await signer.getAddress();
    await staking.slash.staticCall(operator, amount, evidenceHash, { from }).catch((err: unknown) => {
      throw new RewardsError('TX_FAILED', `slash would revert: ${describeRevert(staking, err)}`);
    });
    const request = await staking.slash.populateTransaction(operator, amount, evidenceHash);
    const nonce = await provider.getTransactionCount(from, 'pending');
    const gasLimit = ((await provider.estimateGas({ ...request, from })) * 5n) / 4n;
    const populated = await signer.populateTransaction({ ...request, from, nonce, gasLimit });
    let rawTransaction: string;
    try {
      rawTransaction = await signer.signTransaction(populated);
    } catch (err) {
      throw new RewardsError(
        'UNSUPPORTED_SIGNER',
        `the slasher signer must sign locally: ${(err as Error).message}`,
      );
    }
    record = { txHash: Transaction.from(rawTransaction).hash!, rawTransaction, nonce };
    await journal.put(record);
    await broadcastSignedTransaction(provider, rawTransaction);
    if (signer instanceof NonceManager) signer.reset();
  }
  const receipt = await waitConfirmed(provider, record.txHash, confirmations, timeoutMs);
  if (receipt.status !== 1) {
    const found = await findSlashed(staking, evidenceHash);
    if (found) {
      return {
        txHash: found.txHash,
        blockNumber: found.blockNumber,
        slashed: found.event.slashed,
        requested: found.event.requested,
        treasury: found.event.treasury,
        gasUsed: null,
        alreadyExecuted: true,
      };
    }
    throw new RewardsError('TX_FAILED', `slash reverted in ${record.txHash}`);
  }
  const event = parseSlashed(staking, receipt.logs);
  if (!event) throw new RewardsError('TX_FAILED', `no Slashed event in ${record.txHash}`);
  return {
    txHash: record.txHash,
    blockNumber: receipt.blockNumber,
    slashed: event.slashed,
    requested: event.requested,
    treasury: event.treasury,
    gasUsed: receipt.gasUsed,
    alreadyExecuted: false,
  };
}

/** A contract revert as its custom error name and arguments, when the ABI knows it. */
export function describeRevert(contract: ProviderStakingContract, err: unknown): string {
  const data = (err as { data?: string; info?: { error?: { data?: string } } })?.data;
  if (typeof data === 'string' && data.length >= 10) {
    const parsed = contract.interface.parseError(data);
    if (parsed) return `${parsed.name}(${parsed.args.map(String).join(', ')})`;
  }
  if (isError(err, 'CALL_EXCEPTION') && err.revert) {
    return `${err.revert.name}(${err.revert.args.map(String).join(', ')})`;
  }
  return err instanceof Error ? err.message : String(err);
}
