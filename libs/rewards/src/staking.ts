import {
  NonceManager,
  isError,
  type ContractTransaction,
  type Log,
  type LogDescription,
  type Provider,
  type Signer,
  type TransactionReceipt,
} from 'ethers';

import { attachComputeToken } from './contracts/compute-token.js';
import { attachProviderStaking, type ProviderStakingContract } from './contracts/provider-staking.js';
import { RewardsError } from './errors.js';
import {
  sendJournaledCall,
  settleJournaled,
  waitConfirmed,
  type FeePolicy,
  type TxJournal,
} from './journaled-tx.js';

/** A provider's stake on ProviderStaking, base units. */
export interface StakeInfo {
  readonly bonded: bigint;
  readonly unbonding: bigint;
  /** Unix seconds when the unbonding part may be withdrawn (0 when nothing unbonds). */
  readonly unbondingEndsAt: number;
  /**
   * Held by pending slash proposals (≤ bonded + unbonding): never withdrawn until each proposal is
   * executed, cancelled or expired.
   */
  readonly frozen: bigint;
}

export async function readStake(staking: ProviderStakingContract, provider: string): Promise<StakeInfo> {
  const [[bonded, unbonding, endsAt], frozen] = await Promise.all([
    staking.stakeOf(provider),
    staking.frozenOf(provider),
  ]);
  return { bonded, unbonding, unbondingEndsAt: Number(endsAt), frozen };
}

/** What `withdraw` would pay now (ignoring the unbonding delay): min(unbonding, bonded + unbonding − frozen). */
export function withdrawableStake(stake: StakeInfo): bigint {
  const free = stake.bonded + stake.unbonding - stake.frozen;
  return stake.unbonding < free ? stake.unbonding : free;
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

/**
 * Withdraws what is unbonding and not frozen once the unbonding delay has passed. Stake frozen by a
 * pending slash proposal stays (unbonding) until the proposal is executed, cancelled or expired:
 * STAKE_FROZEN, before sending anything, when nothing could be paid.
 */
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
  if (withdrawableStake(before) === 0n) {
    throw new RewardsError(
      'STAKE_FROZEN',
      `${before.frozen} base units of ${owner}'s stake are frozen by pending slash proposals: ` +
        `nothing of the ${before.unbonding} unbonding can be withdrawn until they are executed, cancelled or expired`,
    );
  }
  const receipt = await mined(await staking.withdraw(), params.confirmations ?? 1);
  const after = await readStake(staking, owner);
  return {
    txHash: receipt.hash,
    gasUsed: receipt.gasUsed,
    withdrawn: before.unbonding - after.unbonding,
    stake: after,
  };
}

// ---------------------------------------------------------------- slashing

/** The three transactions of a slash; each is journaled on its own. */
export type SlashStep = 'propose' | 'execute' | 'cancel';

/** The journal key of one step of the slash for `evidenceHash`: `slash:<step>:<evidence hash>`. */
export function slashTxKey(step: SlashStep, evidenceHash: string): string {
  return `slash:${step}:${evidenceHash.toLowerCase()}`;
}

/** A developer compensated by a slash, and its weight (the coordinator uses job cost, base units). */
export interface SlashBeneficiary {
  readonly account: string;
  readonly weight: bigint;
}

/** `ProviderStaking.SlashState`, by name. */
export type OnChainSlashState = 'NONE' | 'PENDING' | 'EXECUTED' | 'CANCELLED' | 'EXPIRED';
const SLASH_STATES: readonly OnChainSlashState[] = ['NONE', 'PENDING', 'EXECUTED', 'CANCELLED', 'EXPIRED'];

/** A slash proposal as ProviderStaking holds it. */
export interface OnChainSlash {
  readonly provider: string;
  /** The frozen amount, base units. */
  readonly amount: bigint;
  /** Unix seconds from which it may be executed (0 when none was proposed). */
  readonly executableAt: number;
  readonly state: OnChainSlashState;
}

export async function readSlashProposal(
  staking: ProviderStakingContract,
  evidenceHash: string,
): Promise<OnChainSlash> {
  const [provider, amount, executableAt, state] = await staking.slashProposal(evidenceHash);
  return {
    provider,
    amount,
    executableAt: Number(executableAt),
    state: SLASH_STATES[Number(state)] ?? 'NONE',
  };
}

/** The beneficiaries as ProviderStaking's two arrays (the order is part of the proposal). */
export function beneficiaryArrays(beneficiaries: readonly SlashBeneficiary[]): [string[], bigint[]] {
  return [beneficiaries.map((b) => b.account), beneficiaries.map((b) => b.weight)];
}

interface SlashClientParams {
  /** ProviderStaking (its address is used; reads go through the signer's provider). */
  readonly staking: ProviderStakingContract;
  /** Holds SLASHER_ROLE; must sign locally (a Wallet, or a NonceManager over one). */
  readonly signer: Signer;
  /**
   * Where each step's signed transactions are journaled before broadcast, under `slashTxKey(step,
   * evidenceHash)` (the coordinator: its `ChainTx` table). `put` may refuse (throw) when the slash
   * left the state that step needs (an admin cancelled it meanwhile): nothing is broadcast then.
   */
  readonly journal: TxJournal;
  /** keccak256 of the public evidence bundle: the proposal's key on chain. */
  readonly evidenceHash: string;
  readonly confirmations?: number;
  /** Give up waiting after this long (default 120,000 ms, TX_TIMEOUT); a later call resumes. */
  readonly timeoutMs?: number;
  /** Fee bumps of a transaction that is not mined in time (see `sendJournaled`). */
  readonly fees?: Partial<FeePolicy>;
  readonly pollMs?: number;
}

interface SlashContext {
  readonly provider: Provider;
  /** Connected to the provider: reads and simulations with a `from` override. */
  readonly staking: ProviderStakingContract;
  readonly evidenceHash: string;
  readonly confirmations: number;
  readonly timeoutMs: number;
}

async function slashContext(params: SlashClientParams): Promise<SlashContext> {
  const provider: Provider | null = params.signer.provider;
  if (!provider) throw new RewardsError('UNSUPPORTED_SIGNER', 'the signer needs a provider');
  if (!/^0x[0-9a-fA-F]{64}$/.test(params.evidenceHash)) {
    throw new RewardsError('INVALID_AMOUNT', `evidence hash ${params.evidenceHash} is not 32 bytes of hex`);
  }
  return {
    provider,
    staking: attachProviderStaking(await params.staking.getAddress(), provider),
    evidenceHash: params.evidenceHash.toLowerCase(),
    confirmations: params.confirmations ?? 1,
    timeoutMs: params.timeoutMs ?? 120_000,
  };
}

/** Whether one of the journaled attempts of `step` is `txHash` (this client sent it). */
async function journaledAs(
  params: SlashClientParams,
  step: SlashStep,
  txHash: string | null | undefined,
): Promise<boolean> {
  if (!txHash) return false;
  const entry = await params.journal.get(slashTxKey(step, params.evidenceHash));
  return entry?.attempts.some((a) => a.txHash.toLowerCase() === txHash.toLowerCase()) ?? false;
}

/**
 * One step's transaction through the shared `sendJournaled` (journal → sign → broadcast, fee bumps,
 * re-broadcast after a crash, a drop or a reorg), until `isDone` reads the step's effect on chain.
 * The call is simulated first (with the contract's ABI, for a readable revert) unless the step is
 * journaled already. Resolves the receipt of our mined attempt, or null when the chain got there
 * another way.
 */
async function sendStep(
  ctx: SlashContext,
  params: SlashClientParams,
  step: SlashStep,
  call: {
    simulate(from: string): Promise<unknown>;
    populate(): Promise<ContractTransaction>;
    isDone(): Promise<boolean>;
  },
): Promise<TransactionReceipt | null> {
  const key = slashTxKey(step, ctx.evidenceHash);
  if (!(await params.journal.get(key))) {
    const from = await params.signer.getAddress();
    await call.simulate(from).catch((err: unknown) => {
      throw new RewardsError('TX_FAILED', `${step}Slash would revert: ${describeRevert(ctx.staking, err)}`);
    });
  }
  const sent = await sendJournaledCall(
    {
      signer: params.signer,
      journal: params.journal,
      confirmations: ctx.confirmations,
      timeoutMs: ctx.timeoutMs,
      fees: params.fees,
      pollMs: params.pollMs,
    },
    { key, populate: call.populate, isDone: call.isDone },
  );
  return sent.receipt;
}

function parseEvent(
  staking: ProviderStakingContract,
  logs: readonly Log[],
  name: string,
): LogDescription | null {
  const target = staking.target.toString().toLowerCase();
  for (const log of logs) {
    if (log.address.toLowerCase() !== target) continue;
    const parsed = staking.interface.parseLog({ topics: [...log.topics], data: log.data });
    if (parsed?.name === name) return parsed;
  }
  return null;
}

/** The first log of `name` whose indexed evidence hash is `evidenceHash`. */
async function findEvent(
  staking: ProviderStakingContract,
  name: 'SlashProposed' | 'Slashed' | 'SlashCancelled',
  evidenceHash: string,
): Promise<{ event: LogDescription; txHash: string; blockNumber: number } | null> {
  const filter =
    name === 'Slashed' ? staking.filters.Slashed(null, evidenceHash) : staking.filters[name](evidenceHash);
  const logs = await staking.queryFilter(filter, 0);
  for (const log of logs) {
    const event = parseEvent(staking, [log], name);
    if (event) return { event, txHash: log.transactionHash, blockNumber: log.blockNumber };
  }
  return null;
}

export interface ProposeSlashParams extends SlashClientParams {
  /** The operator address whose stake is frozen and later slashed. */
  readonly operator: string;
  /** Base units requested; the contract freezes min(amount, the operator's unfrozen stake). */
  readonly amount: bigint;
  /** Who the slashed tokens compensate (≤ 64; none: everything is burnt). Executed with the same list. */
  readonly beneficiaries: readonly SlashBeneficiary[];
}

export interface ProposedSlash {
  /** The proposing transaction, when this client, its journal or the chain's logs know it. */
  readonly txHash: string | null;
  readonly blockNumber: number | null;
  /** Base units frozen (what the execution will take). */
  readonly frozen: bigint;
  /** Unix seconds from which ProviderStaking lets it be executed. */
  readonly executableAt: number;
  /** Its state on chain now (PENDING unless it was executed, cancelled or expired since). */
  readonly state: OnChainSlashState;
  /** True when the chain had the proposal before this call sent anything. */
  readonly alreadyProposed: boolean;
}

/**
 * Proposes a slash on chain, freezing the operator's stake, once per evidence hash, crash-safe:
 * 1. reads the proposal: if the chain has it (for this operator) returns it (`alreadyProposed`);
 * 2. otherwise resumes the journaled `propose` transaction (`sendJournaled`: re-broadcast, or
 *    replaced with higher fees and the same nonce) if there is one, else checks the operator has
 *    unfrozen stake (NOTHING_TO_SLASH otherwise) and the call would succeed, signs, journals and
 *    broadcasts;
 * 3. waits for `confirmations` and returns the SlashProposed figures.
 */
export async function proposeSlash(params: ProposeSlashParams): Promise<ProposedSlash> {
  const ctx = await slashContext(params);
  const { staking } = ctx;
  const { operator, evidenceHash } = params;
  if (params.beneficiaries.some((b) => b.weight <= 0n)) {
    throw new RewardsError('INVALID_AMOUNT', 'every beneficiary needs a positive weight');
  }
  const known = async (alreadyProposed: boolean): Promise<ProposedSlash | null> => {
    const chain = await readSlashProposal(staking, evidenceHash);
    if (chain.state === 'NONE') return null;
    if (chain.provider.toLowerCase() !== operator.toLowerCase()) {
      throw new RewardsError(
        'EVIDENCE_CONFLICT',
        `evidence ${evidenceHash} already proposes a slash of ${chain.provider}, not ${operator}`,
      );
    }
    const found = await findEvent(staking, 'SlashProposed', evidenceHash);
    return {
      txHash: found?.txHash ?? null,
      blockNumber: found?.blockNumber ?? null,
      frozen: chain.amount,
      executableAt: chain.executableAt,
      state: chain.state,
      alreadyProposed,
    };
  };
  const before = await known(true);
  if (before) {
    return { ...before, alreadyProposed: !(await journaledAs(params, 'propose', before.txHash)) };
  }
  if (!(await params.journal.get(slashTxKey('propose', evidenceHash)))) {
    if (params.amount <= 0n) throw new RewardsError('INVALID_AMOUNT', 'the amount to slash must be positive');
    const stake = await readStake(staking, operator);
    if (stake.bonded + stake.unbonding - stake.frozen === 0n) {
      throw new RewardsError(
        'NOTHING_TO_SLASH',
        `no stake: ${operator} has ${stake.bonded + stake.unbonding} base units staked, ${stake.frozen} of them frozen already`,
      );
    }
  }
  const [accounts, weights] = beneficiaryArrays(params.beneficiaries);
  const receipt = await sendStep(ctx, params, 'propose', {
    simulate: (from) =>
      staking.proposeSlash.staticCall(operator, params.amount, evidenceHash, accounts, weights, { from }),
    populate: () =>
      staking.proposeSlash.populateTransaction(operator, params.amount, evidenceHash, accounts, weights),
    isDone: async () => (await readSlashProposal(staking, evidenceHash)).state !== 'NONE',
  });
  const event = receipt ? parseEvent(staking, receipt.logs, 'SlashProposed') : null;
  if (!receipt || !event) {
    const raced = await known(true);
    if (raced) return { ...raced, alreadyProposed: !(await journaledAs(params, 'propose', raced.txHash)) };
    throw new RewardsError('TX_FAILED', `proposeSlash for evidence ${evidenceHash} did not propose it`);
  }
  return {
    txHash: receipt.hash,
    blockNumber: receipt.blockNumber,
    frozen: BigInt(event.args[2] as bigint),
    executableAt: Number(event.args[3] as bigint),
    state: 'PENDING',
    alreadyProposed: false,
  };
}

export interface ExecuteSlashParams extends SlashClientParams {
  /** Exactly the beneficiaries (same order) the slash was proposed with. */
  readonly beneficiaries: readonly SlashBeneficiary[];
}

export interface ExecutedSlash {
  readonly txHash: string;
  readonly blockNumber: number;
  /** Base units taken from the operator's stake. */
  readonly slashed: bigint;
  /** Paid into the escrow for the beneficiaries. */
  readonly compensated: bigint;
  /** Burnt (rounding dust, or everything when no developer is compensated). */
  readonly burnt: bigint;
  readonly gasUsed: bigint | null;
  /** True when the chain had executed it before this call sent anything. */
  readonly alreadyExecuted: boolean;
}

function executedFrom(event: LogDescription): Pick<ExecutedSlash, 'slashed' | 'compensated' | 'burnt'> {
  return {
    slashed: BigInt(event.args[2] as bigint),
    compensated: BigInt(event.args[3] as bigint),
    burnt: BigInt(event.args[4] as bigint),
  };
}

/**
 * Executes a pending proposal, crash-safe and idempotent like `proposeSlash`:
 * 1. an executed proposal returns its Slashed figures (`alreadyExecuted`); a cancelled or expired
 *    one is SLASH_CLOSED, an unknown one SLASH_NOT_PROPOSED;
 * 2. a journaled `execute` transaction is resumed (re-broadcast, or fee-bumped) and awaited;
 * 3. otherwise, before the chain's `executableAt` it is SLASH_NOT_DUE (nothing sent); then it
 *    simulates, signs, journals and broadcasts `executeSlash(evidenceHash, beneficiaries, weights)`.
 */
export async function executeSlash(params: ExecuteSlashParams): Promise<ExecutedSlash> {
  const ctx = await slashContext(params);
  const { staking } = ctx;
  const { evidenceHash } = params;
  const executed = async (): Promise<ExecutedSlash> => {
    const found = await findEvent(staking, 'Slashed', evidenceHash);
    if (!found)
      throw new RewardsError('TX_FAILED', `evidence ${evidenceHash} is executed but no Slashed event`);
    const receipt = await waitConfirmed(ctx.provider, found.txHash, ctx.confirmations, ctx.timeoutMs);
    return {
      txHash: found.txHash,
      blockNumber: found.blockNumber,
      ...executedFrom(found.event),
      gasUsed: receipt.gasUsed,
      alreadyExecuted: !(await journaledAs(params, 'execute', found.txHash)),
    };
  };
  const closed = (state: OnChainSlashState): RewardsError =>
    state === 'NONE'
      ? new RewardsError('SLASH_NOT_PROPOSED', `no slash proposal on chain for evidence ${evidenceHash}`)
      : new RewardsError(
          'SLASH_CLOSED',
          `the slash proposal for evidence ${evidenceHash} is ${state} on chain`,
        );
  const chain = await readSlashProposal(staking, evidenceHash);
  if (chain.state === 'EXECUTED') return executed();
  if (chain.state !== 'PENDING') throw closed(chain.state);
  if (!(await params.journal.get(slashTxKey('execute', evidenceHash)))) {
    const block = await ctx.provider.getBlock('latest');
    if (block && block.timestamp < chain.executableAt) {
      throw new RewardsError(
        'SLASH_NOT_DUE',
        `the slash for evidence ${evidenceHash} is executable on chain from ${new Date(chain.executableAt * 1000).toISOString()}`,
      );
    }
  }
  const [accounts, weights] = beneficiaryArrays(params.beneficiaries);
  const receipt = await sendStep(ctx, params, 'execute', {
    simulate: (from) => staking.executeSlash.staticCall(evidenceHash, accounts, weights, { from }),
    populate: () => staking.executeSlash.populateTransaction(evidenceHash, accounts, weights),
    // Executed, or closed another way (cancelled, expired): nothing left to send.
    isDone: async () => (await readSlashProposal(staking, evidenceHash)).state !== 'PENDING',
  });
  const event = receipt ? parseEvent(staking, receipt.logs, 'Slashed') : null;
  if (!receipt || !event) {
    const after = (await readSlashProposal(staking, evidenceHash)).state;
    if (after === 'EXECUTED') return executed();
    if (after !== 'PENDING') throw closed(after);
    throw new RewardsError('TX_FAILED', `executeSlash for evidence ${evidenceHash} did not execute it`);
  }
  return {
    txHash: receipt.hash,
    blockNumber: receipt.blockNumber,
    ...executedFrom(event),
    gasUsed: receipt.gasUsed,
    alreadyExecuted: false,
  };
}

export interface CancelledSlash {
  /** The cancelling transaction, when there was one. */
  readonly txHash: string | null;
  /**
   * CANCELLED (the chain unfroze the stake), EXPIRED (unfrozen by expiry) or NOT_PROPOSED (nothing
   * reached the chain, and the journaled proposal, if any, can never be mined).
   */
  readonly state: 'CANCELLED' | 'EXPIRED' | 'NOT_PROPOSED';
  /** True when the chain was in that state before this call sent anything. */
  readonly alreadyCancelled: boolean;
}

/**
 * Cancels a slash on chain (SLASHER_ROLE or SLASH_REVIEWER_ROLE), crash-safe like the others. When
 * the chain has no proposal yet but the journal holds a `propose` transaction, that one is first
 * awaited without signing anything (`settleJournaled`: its newest attempt re-broadcast): it either
 * lands, and is then cancelled, or can never be mined.
 * An executed slash cannot be cancelled (SLASH_CLOSED).
 */
export async function cancelSlash(params: SlashClientParams): Promise<CancelledSlash> {
  const ctx = await slashContext(params);
  const { staking } = ctx;
  const { evidenceHash } = params;
  let chain = await readSlashProposal(staking, evidenceHash);
  if (chain.state === 'NONE') {
    const proposing = slashTxKey('propose', evidenceHash);
    if (await params.journal.get(proposing)) {
      await settleJournaled({
        signer: params.signer,
        journal: params.journal,
        key: proposing,
        confirmations: ctx.confirmations,
        timeoutMs: ctx.timeoutMs,
        pollMs: params.pollMs,
      });
    }
    chain = await readSlashProposal(staking, evidenceHash);
    if (chain.state === 'NONE') return { txHash: null, state: 'NOT_PROPOSED', alreadyCancelled: true };
  }
  const closed = async (): Promise<CancelledSlash | null> => {
    const now = await readSlashProposal(staking, evidenceHash);
    if (now.state === 'EXECUTED') {
      throw new RewardsError('SLASH_CLOSED', `the slash for evidence ${evidenceHash} was executed on chain`);
    }
    if (now.state === 'EXPIRED') return { txHash: null, state: 'EXPIRED', alreadyCancelled: true };
    if (now.state !== 'CANCELLED') return null;
    const found = await findEvent(staking, 'SlashCancelled', evidenceHash);
    return {
      txHash: found?.txHash ?? null,
      state: 'CANCELLED',
      alreadyCancelled: !(await journaledAs(params, 'cancel', found?.txHash)),
    };
  };
  const before = await closed();
  if (before) return before;
  const receipt = await sendStep(ctx, params, 'cancel', {
    simulate: (from) => staking.cancelSlash.staticCall(evidenceHash, { from }),
    populate: () => staking.cancelSlash.populateTransaction(evidenceHash),
    isDone: async () => (await readSlashProposal(staking, evidenceHash)).state !== 'PENDING',
  });
  if (!receipt || !parseEvent(staking, receipt.logs, 'SlashCancelled')) {
    const after = await closed();
    if (after) return after;
    throw new RewardsError('TX_FAILED', `cancelSlash for evidence ${evidenceHash} did not cancel it`);
  }
  return { txHash: receipt.hash, state: 'CANCELLED', alreadyCancelled: false };
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
