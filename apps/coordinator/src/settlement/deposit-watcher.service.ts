import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { watchDeposits, type DepositWatcher } from '#rewards';
import { LOGGER } from '../logging/logger.js';
import { ChainClient } from './chain-client.js';
import { SettlementService, describeSettlementError } from './settlement.service.js';
import { SettlementRepository } from './settlement.repository.js';

const FAILURE_LOG_INTERVAL_MS = 60_000;

/**
 * Worker role: watches the escrow's `Deposited` events from its deploy block and credits each one,
 * after DEPOSIT_CONFIRMATIONS blocks, to the depositing address's account, exactly once: the credit
 * and the cursor commit in one database transaction, keyed by (chain, tx hash, log index).
 */
@Injectable()
export class DepositWatcherService implements OnApplicationBootstrap, OnModuleDestroy {
  private watcher: DepositWatcher | null = null;
  private lastFailureLog = 0;

  constructor(
    private readonly chain: ChainClient,
    private readonly repo: SettlementRepository,
    private readonly settlement: SettlementService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.start();
  }

  async start(): Promise<void> {
    if (this.watcher) return;
    const chainKey = await this.chain.chainKey();
    const cursor = await this.repo.depositCursor(chainKey);
    const watcher = watchDeposits({
      provider: this.chain.provider,
      escrow: this.chain.chain.contracts.escrow,
      fromBlock: this.chain.chain.contracts.deployBlock,
      cursor: cursor ?? undefined,
      confirmations: this.settlement.settings.depositConfirmations,
      pollIntervalMs: 500,
      onDeposit: async (deposit) => {
        const credited = await this.repo.creditDeposit(chainKey, deposit);
        this.logger.info(
          { account: deposit.account, amount: deposit.amount.toString(), tx: deposit.txHash, credited },
          credited ? 'escrow deposit credited' : 'escrow deposit already credited',
        );
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
          'deposit watcher pass failed; retrying every 500 ms',
        );
      },
      onRecovered: (failures) =>
        this.logger.info({ failedPasses: failures }, 'deposit watcher reading the chain again'),
    });
    watcher.done.catch((err: unknown) => {
      this.logger.error({ err: describeSettlementError(err) }, 'deposit watcher stopped');
    });
    this.watcher = watcher;
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
