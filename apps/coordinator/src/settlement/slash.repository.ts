import { Injectable } from '@nestjs/common';
import type { Evidence, Prisma, SlashProposal, SlashState } from '#prisma';
import type { SlashBeneficiary, SlashStep } from '@gpumesh/rewards';
import { PrismaService } from '../database/prisma.service.js';

/** The journal refused to record a transaction: the proposal left the state that step needs (an admin cancelled it). */
export class SlashNoLongerPendingError extends Error {
  constructor(
    readonly id: string,
    readonly state: string,
  ) {
    super(`slash proposal ${id} is ${state}, not pending`);
    this.name = 'SlashNoLongerPendingError';
  }
}

export interface SlashListQuery {
  states?: SlashState[];
  peerId?: string;
  limit: number;
}

/** The states in which each step may send its transaction (and the state it moves the row to). */
const STEP_STATES: Record<SlashStep, { from: SlashState[]; to?: SlashState }> = {
  propose: { from: ['PROPOSED'] },
  execute: { from: ['FROZEN', 'SENT'], to: 'SENT' },
  cancel: { from: ['CANCELLING'] },
};

/** Not final: the executor still has something to do or to confirm. */
const OPEN_STATES: SlashState[] = ['PROPOSED', 'FROZEN', 'SENT', 'CANCELLING'];

/** The columns of each step's transaction: its hash (and the execution's nonce, for the admin API). */
function stepColumns(
  step: SlashStep,
  tx: { txHash: string; nonce: number },
): Prisma.SlashProposalUpdateManyMutationInput {
  if (step === 'propose') return { proposeTxHash: tx.txHash };
  if (step === 'cancel') return { cancelTxHash: tx.txHash };
  return { txHash: tx.txHash, nonce: tx.nonce };
}

/** The beneficiaries stored on a proposal (`[{ account, weight }]`, weight a decimal string). */
export function slashBeneficiaries(row: Pick<SlashProposal, 'beneficiaries'>): SlashBeneficiary[] {
  const list = Array.isArray(row.beneficiaries) ? row.beneficiaries : [];
  return list.map((b) => {
    const { account, weight } = b as { account: string; weight: string };
    return { account, weight: BigInt(weight) };
  });
}

/** Slash proposals: what verification proposed, the executor's progress and the admins' reviews. */
@Injectable()
export class SlashRepository {
  constructor(private readonly prisma: PrismaService) {}

  private dueWhere(now: Date): Prisma.SlashProposalWhereInput {
    return {
      OR: [
        { state: { in: ['PROPOSED', 'SENT', 'CANCELLING'] } },
        { state: 'FROZEN', executeAfter: { lte: now } },
      ],
    };
  }

  /**
   * Proposals with a step to take: PROPOSED ones to freeze on chain, FROZEN ones whose review window
   * has passed, SENT ones to resume, CANCELLING ones to cancel on chain; oldest first.
   */
  due(now: Date, limit = 20): Promise<SlashProposal[]> {
    return this.prisma.slashProposal.findMany({
      where: this.dueWhere(now),
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      take: limit,
    });
  }

  /** Whether anything is due (the tick enqueues the executor only then). */
  async anyDue(now: Date): Promise<boolean> {
    const row = await this.prisma.slashProposal.findFirst({
      where: this.dueWhere(now),
      select: { id: true },
    });
    return row !== null;
  }

  get(id: string): Promise<SlashProposal | null> {
    return this.prisma.slashProposal.findUnique({ where: { id } });
  }

  list(query: SlashListQuery): Promise<SlashProposal[]> {
    return this.prisma.slashProposal.findMany({
      where: {
        ...(query.states && query.states.length > 0 ? { state: { in: query.states } } : {}),
        ...(query.peerId ? { peerId: query.peerId } : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: query.limit,
    });
  }

  /** An evidence bundle by its hash (0x + 64 lower-case hex), with the slash proposal citing it. */
  async evidenceByHash(hash: string): Promise<{ evidence: Evidence; slash: SlashProposal | null } | null> {
    const evidence = await this.prisma.evidence.findUnique({ where: { bundleHash: hash } });
    if (!evidence) return null;
    const slash = await this.prisma.slashProposal.findUnique({ where: { evidenceId: evidence.id } });
    return { evidence, slash };
  }

  /**
   * Notes that `step` is about to broadcast `tx` (its signed transaction is journaled in
   * `ChainTx`), in one statement and only while the row is in a state that step belongs to
   * (execute: FROZEN/SENT, moving it to SENT; propose: PROPOSED; cancel: CANCELLING). A proposal
   * cancelled meanwhile refuses it (SlashNoLongerPendingError) and the transaction is never
   * broadcast. A replacement (fee bump) notes its own hash; the mark* calls record the mined one.
   */
  async noteStepTx(
    id: string,
    chainKey: string,
    step: SlashStep,
    tx: { txHash: string; nonce: number },
  ): Promise<void> {
    const { from, to } = STEP_STATES[step];
    const { count } = await this.prisma.slashProposal.updateMany({
      where: { id, state: { in: from } },
      data: { ...stepColumns(step, tx), ...(to ? { state: to } : {}), chainKey, error: null },
    });
    if (count === 0) {
      const row = await this.prisma.slashProposal.findUnique({ where: { id }, select: { state: true } });
      throw new SlashNoLongerPendingError(id, row?.state ?? 'gone');
    }
  }

  /** PROPOSED → FROZEN: the chain froze `frozen` base units until `executableAt`. */
  async markFrozen(
    id: string,
    data: {
      frozen: bigint;
      chainExecutableAt: Date;
      chainKey: string;
      txHash: string | null;
    },
  ): Promise<boolean> {
    const { count } = await this.prisma.slashProposal.updateMany({
      where: { id, state: 'PROPOSED' },
      data: {
        state: 'FROZEN',
        amount: data.frozen,
        chainExecutableAt: data.chainExecutableAt,
        chainKey: data.chainKey,
        ...(data.txHash ? { proposeTxHash: data.txHash } : {}),
        frozenAt: new Date(),
        error: null,
      },
    });
    return count > 0;
  }

  /** EXECUTED with the transaction that slashed; `amount` becomes what was really slashed. */
  async markExecuted(
    id: string,
    data: {
      txHash: string;
      chainKey: string;
      slashed: bigint;
      compensated: bigint;
      burnt: bigint;
      executedAt: Date;
    },
  ): Promise<boolean> {
    const { count } = await this.prisma.slashProposal.updateMany({
      where: { id, state: { in: OPEN_STATES } },
      data: {
        state: 'EXECUTED',
        txHash: data.txHash,
        chainKey: data.chainKey,
        amount: data.slashed,
        compensated: data.compensated,
        burnt: data.burnt,
        executedAt: data.executedAt,
        error: null,
      },
    });
    return count > 0;
  }

  /** CANCELLED (the chain unfroze the stake, or nothing ever reached it). */
  async markCancelled(id: string, txHash: string | null): Promise<boolean> {
    const { count } = await this.prisma.slashProposal.updateMany({
      where: { id, state: { in: OPEN_STATES } },
      data: {
        state: 'CANCELLED',
        ...(txHash ? { cancelTxHash: txHash } : {}),
        cancelledAt: new Date(),
        error: null,
      },
    });
    return count > 0;
  }

  /** EXPIRED: left unexecuted past the contract's execution window; the chain unfroze the stake. */
  async markExpired(id: string): Promise<boolean> {
    const { count } = await this.prisma.slashProposal.updateMany({
      where: { id, state: { in: OPEN_STATES } },
      data: { state: 'EXPIRED', error: null },
    });
    return count > 0;
  }

  async markFailed(id: string, error: string): Promise<boolean> {
    const { count } = await this.prisma.slashProposal.updateMany({
      where: { id, state: { in: ['PROPOSED', 'FROZEN', 'SENT'] } },
      data: { state: 'FAILED', error: error.slice(0, 2000) },
    });
    return count > 0;
  }

  /** Records a transient problem on a proposal that stays open (retried next tick). */
  async noteError(id: string, error: string): Promise<void> {
    await this.prisma.slashProposal.updateMany({
      where: { id, state: { in: OPEN_STATES } },
      data: { error: error.slice(0, 2000) },
    });
  }

  /**
   * An admin's cancel, with the reviewer. A proposal that never reached the chain (PROPOSED, no
   * proposing transaction journaled) becomes CANCELLED at once; one that did, or may have (PROPOSED
   * with a journaled proposal, FROZEN), becomes CANCELLING and the executor cancels it on chain.
   * Null when the proposal is in neither state (or absent).
   */
  async cancel(id: string, reviewedBy: string): Promise<SlashProposal | null> {
    const offChain = await this.prisma.slashProposal.updateMany({
      where: { id, state: 'PROPOSED', proposeTxHash: null },
      data: { state: 'CANCELLED', reviewedBy, cancelledAt: new Date() },
    });
    if (offChain.count > 0) return this.get(id);
    const onChain = await this.prisma.slashProposal.updateMany({
      where: { id, state: { in: ['PROPOSED', 'FROZEN'] } },
      data: { state: 'CANCELLING', reviewedBy },
    });
    return onChain.count === 0 ? null : this.get(id);
  }
}
