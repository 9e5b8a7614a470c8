import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { SlashProposal } from '#prisma';
import {
  RewardsError,
  SLASHER_ROLE,
  cancelSlash,
  executeSlash,
  formatTokenAmount,
  proposeSlash,
  readSlashProposal,
  slashTxKey,
  type SlashStep,
  type TxJournal,
} from '@gpumesh/rewards';
import { LOGGER } from '../logging/logger.js';
import { ChainClient } from './chain-client.js';
import { SettlementService, describeSettlementError } from './settlement.service.js';
import { SlashNoLongerPendingError, SlashRepository, slashBeneficiaries } from './slash.repository.js';
import { TxJournalRepository } from './tx-journal.repository.js';

export interface SlashOutcome {
  id: string;
  state: 'FROZEN' | 'EXECUTED' | 'CANCELLED' | 'EXPIRED' | 'FAILED' | 'PENDING' | 'SKIPPED';
  txHash?: string;
  detail?: string;
}

export interface ExecuteOptions {
  /** How long to wait for each transaction (default 60,000 ms); a later tick resumes. */
  timeoutMs?: number;
  now?: Date;
}

/** Normalises an evidence hash to 0x + 64 lower-case hex digits, or null. */
export function evidenceHashHex(value: string): string | null {
  const hex = value.startsWith('0x') ? value.slice(2) : value;
  return /^[0-9a-fA-F]{64}$/.test(hex) ? `0x${hex.toLowerCase()}` : null;
}

interface StepContext {
  proposal: SlashProposal;
  evidenceHash: string;
  chainKey: string;
  journal: TxJournal;
  log: Record<string, string>;
  timeoutMs: number;
}

/**
 * Worker side of slashing, one step per due proposal and tick, each crash-safe through the shared
 * `sendJournaled` (the signed transaction is journaled in `ChainTx` under `slash:<step>:<evidence
 * hash>`, and its hash noted on the row, before it is broadcast; after a restart that same
 * transaction is re-broadcast or fee-bumped with the same nonce, never a second one):
 * - PROPOSED: `proposeSlash` at once, which freezes the operator's stake on ProviderStaking so
 *   unbonding cannot dodge the slash → FROZEN (`amount` = what the chain froze);
 * - FROZEN after `executeAfter` (the review window, and the chain's executableAt) and SENT:
 *   `executeSlash` with the stored beneficiaries: the frozen stake is paid into the escrow for the
 *   developers the provider worked for (the deposit watcher credits them) and the rest is burnt
 *   → EXECUTED;
 * - CANCELLING (an admin cancelled it): `cancelSlash` with the slasher key, unfreezing → CANCELLED.
 */
@Injectable()
export class SlashExecutorService {
  private warnedNoStaking = false;

  constructor(
    private readonly repo: SlashRepository,
    private readonly txJournal: TxJournalRepository,
    private readonly chain: ChainClient,
    private readonly settlement: SettlementService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  get enabled(): boolean {
    return this.chain.staking !== null;
  }

  /** Whether the tick should enqueue an execution pass. */
  async anyDue(now = new Date()): Promise<boolean> {
    if (!this.enabled) {
      if (!this.warnedNoStaking && (await this.repo.anyDue(now))) {
        this.warnedNoStaking = true;
        this.logger.warn(
          'slash proposals are due but no ProviderStaking address is configured (STAKING_ADDRESS)',
        );
      }
      return false;
    }
    return this.repo.anyDue(now);
  }

  /** Takes the next step of every due proposal. */
  async executeDue(options: ExecuteOptions = {}): Promise<SlashOutcome[]> {
    if (!this.chain.staking) return [];
    const slasher = await this.chain.slasher.getAddress();
    if (!(await this.chain.staking.hasRole(SLASHER_ROLE, slasher))) {
      this.logger.error(
        { slasher, staking: this.chain.chain.contracts.staking },
        'the slasher key lacks SLASHER_ROLE on ProviderStaking: slash proposals wait (set SLASHER_KEY)',
      );
      return [];
    }
    const outcomes: SlashOutcome[] = [];
    for (const proposal of await this.repo.due(options.now ?? new Date())) {
      outcomes.push(await this.step(proposal, options));
    }
    return outcomes;
  }

  /**
   * The chain's transaction journal, with each step's write first noted on the proposal's row
   * (refused, so nothing is broadcast, when an admin moved the proposal out of that step's states).
   */
  private stepJournal(id: string, evidenceHash: string, chainKey: string): TxJournal {
    const journal = this.txJournal.journal(chainKey);
    const steps: SlashStep[] = ['propose', 'execute', 'cancel'];
    const stepOf = (key: string): SlashStep | undefined =>
      steps.find((step) => slashTxKey(step, evidenceHash) === key);
    const repo = this.repo;
    return {
      get: (key) => journal.get(key),
      async put(tx): Promise<void> {
        const step = stepOf(tx.key);
        const newest = tx.attempts[tx.attempts.length - 1];
        if (!step || !newest) throw new Error(`slash ${id}: unexpected journal entry ${tx.key}`);
        await repo.noteStepTx(id, chainKey, step, { txHash: newest.txHash, nonce: tx.nonce });
        await journal.put(tx);
      },
    };
  }

  /** The step the proposal's state calls for. */
  async step(proposal: SlashProposal, options: ExecuteOptions = {}): Promise<SlashOutcome> {
    if (!this.chain.staking) return { id: proposal.id, state: 'PENDING', detail: 'no staking contract' };
    const evidenceHash = evidenceHashHex(proposal.evidenceHash);
    if (!evidenceHash) {
      const error = `evidence hash ${proposal.evidenceHash} is not 32 bytes of hex`;
      await this.repo.markFailed(proposal.id, error);
      return { id: proposal.id, state: 'FAILED', detail: error };
    }
    const chainKey = await this.chain.chainKey();
    const ctx: StepContext = {
      proposal,
      evidenceHash,
      chainKey,
      journal: this.stepJournal(proposal.id, evidenceHash, chainKey),
      log: { slash: proposal.id, peerId: proposal.peerId, operator: proposal.operatorAddress },
      timeoutMs: options.timeoutMs ?? 60_000,
    };
    try {
      switch (proposal.state) {
        case 'PROPOSED':
          return await this.propose(ctx);
        case 'FROZEN':
        case 'SENT':
          return await this.execute(ctx);
        case 'CANCELLING':
          return await this.cancel(ctx);
        default:
          return { id: proposal.id, state: 'SKIPPED', detail: `state ${proposal.state}` };
      }
    } catch (err) {
      if (err instanceof SlashNoLongerPendingError) {
        this.logger.info({ ...ctx.log, state: err.state }, 'slash proposal changed state before sending');
        return { id: proposal.id, state: 'SKIPPED', detail: err.message };
      }
      const message = describeSettlementError(err);
      if (isPermanent(err)) {
        await this.repo.markFailed(proposal.id, message);
        this.logger.warn({ ...ctx.log, state: proposal.state, err: message }, 'slash failed');
        return { id: proposal.id, state: 'FAILED', detail: message };
      }
      await this.repo.noteError(proposal.id, message);
      this.logger.warn(
        { ...ctx.log, state: proposal.state, err: message },
        'slash step not taken yet (retried next tick)',
      );
      return { id: proposal.id, state: 'PENDING', detail: message };
    }
  }

  private async propose(ctx: StepContext): Promise<SlashOutcome> {
    const { proposal } = ctx;
    const done = await proposeSlash({
      staking: this.chain.staking!,
      signer: this.chain.slasher,
      journal: ctx.journal,
      evidenceHash: ctx.evidenceHash,
      operator: proposal.operatorAddress,
      amount: proposal.amount,
      beneficiaries: slashBeneficiaries(proposal),
      confirmations: this.settlement.settings.confirmations,
      timeoutMs: ctx.timeoutMs,
    });
    // The chain's executableAt is in chain time; the executor checks it before executing
    // (SLASH_NOT_DUE), so `executeAfter` (wall time) stays the coordinator's review window.
    await this.repo.markFrozen(proposal.id, {
      frozen: done.frozen,
      chainExecutableAt: new Date(done.executableAt * 1000),
      chainKey: ctx.chainKey,
      txHash: done.txHash,
    });
    this.logger.info(
      {
        ...ctx.log,
        txHash: done.txHash,
        requested: proposal.amount.toString(),
        frozen: done.frozen.toString(),
        executeAfter: proposal.executeAfter.toISOString(),
        chainExecutableAt: new Date(done.executableAt * 1000).toISOString(),
        alreadyProposed: done.alreadyProposed,
      },
      `slash proposed on chain: ${formatTokenAmount(done.frozen)} tokens of stake frozen`,
    );
    return { id: proposal.id, state: 'FROZEN', txHash: done.txHash ?? undefined };
  }

  private async execute(ctx: StepContext): Promise<SlashOutcome> {
    const { proposal } = ctx;
    let done;
    try {
      done = await executeSlash({
        staking: this.chain.staking!,
        signer: this.chain.slasher,
        journal: ctx.journal,
        evidenceHash: ctx.evidenceHash,
        beneficiaries: slashBeneficiaries(proposal),
        confirmations: this.settlement.settings.confirmations,
        timeoutMs: ctx.timeoutMs,
      });
    } catch (err) {
      if (err instanceof RewardsError && err.code === 'SLASH_NOT_DUE') {
        return { id: proposal.id, state: 'PENDING', detail: err.message };
      }
      if (err instanceof RewardsError && err.code === 'SLASH_CLOSED') return this.closedOnChain(ctx);
      throw err;
    }
    await this.repo.markExecuted(proposal.id, {
      txHash: done.txHash,
      chainKey: ctx.chainKey,
      slashed: done.slashed,
      compensated: done.compensated,
      burnt: done.burnt,
      executedAt: new Date(),
    });
    this.logger.info(
      {
        ...ctx.log,
        txHash: done.txHash,
        slashed: done.slashed.toString(),
        compensated: done.compensated.toString(),
        burnt: done.burnt.toString(),
        beneficiaries: slashBeneficiaries(proposal).length,
        gasUsed: done.gasUsed?.toString() ?? null,
        alreadyExecuted: done.alreadyExecuted,
      },
      `stake slashed: ${formatTokenAmount(done.compensated)} tokens to developers, ${formatTokenAmount(done.burnt)} burnt`,
    );
    return { id: proposal.id, state: 'EXECUTED', txHash: done.txHash };
  }

  private async cancel(ctx: StepContext): Promise<SlashOutcome> {
    const { proposal } = ctx;
    let done;
    try {
      done = await cancelSlash({
        staking: this.chain.staking!,
        signer: this.chain.slasher,
        journal: ctx.journal,
        evidenceHash: ctx.evidenceHash,
        confirmations: this.settlement.settings.confirmations,
        timeoutMs: ctx.timeoutMs,
      });
    } catch (err) {
      // Executed on chain before the cancel could land: record the execution.
      if (err instanceof RewardsError && err.code === 'SLASH_CLOSED') return this.execute(ctx);
      throw err;
    }
    if (done.state === 'EXPIRED') {
      await this.repo.markExpired(proposal.id);
      return { id: proposal.id, state: 'EXPIRED' };
    }
    await this.repo.markCancelled(proposal.id, done.txHash);
    this.logger.info(
      { ...ctx.log, txHash: done.txHash, onChain: done.state, reviewedBy: proposal.reviewedBy },
      'slash cancelled: the stake is unfrozen',
    );
    return { id: proposal.id, state: 'CANCELLED', txHash: done.txHash ?? undefined };
  }

  /** The chain says the proposal is cancelled or expired (someone else acted on it). */
  private async closedOnChain(ctx: StepContext): Promise<SlashOutcome> {
    const chain = await readSlashProposal(this.chain.staking!, ctx.evidenceHash);
    if (chain.state === 'EXPIRED') {
      await this.repo.markExpired(ctx.proposal.id);
      return { id: ctx.proposal.id, state: 'EXPIRED' };
    }
    await this.repo.markCancelled(ctx.proposal.id, null);
    this.logger.warn(
      { ...ctx.log, onChain: chain.state },
      'slash proposal was closed on chain by another key',
    );
    return { id: ctx.proposal.id, state: 'CANCELLED' };
  }
}

/** Failures a retry cannot fix: no stake, a bad amount, a step that would revert for good. */
function isPermanent(err: unknown): boolean {
  if (!(err instanceof RewardsError)) return false;
  if (
    err.code === 'NOTHING_TO_SLASH' ||
    err.code === 'INVALID_AMOUNT' ||
    err.code === 'EVIDENCE_CONFLICT' ||
    err.code === 'SLASH_NOT_PROPOSED'
  )
    return true;
  // A revert other than a missing role (a config problem an operator fixes) is final.
  return (
    err.code === 'TX_FAILED' && / would revert: /.test(err.message) && !err.message.includes('AccessControl')
  );
}
