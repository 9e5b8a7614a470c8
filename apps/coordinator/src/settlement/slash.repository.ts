import { Injectable } from '@nestjs/common';
import type { SlashProposal, SlashState } from '#prisma';
import type { SlashJournal, SlashRecord } from '#rewards';
import { PrismaService } from '../database/prisma.service.js';

/** The journal refused to record a transaction: the proposal left PROPOSED/SENT (an admin cancelled it). */
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

/** Slash proposals: what verification proposed, the executor's journal and the admins' reviews. */
@Injectable()
export class SlashRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** PROPOSED proposals whose review window has passed, and SENT ones to resume; oldest first. */
  due(now: Date, limit = 20): Promise<SlashProposal[]> {
    return this.prisma.slashProposal.findMany({
      where: { OR: [{ state: 'PROPOSED', executeAfter: { lte: now } }, { state: 'SENT' }] },
      orderBy: [{ executeAfter: 'asc' }, { id: 'asc' }],
      take: limit,
    });
  }

  /** Whether anything is due (the tick enqueues the executor only then). */
  async anyDue(now: Date): Promise<boolean> {
    const row = await this.prisma.slashProposal.findFirst({
      where: { OR: [{ state: 'PROPOSED', executeAfter: { lte: now } }, { state: 'SENT' }] },
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

  /**
   * The transaction journal of one proposal on one chain, kept on its row. `put` commits the signed
   * transaction and moves the row to SENT in one statement, only while it is PROPOSED or SENT: a
   * proposal cancelled meanwhile refuses it, and the transaction is never broadcast.
   */
  journal(id: string, chainKey: string): SlashJournal {
    const prisma = this.prisma;
    return {
      async get(): Promise<SlashRecord | null> {
        const row = await prisma.slashProposal.findUnique({ where: { id } });
        if (!row || row.chainKey !== chainKey || !row.txHash || !row.rawTransaction || row.nonce === null)
          return null;
        return { txHash: row.txHash, rawTransaction: row.rawTransaction, nonce: row.nonce };
      },
      async put(record: SlashRecord): Promise<void> {
        const { count } = await prisma.slashProposal.updateMany({
          where: { id, state: { in: ['PROPOSED', 'SENT'] } },
          data: {
            state: 'SENT',
            chainKey,
            txHash: record.txHash,
            rawTransaction: record.rawTransaction,
            nonce: record.nonce,
            error: null,
          },
        });
        if (count === 0) {
          const row = await prisma.slashProposal.findUnique({ where: { id }, select: { state: true } });
          throw new SlashNoLongerPendingError(id, row?.state ?? 'gone');
        }
      },
    };
  }

  /** EXECUTED with the transaction that slashed; `amount` becomes what was really slashed. */
  async markExecuted(
    id: string,
    data: { txHash: string; chainKey: string; slashed: bigint; executedAt: Date },
  ): Promise<boolean> {
    const { count } = await this.prisma.slashProposal.updateMany({
      where: { id, state: { in: ['PROPOSED', 'SENT'] } },
      data: {
        state: 'EXECUTED',
        txHash: data.txHash,
        chainKey: data.chainKey,
        amount: data.slashed,
        executedAt: data.executedAt,
        error: null,
      },
    });
    return count > 0;
  }

  async markFailed(id: string, error: string): Promise<boolean> {
    const { count } = await this.prisma.slashProposal.updateMany({
      where: { id, state: { in: ['PROPOSED', 'SENT'] } },
      data: { state: 'FAILED', error: error.slice(0, 2000) },
    });
    return count > 0;
  }

  /** Records a transient problem on a proposal that stays pending (retried next tick). */
  async noteError(id: string, error: string): Promise<void> {
    await this.prisma.slashProposal.updateMany({
      where: { id, state: { in: ['PROPOSED', 'SENT'] } },
      data: { error: error.slice(0, 2000) },
    });
  }

  /** PROPOSED → CANCELLED with the reviewer; null when the proposal is not PROPOSED (or absent). */
  async cancel(id: string, reviewedBy: string): Promise<SlashProposal | null> {
    const { count } = await this.prisma.slashProposal.updateMany({
      where: { id, state: 'PROPOSED' },
      data: { state: 'CANCELLED', reviewedBy },
    });
    return count === 0 ? null : this.get(id);
  }
}
