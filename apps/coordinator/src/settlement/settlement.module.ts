import { DynamicModule, Module, type Provider, type Type } from '@nestjs/common';
import { BullModule } from '@nestjs/bullmq';
import type { AppConfig } from '../config/config.js';
import { LedgerRepository } from '../ledger/ledger.repository.js';
import { SpendingCapsRepository } from '../accounts/spending-caps.repository.js';
import { QueueName } from '../queue/queue.constants.js';
import { ChainClient } from './chain-client.js';
import { EscrowWatcherService } from './escrow-watcher.service.js';
import { EvidenceController } from './evidence.controller.js';
import { EvidenceService } from './evidence.service.js';
import { RewardsController } from './rewards.controller.js';
import { SETTLEMENT_CHAIN, type SettlementChain } from './settlement-chain.js';
import { SettlementProcessor } from './settlement.processor.js';
import { SettlementRepository } from './settlement.repository.js';
import { SettlementService } from './settlement.service.js';
import { SettingsRepository } from '../settings/settings.repository.js';
import { SettingsService } from '../settings/settings.service.js';
import { SlashExecutorService } from './slash-executor.service.js';
import { SlashRepository } from './slash.repository.js';
import { StakeReader } from './stake-reader.js';
import { TxJournalRepository } from './tx-journal.repository.js';

export interface SettlementModuleOptions {
  config: AppConfig;
  /** The chain of a worker with settlement on; null otherwise. */
  chain: SettlementChain | null;
}

/**
 * Settlement. API role: the public rewards and evidence endpoints (from PostgreSQL only). Worker role with
 * settlement on: the settlement queue (epochs closed, roots posted, epochs finalized and funded,
 * due slash proposals executed) and the escrow deposit watcher. Every role: slash proposals and
 * stake reads for the admin API.
 */
@Module({})
export class SettlementModule {
  static register({ config, chain }: SettlementModuleOptions): DynamicModule {
    const serveApi = config.ROLE !== 'worker';
    const runWorkers = config.ROLE !== 'api' && chain !== null;
    const providers: Provider[] = [
      { provide: SETTLEMENT_CHAIN, useValue: chain },
      LedgerRepository,
      SettlementRepository,
      SlashRepository,
      StakeReader,
      EvidenceService,
    ];
    if (runWorkers)
      providers.push(
        ChainClient,
        SettingsRepository,
        SettingsService,
        TxJournalRepository,
        SpendingCapsRepository,
        SettlementService,
        SettlementProcessor,
        EscrowWatcherService,
        SlashExecutorService,
      );
    const controllers: Type[] = serveApi ? [RewardsController, EvidenceController] : [];
    return {
      module: SettlementModule,
      imports: runWorkers ? [BullModule.registerQueue({ name: QueueName.Settlement })] : [],
      controllers,
      providers,
      exports: runWorkers
        ? [
            SettlementService,
            EscrowWatcherService,
            SlashExecutorService,
            SettlementRepository,
            SlashRepository,
            StakeReader,
            SETTLEMENT_CHAIN,
          ]
        : [SettlementRepository, SlashRepository, StakeReader, SETTLEMENT_CHAIN],
    };
  }
}
