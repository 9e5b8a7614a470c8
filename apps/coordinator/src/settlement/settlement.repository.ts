import { Injectable } from '@nestjs/common';
import type { Epoch } from '#prisma';
import {
  BLOCK_DONE,
  closeEpoch,
  cumulativeFromEpochFile,
  epochFileHash,
  parseEpochFile,
  serializeEpochFile,
  type CumulativeEntry,
  type DepositCursor,
  type EpochCredit,
  type EpochDebitInput,
  type EpochFile,
  type EscrowDeposit,
} from '#rewards';
import { PrismaService } from '../database/prisma.service.js';
import { LedgerRepository } from '../ledger/ledger.repository.js';
import { LedgerAccounts, type LedgerPosting } from '../ledger/ledger-accounts.js';
import { SettlementAccounts, peerOfEarnedAccount, receiptId } from './settlement-accounts.js';

const ADDRESS_RE = /^0x[0-9a-f]{40}$/;

export type CloseOutcome =
  | { closed: true; epoch: number; file: EpochFile; fileHash: string }
  | { closed: false; epoch: number; reason: 'not-open' | 'empty' };

/** Epochs, their files and escrow deposits. */
@Injectable()
export class SettlementRepository {
  constructor(
    private readonly prisma: PrismaService,
    private readonly ledger: LedgerRepository,
  ) {}

  openEpoch(): Promise<Epoch | null> {
    return this.prisma.epoch.findFirst({ where: { state: 'OPEN' }, orderBy: { id: 'asc' } });
  }

  /** Creates the open epoch when there is none: after the newest epoch, else `firstId`. */
  async ensureOpenEpoch(firstId: () => Promise<number>): Promise<Epoch> {
    const open = await this.openEpoch();
    if (open) return open;
    const last = await this.prisma.epoch.findFirst({ orderBy: { id: 'desc' } });
    const id = last ? last.id + 1 : await firstId();
    await this.prisma.epoch.createMany({ data: [{ id, state: 'OPEN' }], skipDuplicates: true });
    return (await this.openEpoch()) ?? (await this.prisma.epoch.findUniqueOrThrow({ where: { id } }));
  }

  epochsIn(state: Epoch['state'], take = 100): Promise<Epoch[]> {
    return this.prisma.epoch.findMany({ where: { state }, orderBy: { id: 'asc' }, take });
  }

  list(take: number): Promise<Epoch[]> {
    return this.prisma.epoch.findMany({ orderBy: { id: 'desc' }, take });
  }

  async fileJson(epoch: number): Promise<string | null> {
    return (await this.prisma.epochFile.findUnique({ where: { epochId: epoch } }))?.json ?? null;
  }

  /** The newest FINALIZED epoch (claimable and funded) and its file. */
  async latestFinalized(): Promise<{ epoch: Epoch; json: string } | null> {
    const epoch = await this.prisma.epoch.findFirst({
      where: { state: 'FINALIZED' },
      orderBy: { id: 'desc' },
    });
    if (!epoch) return null;
    const json = await this.fileJson(epoch.id);
    return json ? { epoch, json } : null;
  }

  /**
   * Closes epoch `epochId` when it is OPEN, in one database transaction:
   * 1. locks the epoch row (only one process closes it) and the LedgerEntry table against writers
   *    (it waits for in-flight ledger transactions), so every entry with an id ≤ the newest one is
   *    committed and every later entry gets a larger id: the epoch covers exactly
   *    (previous lastEntryId, lastEntryId];
   * 2. sums the settle credits of each `provider:<peerId>:earned` in that range per EVM address
   *    (the Provider's advertised address), with the receipts and the developers who paid;
   * 3. builds the epoch file from the previous file's cumulative amounts (`closeEpoch`);
   * 4. moves each peer's credits to `provider:<address>:settled:<epoch>` (one balanced ledger
   *    transaction), stores the file, marks the epoch CLOSED and opens the next one.
   * An epoch without earnings stays open.
   */
  async closeEpoch(epochId: number, now = new Date()): Promise<CloseOutcome> {
    return this.prisma.$transaction(
      async (tx) => {
        const rows = await tx.$queryRaw<{ state: string }[]>`
          SELECT state::text AS state FROM "Epoch" WHERE id = ${epochId} FOR UPDATE`;
        if (rows[0]?.state !== 'OPEN') return { closed: false, epoch: epochId, reason: 'not-open' } as const;
        await tx.$executeRawUnsafe('LOCK TABLE "LedgerEntry" IN SHARE ROW EXCLUSIVE MODE');
        const previous = await tx.epoch.findFirst({
          where: { id: { lt: epochId }, lastEntryId: { not: null } },
          orderBy: { id: 'desc' },
        });
        const from = previous?.lastEntryId ?? 0n;
        const top = await tx.$queryRaw<{ max: bigint | null }[]>`SELECT MAX(id) AS max FROM "LedgerEntry"`;
        const to = top[0]?.max ?? 0n;
        const entries = await tx.$queryRaw<
          {
            account: string;
            amount: bigint;
            jobId: string | null;
            developer: string | null;
            address: string | null;
          }[]
        >`
          SELECT e.account, e.amount, e."jobId"::text AS "jobId", a.address AS developer, p.address
          FROM "LedgerEntry" e
          LEFT JOIN "Job" j ON j.id = e."jobId"
          LEFT JOIN "Account" a ON a.id = j."accountId"
          LEFT JOIN "Provider" p ON p."peerId" = substring(e.account FROM 10 FOR length(e.account) - 16)
          WHERE e.id > ${from} AND e.id <= ${to} AND e.kind = 'settle' AND e.account LIKE 'provider:%:earned'
          ORDER BY e.id`;
        const byPeer = new Map<string, { address: string; amount: bigint }>();
        const credits = new Map<string, { amount: bigint; receipts: Map<string, bigint> }>();
        const debits = new Map<string, bigint>();
        for (const e of entries) {
          const peer = peerOfEarnedAccount(e.account);
          const address = e.address?.toLowerCase() ?? '';
          if (!peer || !ADDRESS_RE.test(address) || !e.jobId) {
            throw new Error(`epoch ${epochId}: ledger entry on ${e.account} has no provider address or job`);
          }
          const p = byPeer.get(peer) ?? { address, amount: 0n };
          p.amount += e.amount;
          byPeer.set(peer, p);
          const c = credits.get(address) ?? { amount: 0n, receipts: new Map<string, bigint>() };
          c.amount += e.amount;
          const id = receiptId(e.jobId, peer);
          c.receipts.set(id, (c.receipts.get(id) ?? 0n) + e.amount);
          credits.set(address, c);
          const developer = e.developer?.toLowerCase();
          if (!developer || !ADDRESS_RE.test(developer)) {
            throw new Error(`epoch ${epochId}: job ${e.jobId} has no developer address`);
          }
          debits.set(developer, (debits.get(developer) ?? 0n) + e.amount);
        }
        const epochCredits: EpochCredit[] = [...credits]
          .filter(([, c]) => c.amount > 0n)
          .map(([provider, c]) => ({ provider, amount: c.amount, receiptIds: [...c.receipts.keys()] }));
        const total = epochCredits.reduce((s, c) => s + c.amount, 0n);
        const debitTotal = [...debits.values()].reduce((s, d) => s + d, 0n);
        if (total === 0n || total !== debitTotal || [...byPeer.values()].some((p) => p.amount <= 0n)) {
          // Nothing to pay (or only corrections): the epoch stays open and covers them later.
          return { closed: false, epoch: epochId, reason: 'empty' } as const;
        }
        let previousCumulative = new Map<string, CumulativeEntry>();
        if (previous) {
          const prevFile = await tx.epochFile.findUnique({ where: { epochId: previous.id } });
          if (!prevFile) throw new Error(`epoch ${previous.id} is closed but has no file`);
          previousCumulative = cumulativeFromEpochFile(parseEpochFile(prevFile.json));
        }
        const epochDebits: EpochDebitInput[] = [...debits].map(([account, amount]) => ({ account, amount }));
        const file = closeEpoch(previousCumulative, epochCredits, { epoch: epochId, debits: epochDebits });
        const fileHash = epochFileHash(file);
        const postings: LedgerPosting[] = [];
        for (const [peer, p] of byPeer)
          postings.push({ account: LedgerAccounts.providerEarned(peer), amount: -p.amount });
        for (const c of epochCredits) {
          postings.push({ account: SettlementAccounts.settled(c.provider, epochId), amount: c.amount });
        }
        await this.ledger.post(tx, 'epoch', postings);
        await tx.epochFile.create({ data: { epochId, json: serializeEpochFile(file) } });
        await tx.epoch.update({
          where: { id: epochId },
          data: { state: 'CLOSED', closedAt: now, root: file.root, fileHash, total, lastEntryId: to },
        });
        await tx.epoch.createMany({
          data: [{ id: epochId + 1, state: 'OPEN', startedAt: now }],
          skipDuplicates: true,
        });
        return { closed: true, epoch: epochId, file, fileHash } as const;
      },
      { timeout: 60_000, maxWait: 10_000 },
    );
  }

  async markPosted(epoch: number, txHash: string | null, chainKey: string): Promise<void> {
    await this.prisma.epoch.updateMany({
      where: { id: epoch, state: 'CLOSED' },
      data: { state: 'POSTED', txHash, chainKey, postedAt: new Date() },
    });
  }

  async markFinalized(epoch: number, fundingTxHash: string | null): Promise<void> {
    await this.prisma.epoch.updateMany({
      where: { id: epoch, state: 'POSTED' },
      data: { state: 'FINALIZED', fundingTxHash, finalizedAt: new Date() },
    });
  }

  /**
   * Epochs posted on another chain than `chainKey` (a fresh dev anvil) go back to CLOSED, to be
   * posted again in order on this one. Returns how many.
   */
  async repostOnNewChain(chainKey: string): Promise<number> {
    const { count } = await this.prisma.epoch.updateMany({
      where: { state: { in: ['POSTED', 'FINALIZED'] }, NOT: { chainKey } },
      data: {
        state: 'CLOSED',
        txHash: null,
        chainKey: null,
        postedAt: null,
        finalizedAt: null,
        fundingTxHash: null,
      },
    });
    return count;
  }

  /** Epochs posted on another chain than `chainKey`. */
  countPostedElsewhere(chainKey: string): Promise<number> {
    return this.prisma.epoch.count({ where: { state: { in: ['POSTED', 'FINALIZED'] }, NOT: { chainKey } } });
  }

  // ---------------------------------------------------------------- deposits

  async depositCursor(chainKey: string): Promise<DepositCursor | null> {
    const row = await this.prisma.depositCursor.findUnique({ where: { chainKey } });
    if (!row) return null;
    return {
      blockNumber: row.blockNumber,
      logIndex: row.logIndex >= BigInt(BLOCK_DONE) ? BLOCK_DONE : Number(row.logIndex),
      blockHash: row.blockHash ?? undefined,
    };
  }

  /** Moves the cursor forward (never back: several watchers may run). */
  async saveCursor(chainKey: string, cursor: DepositCursor): Promise<void> {
    await this.prisma.$executeRaw`
      INSERT INTO "DepositCursor" ("chainKey", "blockNumber", "logIndex", "blockHash", "updatedAt")
      VALUES (${chainKey}, ${cursor.blockNumber}, ${BigInt(cursor.logIndex)}, ${cursor.blockHash ?? null}, now())
      ON CONFLICT ("chainKey") DO UPDATE SET "blockNumber" = EXCLUDED."blockNumber",
        "logIndex" = EXCLUDED."logIndex", "blockHash" = EXCLUDED."blockHash", "updatedAt" = now()
      WHERE ("DepositCursor"."blockNumber", "DepositCursor"."logIndex") < (EXCLUDED."blockNumber", EXCLUDED."logIndex")`;
  }

  /**
   * Credits a deposit to the depositing address's account (created when absent) and moves the
   * cursor, in one database transaction. The unique (chain, tx hash, log index) makes it exactly
   * once even when two watchers or a restarted one deliver it again. Returns false when it was
   * credited before.
   */
  async creditDeposit(chainKey: string, deposit: EscrowDeposit): Promise<boolean> {
    return this.prisma.$transaction(async (tx) => {
      const address = deposit.account.toLowerCase();
      const account = await tx.account.upsert({ where: { address }, create: { address }, update: {} });
      const inserted = await tx.$queryRaw<{ id: bigint }[]>`
        INSERT INTO "ChainDeposit" ("chainKey", "txHash", "logIndex", "blockNumber", address, "accountId", amount, "ledgerTxId")
        VALUES (${chainKey}, ${deposit.txHash}, ${deposit.logIndex}, ${deposit.blockNumber}, ${address},
                ${account.id}::uuid, ${deposit.amount}, gen_random_uuid())
        ON CONFLICT ("chainKey", "txHash", "logIndex") DO NOTHING
        RETURNING id`;
      if (inserted.length === 0) return false;
      const ledgerTxId = await this.ledger.post(tx, 'deposit', [
        { account: SettlementAccounts.escrow, amount: -deposit.amount },
        { account: LedgerAccounts.available(account.id), amount: deposit.amount },
      ]);
      await tx.chainDeposit.update({ where: { id: inserted[0].id }, data: { ledgerTxId } });
      const c = deposit.cursor;
      await tx.$executeRaw`
        INSERT INTO "DepositCursor" ("chainKey", "blockNumber", "logIndex", "blockHash", "updatedAt")
        VALUES (${chainKey}, ${c.blockNumber}, ${BigInt(c.logIndex)}, ${c.blockHash ?? null}, now())
        ON CONFLICT ("chainKey") DO UPDATE SET "blockNumber" = EXCLUDED."blockNumber",
          "logIndex" = EXCLUDED."logIndex", "blockHash" = EXCLUDED."blockHash", "updatedAt" = now()
        WHERE ("DepositCursor"."blockNumber", "DepositCursor"."logIndex") < (EXCLUDED."blockNumber", EXCLUDED."logIndex")`;
      return true;
    });
  }

  depositsOf(accountId: string): Promise<{ txHash: string; amount: bigint }[]> {
    return this.prisma.chainDeposit.findMany({
      where: { accountId },
      select: { txHash: true, amount: true },
      orderBy: { id: 'asc' },
    });
  }
}
