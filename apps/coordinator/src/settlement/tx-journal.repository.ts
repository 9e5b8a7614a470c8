import { Injectable } from '@nestjs/common';
import type { JournaledTx, TxAttempt, TxJournal } from '@gpumesh/rewards';
import { PrismaService } from '../database/prisma.service.js';

/** The transaction journal (`ChainTx`): what `sendJournaled` signed, per chain and effect key. */
@Injectable()
export class TxJournalRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** The journal of one chain (`chainId:genesisHash:distributor`). */
  journal(chainKey: string): TxJournal {
    const prisma = this.prisma;
    return {
      async get(key: string): Promise<JournaledTx | null> {
        const row = await prisma.chainTx.findUnique({ where: { chainKey_key: { chainKey, key } } });
        if (!row) return null;
        return {
          key: row.key,
          from: row.from,
          nonce: row.nonce,
          to: row.to,
          data: row.data,
          attempts: row.attempts as unknown as TxAttempt[],
        };
      },
      async put(tx: JournaledTx): Promise<void> {
        const data = {
          from: tx.from,
          nonce: tx.nonce,
          to: tx.to,
          data: tx.data,
          attempts: tx.attempts.map((a) => ({ ...a })),
        };
        // Committed when this resolves (autocommit): the transaction is broadcast only afterwards.
        await prisma.chainTx.upsert({
          where: { chainKey_key: { chainKey, key: tx.key } },
          create: { chainKey, key: tx.key, ...data },
          update: data,
        });
      },
    };
  }
}
