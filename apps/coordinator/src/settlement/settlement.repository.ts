import { Injectable } from '@nestjs/common';
import type { Epoch, Prisma } from '#prisma';
import {
  BLOCK_DONE,
  closeEpoch,
  cumulativeFromEpochFile,
  keccak256Hex,
  parseEpochFile,
  serializeEpochFile,
  type CumulativeEntry,
  type EscrowEventCursor,
  type EpochCredit,
  type EpochDebitInput,
  type EpochFile,
  type EscrowEvent,
  type EpochDomain,
  type SpendingCapDomain,
  feeReceiptId,
  receiptId,
} from '@gpumesh/rewards';
import { LOWER_CASE_ADDRESS_PATTERN } from '@gpumesh/protocol';
import { PrismaService } from '../database/prisma.service.js';
import { prismaRunner } from '../database/sql.service.js';
import { recordOnChainSpendingCapIn } from '../accounts/spending-caps.repository.js';
import { LedgerRepository } from '../ledger/ledger.repository.js';
import { LedgerAccounts, type AccountKind } from '../ledger/accounts.js';
import { depositPostings, epochSweepPostings, withdrawalPostings } from '../ledger/postings.js';

/** What applying an escrow event did. */
export interface EscrowEventOutcome {
  /** False when the event had been applied before. */
  applied: boolean;
  accountId: string;
  /** Base units a withdrawal took beyond the account's available balance (booked as a shortfall). */
  shortfall: bigint;
}

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

  /** Epochs in `state` (or any of several), oldest first. */
  epochsIn(state: Epoch['state'] | Epoch['state'][], take = 100): Promise<Epoch[]> {
    const states = Array.isArray(state) ? state : [state];
    return this.prisma.epoch.findMany({ where: { state: { in: states } }, orderBy: { id: 'asc' }, take });
  }

  list(take: number): Promise<Epoch[]> {
    return this.prisma.epoch.findMany({ orderBy: { id: 'desc' }, take });
  }

  async fileJson(epoch: number): Promise<string | null> {
    return (await this.prisma.epochFile.findUnique({ where: { epochId: epoch } }))?.json ?? null;
  }

  /**
   * The newest epochs whose root is on chain (POSTED, FUNDING, FINALIZED) and that have a file,
   * newest first: what the coordinator announces and serves over p2p.
   */
  postedEpochs(take: number): Promise<Epoch[]> {
    return this.prisma.epoch.findMany({
      where: {
        state: { in: ['POSTED', 'FUNDING', 'FINALIZED'] },
        root: { not: null },
        fileHash: { not: null },
      },
      orderBy: { id: 'desc' },
      take,
    });
  }

  /** The file of a posted epoch whose file hash is `fileHash`, or null. */
  async postedFileByHash(fileHash: string): Promise<string | null> {
    const epoch = await this.prisma.epoch.findFirst({
      where: { fileHash, state: { in: ['POSTED', 'FUNDING', 'FINALIZED'] } },
      orderBy: { id: 'desc' },
    });
    return epoch ? this.fileJson(epoch.id) : null;
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
   * 2. sums what was charged in that range (epochCharges): each provider's settle credits per EVM
   *    address, the platform fee as a credit of `feeRecipient`, and per developer the sum of both,
   *    which is what its escrow is debited: everything a developer was charged is debited on chain;
   * 3. builds the epoch file from the previous file's cumulative amounts (`closeEpoch`);
   * 4. moves each peer's credits and the fees to `provider:<address>:settled:<epoch>` (one balanced
   *    ledger transaction), stores the file, marks the epoch CLOSED and opens the next one.
   * An epoch without earnings stays open.
   */
  async closeEpoch(
    epochId: number,
    feeRecipient: string,
    domain: EpochDomain,
    now = new Date(),
  ): Promise<CloseOutcome> {
    return this.prisma.$transaction(
      async (tx) => {
        const rows = await tx.$queryRaw<{ state: string }[]>`
          SELECT state::text AS state FROM "Epoch" WHERE id = ${epochId} FOR UPDATE`;
        if (rows[0]?.state !== 'OPEN') return { closed: false, epoch: epochId, reason: 'not-open' } as const;
        await tx.$executeRawUnsafe('LOCK TABLE "LedgerEntry" IN SHARE ROW EXCLUSIVE MODE');
        const previous = await previousClosed(tx, epochId);
        const from = previous?.lastEntryId ?? 0n;
        const top = await tx.$queryRaw<{ max: bigint | null }[]>`SELECT MAX(id) AS max FROM "LedgerEntry"`;
        const to = top[0]?.max ?? 0n;
        const charges = await epochCharges(tx, epochId, from, to, feeRecipient);
        if (!charges) return { closed: false, epoch: epochId, reason: 'empty' } as const;
        const file = await buildFile(tx, epochId, previous, charges, domain);
        // Encoded once: the stored bytes are the hashed bytes (and a large file costs seconds to encode).
        const json = serializeEpochFile(file);
        const fileHash = keccak256Hex(json);
        const sweep = epochSweepPostings(epochId, charges, charges.payees);
        await this.ledger.post(tx, sweep.kind, sweep.postings);
        await tx.epochFile.create({ data: { epochId, json } });
        await tx.epoch.update({
          where: { id: epochId },
          data: {
            state: 'CLOSED',
            closedAt: now,
            root: file.root,
            fileHash,
            total: BigInt(file.total),
            lastEntryId: to,
          },
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

  /**
   * Rebuilds the files of closed epochs `fromEpoch` onwards from the ledger (the entries each one
   * covers, as closed) after a guardian vetoed the root of `fromEpoch`: a tampered or corrupted file
   * or root is replaced by what the ledger says; each goes back to CLOSED to be posted again. Returns
   * each epoch's old and new root (equal roots mean the ledger itself says what was vetoed).
   */
  async rebuildFrom(
    fromEpoch: number,
    feeRecipient: string,
    domain: EpochDomain,
  ): Promise<{ epoch: number; oldRoot: string | null; newRoot: string }[]> {
    return this.prisma.$transaction(
      async (tx) => {
        const epochs = await tx.epoch.findMany({
          where: { id: { gte: fromEpoch }, state: { in: ['CLOSED', 'POSTED', 'FUNDING'] } },
          orderBy: { id: 'asc' },
        });
        const rebuilt: { epoch: number; oldRoot: string | null; newRoot: string }[] = [];
        for (const epoch of epochs) {
          const previous = await previousClosed(tx, epoch.id);
          const charges = await epochCharges(
            tx,
            epoch.id,
            previous?.lastEntryId ?? 0n,
            epoch.lastEntryId ?? 0n,
            feeRecipient,
          );
          if (!charges) throw new Error(`epoch ${epoch.id}: the ledger holds nothing for it to rebuild`);
          const file = await buildFile(tx, epoch.id, previous, charges, domain);
          const json = serializeEpochFile(file);
          await tx.epochFile.update({ where: { epochId: epoch.id }, data: { json } });
          await tx.epoch.update({
            where: { id: epoch.id },
            data: {
              state: 'CLOSED',
              root: file.root,
              fileHash: keccak256Hex(json),
              total: BigInt(file.total),
              txHash: null,
              postedAt: null,
              funded: null,
              ...(epoch.id === fromEpoch ? { vetoes: { increment: 1 } } : {}),
            },
          });
          rebuilt.push({ epoch: epoch.id, oldRoot: epoch.root, newRoot: file.root });
        }
        return rebuilt;
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

  /** Epochs by state, base units FUNDING epochs still lack, and how many wait for an operator. */
  async settlementHealth(): Promise<{ byState: Record<string, number>; unfunded: bigint; blocked: number }> {
    const rows = await this.prisma.$queryRaw<
      { state: string; n: number; unfunded: bigint; blocked: number }[]
    >`
      SELECT state::text AS state, count(*)::int AS n,
             COALESCE(SUM(CASE WHEN state = 'FUNDING' THEN total - COALESCE(funded, 0) ELSE 0 END), 0)::bigint AS unfunded,
             count(*) FILTER (WHERE "blockedReason" IS NOT NULL)::int AS blocked
        FROM "Epoch" GROUP BY state`;
    const byState: Record<string, number> = { OPEN: 0, CLOSED: 0, POSTED: 0, FUNDING: 0, FINALIZED: 0 };
    let unfunded = 0n;
    let blocked = 0;
    for (const r of rows) {
      byState[r.state] = r.n;
      unfunded += r.unfunded;
      blocked += r.blocked;
    }
    return { byState, unfunded, blocked };
  }

  /** A POSTED epoch past its challenge window: the escrow starts funding it. */
  async markFunding(epoch: number): Promise<void> {
    await this.prisma.epoch.updateMany({ where: { id: epoch, state: 'POSTED' }, data: { state: 'FUNDING' } });
  }

  /** The distributor holds the epoch's whole total: claimable. */
  async markFinalized(epoch: number, fundingTxHash: string | null, funded: bigint): Promise<void> {
    await this.prisma.epoch.updateMany({
      where: { id: epoch, state: { in: ['POSTED', 'FUNDING'] } },
      data: { state: 'FINALIZED', fundingTxHash, funded, blockedReason: null, finalizedAt: new Date() },
    });
  }

  /** The escrow could not cover the whole epoch: what it holds so far and why it waits. */
  async markFundingShort(
    epoch: number,
    funded: bigint,
    reason: string,
    fundingTxHash: string | null,
  ): Promise<void> {
    await this.prisma.epoch.updateMany({
      where: { id: epoch, state: 'FUNDING' },
      data: { funded, blockedReason: reason, fundingTxHash },
    });
  }

  /** Why an epoch cannot go on by itself (null clears it). */
  async setBlockedReason(epoch: number, reason: string | null): Promise<void> {
    await this.prisma.epoch.update({ where: { id: epoch }, data: { blockedReason: reason } });
  }

  /**
   * `epoch` and every later POSTED/FUNDING epoch go back to CLOSED (their roots left the chain with a
   * reorg): they are posted again, in order. Returns their ids.
   */
  async backToClosed(epoch: number): Promise<number[]> {
    return this.prisma.$transaction(async (tx) => {
      const rows = await tx.epoch.findMany({
        where: { id: { gte: epoch }, state: { in: ['POSTED', 'FUNDING'] } },
        select: { id: true },
        orderBy: { id: 'asc' },
      });
      await tx.epoch.updateMany({
        where: { id: { in: rows.map((r) => r.id) } },
        data: { state: 'CLOSED', txHash: null, postedAt: null, funded: null },
      });
      return rows.map((r) => r.id);
    });
  }

  /** Epochs posted on another chain than `chainKey`. */
  countPostedElsewhere(chainKey: string): Promise<number> {
    return this.prisma.epoch.count({ where: { state: { in: ['POSTED', 'FINALIZED'] }, NOT: { chainKey } } });
  }

  // ---------------------------------------------------------------- deposits

  async depositCursor(chainKey: string): Promise<EscrowEventCursor | null> {
    const row = await this.prisma.depositCursor.findUnique({ where: { chainKey } });
    if (!row) return null;
    return {
      blockNumber: row.blockNumber,
      logIndex: row.logIndex >= BigInt(BLOCK_DONE) ? BLOCK_DONE : Number(row.logIndex),
      blockHash: row.blockHash ?? undefined,
    };
  }

  /** Moves the cursor forward (never back: several watchers may run). */
  async saveCursor(chainKey: string, cursor: EscrowEventCursor): Promise<void> {
    await saveCursorIn(this.prisma, chainKey, cursor);
  }

  /**
   * Applies one escrow event to the account of its address (created when absent) and moves the
   * cursor, in one database transaction. The unique (chain, tx hash, log index) makes it take effect
   * exactly once even when two watchers or a restarted one deliver it again. Returns false when it
   * was applied before.
   * - a deposit credits the account's available balance;
   * - an unlock request marks the account unlocking: it may not start new spending (see
   *   `unlockOf`); a cancel clears that;
   * - a withdrawal takes exactly what left the escrow off the available balance (and clears the
   *   unlock, which the escrow spends). Should more leave than the account has available (the
   *   coordinator fell behind the unlock delay), the rest is booked to `system:escrow-shortfall`: an
   *   epoch that debits it will be short on chain until an operator funds it.
   * - a spending cap authorized on chain is recorded as the account's cap for `capDomain`'s escrow
   *   (SpendingCapsRepository), when higher than the one stored.
   */
  async applyEscrowEvent(
    chainKey: string,
    event: EscrowEvent,
    capDomain: SpendingCapDomain,
  ): Promise<EscrowEventOutcome> {
    return this.prisma.$transaction(async (tx) => {
      const address = event.account.toLowerCase();
      const account = await tx.account.upsert({ where: { address }, create: { address }, update: {} });
      const amount = event.kind === 'deposit' || event.kind === 'withdrawal' ? event.amount : null;
      const unlockAt = event.kind === 'unlock-requested' ? new Date(event.unlockAt * 1000) : null;
      const inserted = await tx.$queryRaw<{ id: bigint }[]>`
        INSERT INTO "EscrowEvent" ("chainKey", "txHash", "logIndex", "blockNumber", kind, address, "accountId", amount, "unlockAt")
        VALUES (${chainKey}, ${event.txHash}, ${event.logIndex}, ${event.blockNumber}, ${event.kind}, ${address},
                ${account.id}::uuid, ${amount}, ${unlockAt})
        ON CONFLICT ("chainKey", "txHash", "logIndex") DO NOTHING
        RETURNING id`;
      if (inserted.length === 0) return { applied: false, accountId: account.id, shortfall: 0n };
      let shortfall = 0n;
      let ledgerTxId: string | null = null;
      switch (event.kind) {
        case 'deposit': {
          const deposit = depositPostings(account.id, event.amount);
          ledgerTxId = await this.ledger.post(tx, deposit.kind, deposit.postings);
          break;
        }
        case 'withdrawal': {
          const available = LedgerAccounts.available(account.id);
          const rows = await tx.$queryRaw<{ balance: bigint }[]>`
            SELECT balance FROM "LedgerBalance" WHERE account = ${available} FOR UPDATE`;
          const withdrawal = withdrawalPostings(account.id, event.amount, rows[0]?.balance ?? 0n);
          shortfall = withdrawal.shortfall;
          ledgerTxId = await this.ledger.post(tx, withdrawal.kind, withdrawal.postings);
          await tx.escrowUnlock.deleteMany({ where: { accountId: account.id } });
          break;
        }
        case 'unlock-requested':
          // Under the account's balance-row lock, like submissions (JobSubmissionRepository): a
          // submission commits before this or sees the unlock.
          await tx.$queryRaw`SELECT 1 FROM "LedgerBalance" WHERE account = ${LedgerAccounts.available(account.id)} FOR UPDATE`;
          await tx.escrowUnlock.upsert({
            where: { accountId: account.id },
            create: { accountId: account.id, address, unlockAt: unlockAt!, txHash: event.txHash },
            update: { unlockAt: unlockAt!, txHash: event.txHash, requestedAt: new Date() },
          });
          break;
        case 'unlock-cancelled':
          await tx.escrowUnlock.deleteMany({ where: { accountId: account.id } });
          break;
        case 'spending-cap':
          await recordOnChainSpendingCapIn(
            prismaRunner(tx),
            { accountId: account.id, address, cap: event.cap },
            capDomain,
          );
          break;
      }
      if (ledgerTxId) await tx.escrowEvent.update({ where: { id: inserted[0].id }, data: { ledgerTxId } });
      await saveCursorIn(tx, chainKey, event.cursor);
      return { applied: true, accountId: account.id, shortfall };
    });
  }
}

/** Moves the escrow cursor of `chainKey` forward (never back: several watchers may run). */
async function saveCursorIn(
  db: Pick<PrismaService, '$executeRaw'>,
  chainKey: string,
  c: EscrowEventCursor,
): Promise<void> {
  await db.$executeRaw`
    INSERT INTO "DepositCursor" ("chainKey", "blockNumber", "logIndex", "blockHash", "updatedAt")
    VALUES (${chainKey}, ${c.blockNumber}, ${BigInt(c.logIndex)}, ${c.blockHash ?? null}, now())
    ON CONFLICT ("chainKey") DO UPDATE SET "blockNumber" = EXCLUDED."blockNumber",
      "logIndex" = EXCLUDED."logIndex", "blockHash" = EXCLUDED."blockHash", "updatedAt" = now()
    WHERE ("DepositCursor"."blockNumber", "DepositCursor"."logIndex") < (EXCLUDED."blockNumber", EXCLUDED."logIndex")`;
}

/** What an epoch charged, summed from its ledger range. */
interface EpochCharges {
  /** Each provider peer's settle credits (swept to its address's settled account at close). */
  byPeer: Map<string, { address: string; amount: bigint }>;
  /** Credits per payee address (providers and the fee recipient), with the receipts behind them. */
  credits: EpochCredit[];
  /** What each payee address is credited in all (the sum of its receipts). */
  payees: { provider: string; amount: bigint }[];
  /** Per developer address: what its escrow is debited (its providers' shares and fees). */
  debits: EpochDebitInput[];
  /** The platform fee in the range (credited to the fee recipient). */
  fees: bigint;
}

/** The newest epoch before `epochId` that was closed (its file and last entry). */
function previousClosed(tx: Prisma.TransactionClient, epochId: number): Promise<Epoch | null> {
  return tx.epoch.findFirst({
    where: { id: { lt: epochId }, lastEntryId: { not: null } },
    orderBy: { id: 'desc' },
  });
}

/**
 * Sums the charges of ledger entries (from, to]: settle credits of `earned` accounts (per the payee
 * peer's advertised address) and of `system:fees` (to `feeRecipient`), each attributed to the
 * developer of its job. Null when the range pays nothing, or when credits and debits disagree (only
 * corrections in it): the epoch then stays open and covers them later.
 */
async function epochCharges(
  tx: Prisma.TransactionClient,
  epochId: number,
  from: bigint,
  to: bigint,
  feeRecipient: string,
): Promise<EpochCharges | null> {
  const earned: AccountKind = 'earned';
  const fees: AccountKind = 'fees';
  const entries = await tx.$queryRaw<
    {
      account: string;
      accountKind: string;
      payeePeerId: string | null;
      amount: bigint;
      jobId: string | null;
      developer: string | null;
      address: string | null;
    }[]
  >`
    SELECT e.account, e."accountKind", e."payeePeerId", e.amount, e."jobId"::text AS "jobId",
           a.address AS developer, p.address
    FROM "LedgerEntry" e
    LEFT JOIN "Job" j ON j.id = e."jobId"
    LEFT JOIN "Account" a ON a.id = j."accountId"
    LEFT JOIN "Provider" p ON p."peerId" = e."payeePeerId" AND e."accountKind" = ${earned}
    WHERE e.id > ${from} AND e.id <= ${to} AND e.kind = 'settle'
      AND e."accountKind" IN (${earned}, ${fees})
    ORDER BY e.id`;
  const recipient = feeRecipient.toLowerCase();
  if (!LOWER_CASE_ADDRESS_PATTERN.test(recipient))
    throw new Error(`fee recipient ${feeRecipient} is not an address`);
  const byPeer = new Map<string, { address: string; amount: bigint }>();
  const credits = new Map<string, { amount: bigint; receipts: Map<string, bigint> }>();
  const debits = new Map<string, bigint>();
  let feeTotal = 0n;
  for (const e of entries) {
    if (!e.jobId) throw new Error(`epoch ${epochId}: ledger entry on ${e.account} has no job`);
    let payee: string;
    let receipt: string;
    if (e.accountKind === fees) {
      payee = recipient;
      receipt = feeReceiptId(e.jobId);
      feeTotal += e.amount;
    } else {
      const peer = e.payeePeerId;
      const address = e.address?.toLowerCase() ?? '';
      if (!peer || !LOWER_CASE_ADDRESS_PATTERN.test(address)) {
        throw new Error(`epoch ${epochId}: ledger entry on ${e.account} has no provider address`);
      }
      const p = byPeer.get(peer) ?? { address, amount: 0n };
      p.amount += e.amount;
      byPeer.set(peer, p);
      payee = address;
      receipt = receiptId(e.jobId, peer);
    }
    const c = credits.get(payee) ?? { amount: 0n, receipts: new Map<string, bigint>() };
    c.amount += e.amount;
    c.receipts.set(receipt, (c.receipts.get(receipt) ?? 0n) + e.amount);
    credits.set(payee, c);
    const developer = e.developer?.toLowerCase();
    if (!developer || !LOWER_CASE_ADDRESS_PATTERN.test(developer)) {
      throw new Error(`epoch ${epochId}: job ${e.jobId} has no developer address`);
    }
    debits.set(developer, (debits.get(developer) ?? 0n) + e.amount);
  }
  const paid = [...credits].filter(([, c]) => c.amount > 0n);
  const epochCredits: EpochCredit[] = paid.map(([provider, c]) => ({
    provider,
    receipts: [...c.receipts].map(([id, amount]) => ({ id, amount })),
  }));
  const total = paid.reduce((s, [, c]) => s + c.amount, 0n);
  const debitTotal = [...debits.values()].reduce((s, d) => s + d, 0n);
  if (
    total === 0n ||
    total !== debitTotal ||
    feeTotal < 0n ||
    [...byPeer.values()].some((p) => p.amount <= 0n) ||
    [...debits.values()].some((d) => d <= 0n)
  ) {
    return null;
  }
  return {
    byPeer,
    credits: epochCredits,
    payees: paid.map(([provider, c]) => ({ provider, amount: c.amount })),
    debits: [...debits].map(([account, amount]) => ({ account, amount })),
    fees: feeTotal,
  };
}

/** The epoch file of `epochId`: the previous file's cumulative amounts plus `charges`. */
async function buildFile(
  tx: Prisma.TransactionClient,
  epochId: number,
  previous: Epoch | null,
  charges: EpochCharges,
  domain: EpochDomain,
): Promise<EpochFile> {
  let previousCumulative = new Map<string, CumulativeEntry>();
  if (previous) {
    const prevFile = await tx.epochFile.findUnique({ where: { epochId: previous.id } });
    if (!prevFile) throw new Error(`epoch ${previous.id} is closed but has no file`);
    previousCumulative = cumulativeFromEpochFile(parseEpochFile(prevFile.json));
  }
  return closeEpoch(previousCumulative, charges.credits, {
    epoch: epochId,
    debits: charges.debits,
    ...domain,
  });
}
