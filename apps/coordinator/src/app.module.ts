import { DynamicModule, Global, Module, type Provider, type Type } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { BullModule } from '@nestjs/bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { APP_CONFIG, type AppConfig } from './config/config.js';
import { RUNTIME_ENDPOINTS, type RuntimeEndpoints } from './config/runtime-endpoints.js';
import { LOGGER } from './logging/logger.js';
import { DatabaseModule } from './database/database.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { HttpExceptionFilter } from './common/http-exception.filter.js';
import { QueueName } from './queue/queue.constants.js';
import { AuthGuard } from './auth/auth.guard.js';
import { AuthService } from './auth/auth.service.js';
import { CredentialWatch } from './auth/credential-watch.service.js';
import { AuthRepository } from './auth/auth.repository.js';
import { AuthController } from './auth/auth.controller.js';
import { AccountsRepository } from './accounts/accounts.repository.js';
import { AccountsController } from './accounts/accounts.controller.js';
import { SPENDING_CAP_DOMAIN, spendingCapDomainOf } from './accounts/spending-cap-domain.js';
import { SpendingCapsRepository } from './accounts/spending-caps.repository.js';
import { SpendingCapsService } from './accounts/spending-caps.service.js';
import { LedgerRepository } from './ledger/ledger.repository.js';
import { AccountLedgerService } from './ledger/account-ledger.service.js';
import { UnusableBodyGuard } from './common/json-body.js';
import { JobsRepository } from './jobs/jobs.repository.js';
import { JobSubmissionRepository } from './jobs/job-submission.repository.js';
import { DryRunService } from './jobs/dry-run.service.js';
import { AttemptsRepository } from './jobs/attempts.repository.js';
import { JobsService } from './jobs/jobs.service.js';
import { JobsController } from './jobs/jobs.controller.js';
import { ArtifactsRepository } from './artifacts/artifacts.repository.js';
import { ArtifactsService } from './artifacts/artifacts.service.js';
import { ArtifactsController } from './artifacts/artifacts.controller.js';
import { TensorsRepository } from './tensors/tensors.repository.js';
import { TensorsService } from './tensors/tensors.service.js';
import { TensorsController } from './tensors/tensors.controller.js';
import { TensorRetentionService } from './tensors/tensor-retention.service.js';
import { TensorRetentionProcessor } from './tensors/tensor-retention.processor.js';
import { ProvidersRepository } from './providers/providers.repository.js';
import { ProvidersController } from './providers/providers.controller.js';
import { MarketController } from './providers/market.controller.js';
import { MarketRepository } from './providers/market.repository.js';
import { MarketService } from './providers/market.service.js';
import { ProviderEarningsRepository } from './providers/provider-earnings.repository.js';
import { ProviderEarningsService } from './providers/provider-earnings.service.js';
import { HealthController } from './health/health.controller.js';
import { HealthService } from './health/health.service.js';
import { HealthRepository } from './health/health.repository.js';
import { MetricsController } from './metrics/metrics.controller.js';
import { JobEventsBus } from './events/job-events.publisher.js';
import { JobEventStream } from './jobs/job-event-stream.js';
import { P2pService } from './p2p/p2p.service.js';
import { ProviderViewService } from './p2p/provider-view.service.js';
import { ProviderStakesService } from './providers/provider-stakes.service.js';
import { NetworkDirectory } from './p2p/network-directory.js';
import { NetworkController } from './p2p/network.controller.js';
import { DispatchService } from './dispatch/dispatch.service.js';
import { AttemptRunner } from './dispatch/attempt-runner.service.js';
import { Adjudicator } from './dispatch/adjudicator.service.js';
import { DisprovedClaims } from './dispatch/disproved-claims.service.js';
import { DispatchProcessor } from './workers/dispatch.processor.js';
import { MaintenanceProcessor } from './workers/maintenance.processor.js';
import { DispatchEnqueuer } from './queue/dispatch-enqueuer.js';
import { DevBootstrapService } from './dev/dev-bootstrap.service.js';
import { SettlementModule } from './settlement/settlement.module.js';
import { SettingsRepository } from './settings/settings.repository.js';
import { SettingsService } from './settings/settings.service.js';
import type { SettlementChain } from './settlement/settlement-chain.js';
import { AdminController } from './admin/admin.controller.js';
import { AdminSessionController } from './admin/admin-session.controller.js';
import { AdminGuard } from './admin/admin.guard.js';
import { AdminAuthService } from './admin/admin-auth.service.js';
import { AdminSessionsRepository } from './admin/admin-sessions.repository.js';
import { AdminRepository } from './admin/admin.repository.js';
import { AdminService } from './admin/admin.service.js';
import { AdminStatsService } from './admin/admin-stats.service.js';
import { AuditLogRepository } from './admin/audit-log.repository.js';
import { AuditLogService } from './admin/audit-log.service.js';
import { StatsHistoryProcessor } from './admin/stats-history.processor.js';
import { StatsHistoryRepository } from './admin/stats-history.repository.js';
import { StatsHistoryService } from './admin/stats-history.service.js';
import { ExportRepository } from './admin/export.repository.js';
import { ExportService } from './admin/export.service.js';
import { ReputationRepository } from './reputation/reputation.repository.js';
import { ReputationService } from './reputation/reputation.service.js';
import { VerificationRepository } from './verification/verification.repository.js';
import { VerificationPolicyService } from './pricing/policy.service.js';
import { CanaryService } from './verification/canary.service.js';
import { VerifierService } from './verification/verifier.service.js';
import { VestingService } from './verification/vesting.service.js';
import { CapacityRepository } from './capacity/capacity.repository.js';
import { CapacityProbeService } from './capacity/capacity-probe.service.js';
import { TrustTierService } from './verification/tiers.service.js';
import { WebhooksRepository } from './events/webhooks/webhooks.repository.js';
import { WebhooksService } from './events/webhooks/webhooks.service.js';
import { WebhooksController } from './events/webhooks/webhooks.controller.js';

export interface AppModuleOptions {
  config: AppConfig;
  endpoints: RuntimeEndpoints;
  logger: Logger;
  /** The settlement chain of a worker (settlement/settlement-chain.ts); absent or null when off. */
  chain?: SettlementChain | null;
  /** Only to build the OpenAPI document (openapi.ts): nothing connects to Redis. */
  documentOnly?: boolean;
}

@Global()
@Module({})
class CoreModule {
  static register(options: AppModuleOptions): DynamicModule {
    const providers: Provider[] = [
      { provide: APP_CONFIG, useValue: options.config },
      { provide: RUNTIME_ENDPOINTS, useValue: options.endpoints },
      { provide: LOGGER, useValue: options.logger },
    ];
    return { module: CoreModule, providers, exports: providers };
  }
}

/**
 * The coordinator. `ROLE=api` serves HTTP only, `ROLE=worker` runs the BullMQ processors only,
 * `ROLE=all` does both in one process; every role shares the same services and repositories.
 */
@Module({})
export class AppModule {
  static forRoot(options: AppModuleOptions): DynamicModule {
    const { config, endpoints } = options;
    const serveApi = config.ROLE !== 'worker';
    const runWorkers = config.ROLE !== 'api';
    const controllers: Type[] = serveApi
      ? [
          AuthController,
          AccountsController,
          WebhooksController,
          JobsController,
          ArtifactsController,
          TensorsController,
          ProvidersController,
          MarketController,
          NetworkController,
          HealthController,
          MetricsController,
          AdminSessionController,
          AdminController,
        ]
      : [HealthController, MetricsController];
    const workerProviders: Provider[] = runWorkers
      ? [DispatchProcessor, MaintenanceProcessor, StatsHistoryProcessor, TensorRetentionProcessor]
      : [];
    const capDomain = spendingCapDomainOf(config, options.chain ?? null);
    if (config.SETTLEMENT_ENABLED && !capDomain) {
      options.logger.warn(
        'settlement is on but this process knows no escrow (set CONTRACTS_FILE or ESCROW_ADDRESS): it cannot check spending caps, so submissions here are not bounded by them (the escrow still refuses debits past them)',
      );
    }
    return {
      module: AppModule,
      imports: [
        CoreModule.register(options),
        DatabaseModule,
        MetricsModule,
        BullModule.forRoot({
          prefix: config.QUEUE_PREFIX,
          connection: new Redis(endpoints.redisUrl, {
            maxRetriesPerRequest: null,
            lazyConnect: options.documentOnly === true,
          }),
        }),
        BullModule.registerQueue(
          { name: QueueName.Dispatch },
          { name: QueueName.DeadLetter },
          { name: QueueName.Maintenance },
          { name: QueueName.Stats },
          { name: QueueName.Retention },
        ),
        SettlementModule.register({ config, chain: options.chain ?? null }),
      ],
      controllers,
      providers: [
        { provide: APP_GUARD, useClass: AuthGuard },
        // After authentication: a body that could not be parsed is reported to authenticated callers only.
        { provide: APP_GUARD, useClass: UnusableBodyGuard },
        {
          provide: APP_FILTER,
          useFactory: (logger: Logger) => new HttpExceptionFilter(logger),
          inject: [LOGGER],
        },
        AuthService,
        AuthRepository,
        CredentialWatch,
        AccountsRepository,
        { provide: SPENDING_CAP_DOMAIN, useValue: capDomain },
        SpendingCapsRepository,
        SpendingCapsService,
        LedgerRepository,
        AccountLedgerService,
        JobsRepository,
        JobSubmissionRepository,
        DryRunService,
        AttemptsRepository,
        JobsService,
        DispatchEnqueuer,
        ArtifactsRepository,
        ArtifactsService,
        TensorsRepository,
        TensorsService,
        TensorRetentionService,
        ProvidersRepository,
        ProviderEarningsRepository,
        ProviderEarningsService,
        MarketRepository,
        MarketService,
        HealthService,
        HealthRepository,
        JobEventsBus,
        JobEventStream,
        ProviderViewService,
        ProviderStakesService,
        P2pService,
        NetworkDirectory,
        AttemptRunner,
        Adjudicator,
        DisprovedClaims,
        DispatchService,
        DevBootstrapService,
        AdminGuard,
        AdminAuthService,
        AdminSessionsRepository,
        AdminRepository,
        AdminService,
        AdminStatsService,
        StatsHistoryRepository,
        StatsHistoryService,
        ExportRepository,
        ExportService,
        AuditLogRepository,
        AuditLogService,
        SettingsRepository,
        SettingsService,
        ReputationRepository,
        ReputationService,
        VerificationRepository,
        VerificationPolicyService,
        CanaryService,
        VerifierService,
        VestingService,
        CapacityRepository,
        CapacityProbeService,
        TrustTierService,
        WebhooksRepository,
        WebhooksService,
        ...workerProviders,
      ],
    };
  }
}
