import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import {
  formatTokenAmount,
  spendingCapDomain,
  watchEscrowEvents,
  type EscrowEvent,
  type EscrowEventWatcher,
  type SpendingCapDomain,
} from '@gpumesh/rewards';
import { LOGGER } from '../logging/logger.js';
import { ChainClient } from './chain-client.js';
import { SettlementService, describeSettlementError } from './settlement.service.js';
import { SettlementRepository } from './settlement.repository.js';

const FAILURE_LOG_INTERVAL_MS = 60_000;

/**
 * Worker role: follows the escrow's account events from its deploy block, each after
 * DEPOSIT_CONFIRMATIONS blocks (a shallow reorg never reaches the ledger), exactly once (effect and
 * cursor commit in one database transaction, keyed by (chain, tx hash, log index)), so off-chain
 * money mirrors on-chain money: a deposit credits the account, an unlock request stops its new
 * spending until it is cancelled, a withdrawal takes off exactly what left the escrow, a spending cap
 * authorized on chain raises what the account may commit.
 */
@Injectable()
export class EscrowWatcherService implements OnApplicationBootstrap, OnModuleDestroy {
  private watcher: EscrowEventWatcher | null = null;
  private lastFailureLog = 0;
  private readonly capDomain: SpendingCapDomain;

  constructor(
    private readonly chain: ChainClient,
    private readonly repo: SettlementRepository,
    private readonly settlement: SettlementService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.capDomain = spendingCapDomain(chain.chain.chainId, chain.chain.contracts.escrow);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.start();
  }

  async start(): Promise<void> {
    if (this.watcher) return;
    const chainKey = await this.chain.chainKey();
    const cursor = await this.repo.depositCursor(chainKey);
    const watcher = watchEscrowEvents({
      provider: this.chain.provider,
      escrow: this.chain.chain.contracts.escrow,
      fromBlock: this.chain.chain.contracts.deployBlock,
      cursor: cursor ?? undefined,
      confirmations: this.settlement.settings.depositConfirmations,
      pollIntervalMs: 500,
      onEvent: async (event) => {
        const outcome = await this.repo.applyEscrowEvent(chainKey, event, this.capDomain);
        this.logEvent(event, outcome.applied, outcome.shortfall);
      },
      onCursor: (next) => this.repo.saveCursor(chainKey, next),
      onError: (err, failures) => {
        // The first failure of a run, then one line a minute: an RPC outage polled every 500 ms
        // would otherwise log 120 lines a minute.
        const now = Date.now();
        if (failures > 1 && now - this.lastFailureLog < FAILURE_LOG_INTERVAL_MS) return;
        this.lastFailureLog = now;
        this.logger.warn(
          { err: describeSettlementError(err), failuresInARow: failures },
          'escrow watcher pass failed; retrying every 500 ms',
        );
      },
      onRecovered: (failures) =>
        this.logger.info({ failedPasses: failures }, 'escrow watcher reading the chain again'),
    });
    watcher.done.catch((err: unknown) => {
      this.logger.error({ err: describeSettlementError(err) }, 'escrow watcher stopped');
    });
    this.watcher = watcher;
  }

  private logEvent(event: EscrowEvent, applied: boolean, shortfall: bigint): void {
    const context = { account: event.account, kind: event.kind, tx: event.txHash, applied };
    if (!applied) {
      this.logger.info(context, 'escrow event already applied');
      return;
    }
    switch (event.kind) {
      case 'deposit':
        this.logger.info({ ...context, amount: event.amount.toString() }, 'escrow deposit credited');
        break;
      case 'withdrawal':
        if (shortfall > 0n) {
          this.logger.error(
            { ...context, amount: event.amount.toString(), shortfall: shortfall.toString() },
            `escrow withdrawal exceeded the account's available balance by ${formatTokenAmount(shortfall)} tokens: booked to system:escrow-shortfall, an operator must fund the epochs that debit it`,
          );
        } else {
          this.logger.info({ ...context, amount: event.amount.toString() }, 'escrow withdrawal debited');
        }
        break;
      case 'unlock-requested':
        this.logger.info(
          { ...context, unlockAt: new Date(event.unlockAt * 1000).toISOString() },
          'escrow unlock requested: the account may not start new jobs',
        );
        break;
      case 'unlock-cancelled':
        this.logger.info(context, 'escrow unlock cancelled: the account may spend again');
        break;
      case 'spending-cap':
        this.logger.info({ ...context, cap: event.cap.toString() }, 'spending cap authorized on chain');
        break;
    }
  }

  async stop(): Promise<void> {
    const watcher = this.watcher;
    this.watcher = null;
    await watcher?.stop();
  }

  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }
}
