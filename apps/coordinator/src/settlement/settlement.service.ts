import { Inject, Injectable } from '@nestjs/common';
import { ZeroHash } from 'ethers';
import type { Logger } from 'pino';
import {
  RewardsError,
  attachJobEscrow,
  committedBatches,
  debitableWithinCap,
  parseEpochFile,
  postEpochRoot,
  sendJournaled,
  spendingCapDomain,
  storedSpendingCap,
  type EpochFile,
  type FundingBatch,
  type SpendingCapDomain,
  type TxJournal,
} from '@gpumesh/rewards';
import type { Epoch } from '#prisma';
import { SpendingCapsRepository } from '../accounts/spending-caps.repository.js';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { LOGGER } from '../logging/logger.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { SettingsService } from '../settings/settings.service.js';
import { ChainClient } from './chain-client.js';
import { settlementSettings, type SettlementSettings } from './settlement-chain.js';
import { SettlementRepository, type CloseOutcome } from './settlement.repository.js';
import { TxJournalRepository } from './tx-journal.repository.js';

/**
 * Longest wait for one settlement transaction's confirmations in one step. A transaction the chain
 * does not mine in time (a fee spike, a dropped transaction) does not hold the settlement queue: the
 * step ends and the next tick resumes it from the journal (re-broadcast, or replaced with higher fees).
 */
export const SETTLEMENT_TX_TIMEOUT_MS = 120_000;

export interface PostOptions {
  /** How long to wait for the transaction (default SETTLEMENT_TX_TIMEOUT_MS); a later call resumes. */
  timeoutMs?: number;
}

/** What one pass over the posted epochs did. */
export interface AdvanceOutcome {
  /** Epochs that became FINALIZED (fully funded, claimable). */
  finalized: number[];
  /** Epochs sent back to CLOSED because their root is no longer on chain (vetoed, or reorged out). */
  reposting: number[];
}

/** An account a funding batch cannot debit yet: what it owes passes the spending cap it signed. */
interface CapShortfall {
  account: string;
  owed: bigint;
  spent: bigint;
  cap: bigint;
}

/**
 * The worker side of settlement, a state machine per epoch whose every step reads its state from
 * PostgreSQL and the chain, so any worker may run it and a restarted one carries on:
 *
 *   OPEN → CLOSED (file built from the ledger) → POSTED (root on chain, journaled) → FUNDING (past the
 *   challenge window: the escrow is debited, batch by batch, journaled and idempotent on chain) →
 *   FINALIZED (the distributor holds the epoch's whole total: claimable).
 *
 * Each pass first checks that every POSTED or FUNDING root is still on chain: a root a guardian
 * vetoed sends the epoch (and the later ones, which the veto rolled back too) back to CLOSED with its
 * file rebuilt from the ledger; a root a reorg dropped goes back to CLOSED and is posted again. An
 * epoch the escrow cannot fully fund stays FUNDING, with the shortfall in its `blockedReason` and in
 * the metrics, until someone funds the rest (`RewardsDistributor.fund` is open to anyone).
 */
@Injectable()
export class SettlementService {
  readonly settings: SettlementSettings;
  /** Where the platform fee of every epoch is paid (a leaf of its tree). */
  private readonly feeRecipient: string;
  private blocked: string | null = null;
  private prepared = false;
  private maxEpoch: Promise<number> | null = null;
  private warnedEpochCap = false;
  private readonly capDomain: SpendingCapDomain;

  constructor(
    private readonly repo: SettlementRepository,
    private readonly txJournal: TxJournalRepository,
    private readonly chain: ChainClient,
    private readonly runtimeSettings: SettingsService,
    private readonly metrics: MetricsService,
    private readonly spendingCaps: SpendingCapsRepository,
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.settings = settlementSettings(config);
    this.feeRecipient = config.feeRecipientAddress;
    this.capDomain = spendingCapDomain(chain.chain.chainId, chain.chain.contracts.escrow);
  }

  /**
   * Boot: epochs posted on another chain or distributor mean the contracts changed under us (or the
   * dev chain's state was lost): their money is there, not here, so posting stops with the reason.
   * Creates the open epoch, numbered after the chain's last epoch when the database has none.
   */
  async prepare(): Promise<void> {
    const key = await this.chain.chainKey();
    if ((await this.repo.countPostedElsewhere(key)) > 0) {
      this.blocked = `epochs were posted on another chain or distributor than ${key}`;
      this.logger.error({ chainKey: key }, `settlement stopped: ${this.blocked}`);
    }
    await this.ensureOpenEpoch();
    this.prepared = true;
  }

  /** Why settlement stopped for good in this process (another chain's epochs), or null. */
  get stoppedBecause(): string | null {
    return this.blocked;
  }

  private async ensurePrepared(): Promise<void> {
    if (!this.prepared) await this.prepare();
  }

  private ensureOpenEpoch(): Promise<unknown> {
    return this.repo.ensureOpenEpoch(async () => Number(await this.chain.distributor.lastEpoch()) + 1);
  }

  /**
   * The open epoch's number when it is due to close, else null. The epoch length is the run-time
   * setting `epochSeconds` (an admin may change it from the dashboard; EPOCH_SECONDS is its default).
   */
  async dueEpoch(now = new Date()): Promise<number | null> {
    await this.ensurePrepared();
    const open = await this.ensureOpenEpoch().then(() => this.repo.openEpoch());
    if (!open) return null;
    const epochSeconds = await this.epochSeconds();
    return now.getTime() - open.startedAt.getTime() >= epochSeconds * 1000 ? open.id : null;
  }

  /**
   * The epoch length: the run-time setting, capped at the escrow's `maxEpochSeconds` (its unlock
   * delay only guarantees that what was spent before an unlock request is debited before the unlock
   * when no epoch runs longer), with a warning once when the setting asks for more.
   */
  private async epochSeconds(): Promise<number> {
    this.maxEpoch ??= this.chain.escrow.maxEpochSeconds().then(Number);
    this.maxEpoch.catch(() => {
      this.maxEpoch = null;
    });
    const max = await this.maxEpoch;
    const wanted = await this.runtimeSettings.get('epochSeconds');
    if (wanted > max && !this.warnedEpochCap) {
      this.warnedEpochCap = true;
      this.logger.warn(
        { epochSeconds: wanted, maxEpochSeconds: max },
        'epochSeconds is longer than the escrow allows (maxEpochSeconds): epochs close at the escrow bound',
      );
    }
    return Math.min(wanted, max);
  }

  /** Closes `epoch` if it is still open (a no-op otherwise, or when nothing was earned). */
  async close(epoch: number): Promise<CloseOutcome> {
    const outcome = await this.repo.closeEpoch(epoch, this.feeRecipient, this.chain.epochDomain);
    if (outcome.closed) {
      this.logger.info(
        { epoch, root: outcome.file.root, total: outcome.file.total, leaves: outcome.file.leaves.length },
        'epoch closed',
      );
    }
    return outcome;
  }

  /** Closes the open epoch now, whether due or not (tests and operators). */
  async closeNow(): Promise<CloseOutcome> {
    await this.ensureOpenEpoch();
    const open = await this.repo.openEpoch();
    if (!open) throw new Error('no open epoch');
    return this.close(open.id);
  }

  /**
   * The oldest CLOSED epoch: the next root to post (roots go on chain in order); none while an epoch
   * waits for an operator (its `blockedReason`).
   */
  async nextToPost(): Promise<number | null> {
    await this.ensurePrepared();
    if (this.blocked) return null;
    const [next] = await this.repo.epochsIn('CLOSED', 1);
    if (!next || next.blockedReason) return null;
    return next.id;
  }

  /**
   * Posts the root of `epoch` with `postEpochRoot` and the journal of this chain: signed, journaled
   * in PostgreSQL, then broadcast; after a crash the journaled transaction is re-broadcast (or
   * replaced with higher fees when it is stuck), so the root is posted once. Marks the epoch POSTED.
   */
  async post(epoch: number, options: PostOptions = {}): Promise<string | null> {
    if (this.blocked) throw new Error(`settlement stopped: ${this.blocked}`);
    const [row] = (await this.repo.epochsIn('CLOSED', 1)).filter((e) => e.id === epoch);
    if (!row) return null;
    if (!row.root || !row.fileHash || row.total === null)
      throw new Error(`epoch ${epoch} is closed without a root`);
    const chainKey = await this.chain.chainKey();
    const journal = this.txJournal.journal(chainKey);
    const file = await this.epochFile(epoch);
    // The caps developers signed go on chain before the root, so that once it is final the committed
    // batches can be debited by anyone, whether or not this coordinator is still there.
    for (const batch of committedBatches(file)) await this.submitSpendingCaps(batch, journal, options);
    const posted = await postEpochRoot({
      distributor: this.chain.distributor,
      signer: this.chain.settler,
      journal,
      epoch,
      root: row.root,
      fileHash: row.fileHash,
      total: row.total,
      fundingRoot: file.funding?.root ?? ZeroHash,
      confirmations: this.settings.confirmations,
      timeoutMs: options.timeoutMs ?? SETTLEMENT_TX_TIMEOUT_MS,
    });
    await this.repo.markPosted(epoch, posted.txHash, chainKey);
    this.logger.info(
      { epoch, txHash: posted.txHash, alreadyPosted: posted.alreadyPosted },
      'epoch root posted',
    );
    return posted.txHash;
  }

  /**
   * One pass over the posted epochs: checks their roots are still on chain (veto, reorg), funds
   * those past their challenge window from the escrow, and marks the fully funded ones FINALIZED.
   */
  async advance(options: PostOptions = {}): Promise<AdvanceOutcome> {
    const outcome: AdvanceOutcome = { finalized: [], reposting: [] };
    if (this.blocked) return outcome;
    outcome.reposting = await this.reconcile();
    for (const e of await this.repo.epochsIn(['POSTED', 'FUNDING'])) {
      if (!(await this.chain.distributor.isFinal(e.id))) break;
      if (e.state === 'POSTED') await this.repo.markFunding(e.id);
      const funded = await this.fund(e, options);
      if (!funded) break; // later epochs are funded in order, after this one
      outcome.finalized.push(e.id);
    }
    await this.sampleMetrics();
    return outcome;
  }

  /** Epoch counts by state, what funding epochs still lack, and how many wait for an operator. */
  private async sampleMetrics(): Promise<void> {
    const health = await this.repo.settlementHealth();
    for (const [state, n] of Object.entries(health.byState)) this.metrics.epochsByState.set({ state }, n);
    this.metrics.unfundedBaseUnits.set(Number(health.unfunded));
    this.metrics.settlementBlocked.set(health.blocked);
  }

  /**
   * Compares every POSTED/FUNDING epoch with the chain. A root the chain no longer holds was vetoed
   * (a `RootVetoed` event names it: the files from that epoch on are rebuilt from the ledger and go
   * back to CLOSED) or dropped by a reorg (back to CLOSED; posting resumes from the journal). Returns
   * the epochs sent back.
   */
  private async reconcile(): Promise<number[]> {
    const posted = await this.repo.epochsIn(['POSTED', 'FUNDING']);
    if (posted.length === 0) return [];
    const last = Number(await this.chain.distributor.lastEpoch());
    for (const e of posted) {
      const [root] = e.id <= last ? await this.chain.distributor.epochRoot(e.id) : [null];
      if (root && e.root && root.toLowerCase() === e.root.toLowerCase()) continue;
      const veto = await this.vetoOf(e);
      if (veto) return this.recoverFromVeto(e, veto.reason);
      const back = await this.repo.backToClosed(e.id);
      this.logger.warn(
        { epoch: e.id, root: e.root, onChain: root, epochs: back },
        'a posted root is no longer on chain (reorged out): posting it again',
      );
      return back;
    }
    return [];
  }

  /** The guardian's veto of `epoch`'s current root, if the chain has one. */
  private async vetoOf(epoch: Epoch): Promise<{ reason: string } | null> {
    const events = await this.chain.distributor.queryFilter(
      this.chain.distributor.filters.RootVetoed(epoch.id),
      this.chain.chain.contracts.deployBlock,
    );
    for (const event of events.reverse()) {
      const args = (event as unknown as { args: { root: string; reason: string } }).args;
      if (epoch.root && args.root.toLowerCase() === epoch.root.toLowerCase()) return { reason: args.reason };
    }
    return null;
  }

  /**
   * After a veto: rebuilds the vetoed epoch's file and every later one's from the ledger and sends
   * them back to CLOSED, to be posted again under fresh journal entries (the journal key holds the
   * root). When the ledger gives the very root that was vetoed, the guardian disagrees with the
   * ledger itself: posting it again would only be vetoed again, so the epoch waits for an operator.
   */
  private async recoverFromVeto(epoch: Epoch, reason: string): Promise<number[]> {
    const rebuilt = await this.repo.rebuildFrom(epoch.id, this.feeRecipient, this.chain.epochDomain);
    const first = rebuilt.find((r) => r.epoch === epoch.id);
    if (first && first.oldRoot && first.oldRoot.toLowerCase() === first.newRoot.toLowerCase()) {
      const why = `root ${first.newRoot} was vetoed (reason ${reason}) and the ledger rebuilds the same root: an operator must check the ledger against the guardian's evidence before it is posted again`;
      await this.repo.setBlockedReason(epoch.id, why);
      this.logger.error({ epoch: epoch.id, reason }, `settlement waits for an operator: ${why}`);
    } else {
      this.logger.warn(
        { epoch: epoch.id, reason, rebuilt },
        'a guardian vetoed a root: the epoch files were rebuilt from the ledger and are posted again',
      );
    }
    return rebuilt.map((r) => r.epoch);
  }

  /**
   * Debits the escrow for a FUNDING epoch: sends each batch committed in its funding root (one
   * journaled transaction each; the escrow refuses a batch twice, so nothing is debited twice
   * whatever crashes — and a batch someone else already sent is skipped), then marks the epoch
   * FINALIZED once the distributor holds its whole total. The escrow debits an account what it
   * holds when that is less than it owes: the epoch stays FUNDING with the shortfall named, until it
   * is funded (by anyone, with RewardsDistributor.fund). Returns whether the epoch is FINALIZED.
   */
  private async fund(epoch: Epoch, options: PostOptions): Promise<boolean> {
    const total = epoch.total ?? 0n;
    if (await this.chain.distributor.isFunded(epoch.id)) {
      await this.repo.markFinalized(epoch.id, epoch.fundingTxHash, total);
      this.logger.info({ epoch: epoch.id }, 'epoch funded and final: claimable');
      return true;
    }
    const file = await this.epochFile(epoch.id);
    const chainKey = await this.chain.chainKey();
    const journal = this.txJournal.journal(chainKey);
    const escrow = attachJobEscrow(this.chain.chain.contracts.escrow, this.chain.settler);
    let lastTx = epoch.fundingTxHash;
    const overCap: CapShortfall[] = [];
    for (const batch of committedBatches(file)) {
      if (await this.chain.escrow.isBatchDebited(epoch.id, batch.index)) continue;
      const key = `debit:${epoch.id}:${batch.index}:${file.root}`;
      // The calldata is fixed when the batch is first journaled: a resumed batch sends that again.
      const journaled = await journal.get(key);
      let data = journaled?.data;
      if (!data) {
        await this.submitSpendingCaps(batch, journal, options);
        const payable = await this.payable(batch);
        if ('overCap' in payable) {
          // Not sent yet: the escrow would debit less than owed. It waits (unjournaled) for higher caps.
          overCap.push(...payable.overCap);
          continue;
        }
        // Escrows that hold nothing of what they owe: nothing to send (the epoch stays short).
        if (payable.amounts.every((a) => a === 0n)) continue;
        data = escrow.interface.encodeFunctionData('debit', [
          epoch.id,
          batch.index,
          batch.accounts,
          batch.amounts,
          batch.proof,
        ]);
      }
      const sent = await sendJournaled({
        signer: this.chain.settler,
        journal,
        key,
        to: this.chain.chain.contracts.escrow,
        data,
        isDone: () => this.chain.escrow.isBatchDebited(epoch.id, batch.index),
        confirmations: this.settings.confirmations,
        timeoutMs: options.timeoutMs ?? SETTLEMENT_TX_TIMEOUT_MS,
      });
      lastTx = sent.txHash ?? lastTx;
    }
    const funded = await this.chain.distributor.fundedIn(epoch.id);
    if (funded >= total && (await this.chain.distributor.isFunded(epoch.id))) {
      await this.repo.markFinalized(epoch.id, lastTx, funded);
      this.logger.info({ epoch: epoch.id, fundingTxHash: lastTx }, 'epoch funded and final: claimable');
      return true;
    }
    const shortfall = total - funded;
    if (overCap.length > 0) {
      const accounts = overCap
        .map((o) => `${o.account} (owes ${o.owed}, spent ${o.spent} of cap ${o.cap})`)
        .join(', ');
      const why = `waiting for spending caps: ${accounts} signed no cap covering what the epoch debits; the debit is sent once they sign a higher one (PUT /v1/account/spending-cap, gpumesh spending-cap, or JobEscrow.authorize/setSpendingCap)`;
      if (epoch.blockedReason !== why) this.logger.error({ epoch: epoch.id, overCap: overCap.length }, why);
      await this.repo.markFundingShort(epoch.id, funded, why, lastTx);
      return false;
    }
    const why = `the escrow covered ${funded} of ${total} base units: ${shortfall} more must be funded (RewardsDistributor.fund(${epoch.id}, ${shortfall}), open to anyone) before the epoch is claimable`;
    if (epoch.blockedReason !== why)
      this.logger.error({ epoch: epoch.id, shortfall: shortfall.toString() }, why);
    await this.repo.markFundingShort(epoch.id, funded, why, lastTx);
    return false;
  }

  /** The stored file of `epoch`, parsed. */
  private async epochFile(epoch: number): Promise<EpochFile> {
    const json = await this.repo.fileJson(epoch);
    if (!json) throw new Error(`epoch ${epoch} has no file`);
    return parseEpochFile(json);
  }

  /**
   * Submits on chain (JobEscrow.authorize, journaled) every cap a developer of `batch` signed that is
   * higher than the escrow's, so its debit does not revert for a cap the coordinator holds.
   */
  private async submitSpendingCaps(
    batch: FundingBatch,
    journal: TxJournal,
    options: PostOptions,
  ): Promise<void> {
    const stored = await this.spendingCaps.forAddresses(batch.accounts, this.capDomain);
    const escrow = attachJobEscrow(this.chain.chain.contracts.escrow, this.chain.settler);
    for (const cap of stored) {
      // A cap read from the chain (no signature kept) is there already.
      if (cap.signature === null) continue;
      const target = storedSpendingCap(cap.cap);
      if ((await this.chain.escrow.spendingCapOf(cap.address)) >= target) continue;
      const sent = await sendJournaled({
        signer: this.chain.settler,
        journal,
        key: `spending-cap:${cap.address}:${cap.cap}`,
        to: this.chain.chain.contracts.escrow,
        data: escrow.interface.encodeFunctionData('authorize', [cap.address, cap.cap, cap.signature]),
        isDone: async () => (await this.chain.escrow.spendingCapOf(cap.address)) >= target,
        confirmations: this.settings.confirmations,
        timeoutMs: options.timeoutMs ?? SETTLEMENT_TX_TIMEOUT_MS,
      });
      this.logger.info(
        { account: cap.address, cap: cap.cap.toString(), txHash: sent.txHash },
        'spending cap submitted',
      );
    }
  }

  /**
   * Each account's debit, capped at what its escrow holds now (the rest is the epoch's shortfall);
   * or the accounts whose debit would pass their on-chain spending cap (the batch would revert).
   */
  private async payable(batch: FundingBatch): Promise<{ amounts: bigint[] } | { overCap: CapShortfall[] }> {
    const rows = await Promise.all(
      batch.accounts.map(async (account, i) => {
        const [balance, spent, cap] = await Promise.all([
          this.chain.escrow.balanceOf(account),
          this.chain.escrow.spentBy(account),
          this.chain.escrow.spendingCapOf(account),
        ]);
        const owed = batch.amounts[i];
        return { account, owed, spent, cap, amount: debitableWithinCap(owed, balance, spent, cap) };
      }),
    );
    const overCap = rows.filter((r) => r.amount === null);
    if (overCap.length > 0)
      return { overCap: overCap.map(({ account, owed, spent, cap }) => ({ account, owed, spent, cap })) };
    return { amounts: rows.map((r) => r.amount ?? 0n) };
  }
}

/** A readable one-line description of a settlement error. */
export function describeSettlementError(err: unknown): string {
  if (err instanceof RewardsError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
