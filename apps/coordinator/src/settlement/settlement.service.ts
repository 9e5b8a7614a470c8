import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { RewardsError, attachJobEscrow, parseEpochFile, postEpochRoot } from '#rewards';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { LOGGER } from '../logging/logger.js';
import { SettingsService } from '../settings/settings.service.js';
import { ChainClient } from './chain-client.js';
import { settlementSettings, type SettlementSettings } from './settlement-chain.js';
import { SettlementRepository, type CloseOutcome } from './settlement.repository.js';

/**
 * Longest wait for a funding transaction's confirmations. Without a bound, a transaction the chain
 * never mines (dropped, replaced) held the settlement queue's only job slot forever: the step now
 * fails and the next tick retries it (the escrow's `debitedIn` says whether the first one landed).
 */
export const FUNDING_TX_TIMEOUT_MS = 120_000;

export interface PostOptions {
  /** How long to wait for the transaction (default 120,000 ms); a later call resumes. */
  timeoutMs?: number;
}

/**
 * The worker side of settlement: closes due epochs, posts their roots in order (crash-safe through
 * the PostgreSQL journal), and marks them FINALIZED after the challenge window once the escrow has
 * funded the distributor. Every step reads its state from PostgreSQL and the chain, so any worker
 * may run it and a restarted one carries on.
 */
@Injectable()
export class SettlementService {
  readonly settings: SettlementSettings;
  private blocked: string | null = null;
  private prepared = false;

  constructor(
    private readonly repo: SettlementRepository,
    private readonly chain: ChainClient,
    private readonly runtimeSettings: SettingsService,
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.settings = settlementSettings(config);
  }

  /**
   * Boot: epochs posted on another chain (a fresh dev anvil) are posted again on this one; on a
   * persistent chain that would mean the contracts changed under us, so posting stops instead.
   * Creates the open epoch, numbered after the chain's last epoch when the database has none.
   */
  async prepare(): Promise<void> {
    const key = await this.chain.chainKey();
    if (this.chain.chain.ephemeral) {
      const n = await this.repo.repostOnNewChain(key);
      if (n > 0) this.logger.info({ epochs: n }, 'new dev chain: posting earlier epochs again');
    } else if ((await this.repo.countPostedElsewhere(key)) > 0) {
      this.blocked = `epochs were posted on another chain or distributor than ${key}`;
      this.logger.error({ chainKey: key }, `settlement stopped: ${this.blocked}`);
    }
    await this.ensureOpenEpoch();
    this.prepared = true;
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
    const epochSeconds = await this.runtimeSettings.get('epochSeconds');
    return now.getTime() - open.startedAt.getTime() >= epochSeconds * 1000 ? open.id : null;
  }

  /** Closes `epoch` if it is still open (a no-op otherwise, or when nothing was earned). */
  async close(epoch: number): Promise<CloseOutcome> {
    const outcome = await this.repo.closeEpoch(epoch);
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

  /** The oldest CLOSED epoch: the next root to post (roots go on chain in order). */
  async nextToPost(): Promise<number | null> {
    await this.ensurePrepared();
    if (this.blocked) return null;
    return (await this.repo.epochsIn('CLOSED', 1))[0]?.id ?? null;
  }

  /**
   * Posts the root of `epoch` with `postEpochRoot` and the journal of this chain: signed, journaled
   * in PostgreSQL, then broadcast; after a crash the same signed transaction is re-broadcast, so the
   * root is posted once. Marks the epoch POSTED.
   */
  async post(epoch: number, options: PostOptions = {}): Promise<string | null> {
    if (this.blocked) throw new Error(`settlement stopped: ${this.blocked}`);
    const [row] = (await this.repo.epochsIn('CLOSED', 1)).filter((e) => e.id === epoch);
    if (!row) return null;
    if (!row.root || !row.fileHash || row.total === null)
      throw new Error(`epoch ${epoch} is closed without a root`);
    const chainKey = await this.chain.chainKey();
    const posted = await postEpochRoot({
      distributor: this.chain.distributor,
      signer: this.chain.settler,
      journal: this.repo.journal(chainKey),
      epoch,
      root: row.root,
      fileHash: row.fileHash,
      total: row.total,
      confirmations: this.settings.confirmations,
      timeoutMs: options.timeoutMs,
    });
    const journaled = await this.repo.journal(chainKey).get(epoch);
    const txHash = posted.txHash ?? journaled?.txHash ?? null;
    await this.repo.markPosted(epoch, txHash, chainKey);
    this.logger.info({ epoch, txHash, alreadyPosted: posted.alreadyPosted }, 'epoch root posted');
    return txHash;
  }

  /**
   * For each POSTED epoch past its challenge window: funds the distributor from the escrow (the
   * epoch file's debits, as far as each developer's escrow balance goes; on a dev chain where the
   * settler may mint, the rest is minted), then marks it FINALIZED, which makes it claimable.
   */
  async finalizeReady(): Promise<number[]> {
    if (this.blocked) return [];
    const done: number[] = [];
    for (const e of await this.repo.epochsIn('POSTED')) {
      if (!(await this.chain.distributor.isFinal(e.id))) break;
      const fundingTxHash = await this.fund(e.id);
      await this.repo.markFinalized(e.id, fundingTxHash);
      this.logger.info({ epoch: e.id, fundingTxHash }, 'epoch final and funded');
      done.push(e.id);
    }
    return done;
  }

  /** Debits the escrow for `epoch` once (the chain's `debitedIn` says whether it was). */
  private async fund(epoch: number): Promise<string | null> {
    const json = await this.repo.fileJson(epoch);
    if (!json) throw new Error(`epoch ${epoch} has no file`);
    const file = parseEpochFile(json);
    const total = BigInt(file.total);
    const escrow = attachJobEscrow(this.chain.chain.contracts.escrow, this.chain.settler);
    const debited = await this.chain.escrow.debitedIn(epoch);
    if (debited > 0n) return null;
    const accounts: string[] = [];
    const amounts: bigint[] = [];
    for (const d of file.debits) {
      const available = await this.chain.escrow.balanceOf(d.account);
      const amount = BigInt(d.amount) < available ? BigInt(d.amount) : available;
      if (amount > 0n) {
        accounts.push(d.account);
        amounts.push(amount);
      }
    }
    let txHash: string | null = null;
    const funded = amounts.reduce((s, a) => s + a, 0n);
    if (funded > 0n) {
      const tx = await escrow.debit(epoch, 0, accounts, amounts);
      await tx.wait(this.settings.confirmations, FUNDING_TX_TIMEOUT_MS);
      txHash = tx.hash;
    }
    // TODO(funding): the settler is no longer the token minter and the distributor pays only funded
    // epochs; the shortfall (total - funded) must be funded some other way (being rewritten).
    const shortfall = total - funded;
    if (shortfall > 0n) {
      this.logger.warn(
        { epoch, shortfall: shortfall.toString() },
        'the escrow does not cover the epoch: its root is not claimable until it is fully funded',
      );
    }
    return txHash;
  }
}

/** A readable one-line description of a settlement error. */
export function describeSettlementError(err: unknown): string {
  if (err instanceof RewardsError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
