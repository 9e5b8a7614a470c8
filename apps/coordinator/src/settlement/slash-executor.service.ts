import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { SlashProposal } from '#prisma';
import { RewardsError, SLASHER_ROLE, executeSlash, formatTokenAmount } from '#rewards';
import { LOGGER } from '../logging/logger.js';
import { ChainClient } from './chain-client.js';
import { SettlementService, describeSettlementError } from './settlement.service.js';
import { SlashNoLongerPendingError, SlashRepository } from './slash.repository.js';

export interface SlashOutcome {
  id: string;
  state: 'EXECUTED' | 'FAILED' | 'PENDING' | 'SKIPPED';
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

/**
 * Worker side of slashing: each tick takes PROPOSED proposals whose review window (`executeAfter`)
 * has passed, and SENT ones left by a crash, and executes them on ProviderStaking with `executeSlash`:
 * the stake is read and the amount capped at it, the signed `slash(operator, amount, evidenceHash)`
 * is written to the row (state SENT) before it is broadcast, and after a restart that same
 * transaction is re-broadcast, never a second one (the contract also slashes once per evidence hash).
 * Slashed tokens go to ProviderStaking's treasury (an address its admin sets; the event names it).
 */
@Injectable()
export class SlashExecutorService {
  private warnedNoStaking = false;

  constructor(
    private readonly repo: SlashRepository,
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
      outcomes.push(await this.execute(proposal, options));
    }
    return outcomes;
  }

  async execute(proposal: SlashProposal, options: ExecuteOptions = {}): Promise<SlashOutcome> {
    const staking = this.chain.staking;
    if (!staking) return { id: proposal.id, state: 'PENDING', detail: 'no staking contract' };
    const log = { slash: proposal.id, peerId: proposal.peerId, operator: proposal.operatorAddress };
    const evidenceHash = evidenceHashHex(proposal.evidenceHash);
    if (!evidenceHash) {
      const error = `evidence hash ${proposal.evidenceHash} is not 32 bytes of hex`;
      await this.repo.markFailed(proposal.id, error);
      return { id: proposal.id, state: 'FAILED', detail: error };
    }
    const chainKey = await this.chain.chainKey();
    try {
      const done = await executeSlash({
        staking,
        signer: this.chain.slasher,
        journal: this.repo.journal(proposal.id, chainKey),
        operator: proposal.operatorAddress,
        amount: proposal.amount,
        evidenceHash,
        confirmations: this.settlement.settings.confirmations,
        timeoutMs: options.timeoutMs ?? 60_000,
      });
      await this.repo.markExecuted(proposal.id, {
        txHash: done.txHash,
        chainKey,
        slashed: done.slashed,
        executedAt: new Date(),
      });
      this.logger.info(
        {
          ...log,
          txHash: done.txHash,
          requested: proposal.amount.toString(),
          slashed: done.slashed.toString(),
          treasury: done.treasury,
          gasUsed: done.gasUsed?.toString() ?? null,
          alreadyExecuted: done.alreadyExecuted,
        },
        `stake slashed: ${formatTokenAmount(done.slashed)} tokens to the treasury`,
      );
      return { id: proposal.id, state: 'EXECUTED', txHash: done.txHash };
    } catch (err) {
      if (err instanceof SlashNoLongerPendingError) {
        this.logger.info({ ...log, state: err.state }, 'slash proposal left the queue before sending');
        return { id: proposal.id, state: 'SKIPPED', detail: err.message };
      }
      const message = describeSettlementError(err);
      if (isPermanent(err)) {
        await this.repo.markFailed(proposal.id, message);
        this.logger.warn({ ...log, err: message }, 'slash failed');
        return { id: proposal.id, state: 'FAILED', detail: message };
      }
      await this.repo.noteError(proposal.id, message);
      this.logger.warn({ ...log, err: message }, 'slash not executed yet (retried next tick)');
      return { id: proposal.id, state: 'PENDING', detail: message };
    }
  }
}

/** Failures a retry cannot fix: no stake, a bad amount, a slash that would revert for good. */
function isPermanent(err: unknown): boolean {
  if (!(err instanceof RewardsError)) return false;
  if (err.code === 'NOTHING_TO_SLASH' || err.code === 'INVALID_AMOUNT') return true;
  // A revert other than a missing role (a config problem an operator fixes) is final.
  return (
    err.code === 'TX_FAILED' &&
    err.message.startsWith('slash would revert') &&
    !err.message.includes('AccessControl')
  );
}
