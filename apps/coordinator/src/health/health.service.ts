import { Inject, Injectable, Optional, OnModuleDestroy } from '@nestjs/common';
import { JsonRpcProvider } from 'ethers';
import { Redis } from 'ioredis';
import { RUNTIME_ENDPOINTS, type RuntimeEndpoints } from '../config/runtime-endpoints.js';
import { P2pService } from '../p2p/p2p.service.js';
import { SETTLEMENT_CHAIN, type SettlementChain } from '../settlement/settlement-chain.js';
import { SettlementRepository } from '../settlement/settlement.repository.js';
import { HealthRepository } from './health.repository.js';

export interface DependencyHealth {
  status: 'up' | 'down';
  latencyMs: number;
  error?: string;
}

export interface ChainHealth extends DependencyHealth {
  chainId: number;
  blockNumber?: number;
}

export interface P2pHealth {
  /** up: the node runs and agents are connected; idle: it runs with none connected. */
  status: 'up' | 'idle' | 'down';
  peers: number;
}

export interface SettlementHealth {
  /** degraded: an epoch waits for an operator, lacks funding, or a closed epoch waits long to be posted. */
  status: 'up' | 'degraded';
  epochs: Record<string, number>;
  unfundedBaseUnits: string;
  blockedEpochs: number;
  postingLagSeconds: number;
}

export interface HealthReport {
  /** ok; degraded (serving, but the chain, p2p or settlement needs a look); unavailable (503). */
  status: 'ok' | 'degraded' | 'unavailable';
  checks: {
    database: DependencyHealth;
    redis: DependencyHealth;
    /** Present when this process settles on a chain. */
    chain?: ChainHealth;
    /** Present when this process runs the p2p node (roles all and worker). */
    p2p?: P2pHealth;
    /** Present when this process settles on a chain and the database answers. */
    settlement?: SettlementHealth;
  };
}

const CHECK_TIMEOUT_MS = 2_000;
/** A closed epoch not posted after this long makes settlement `degraded`. */
export const POSTING_LAG_DEGRADED_SECONDS = 600;

async function timed<T>(check: () => Promise<T>): Promise<DependencyHealth & { value?: T }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const value = await Promise.race([
      check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)),
          CHECK_TIMEOUT_MS,
        );
      }),
    ]);
    return { status: 'up', latencyMs: Math.round((performance.now() - started) * 100) / 100, value };
  } catch (err) {
    return {
      status: 'down',
      latencyMs: Math.round(performance.now() - started),
      error: err instanceof Error ? err.message : String(err),
    };
  } finally {
    clearTimeout(timer);
  }
}

@Injectable()
export class HealthService implements OnModuleDestroy {
  private readonly redis: Redis;
  private readonly rpc: JsonRpcProvider | null;

  constructor(
    private readonly repo: HealthRepository,
    @Inject(RUNTIME_ENDPOINTS) endpoints: RuntimeEndpoints,
    private readonly p2p: P2pService,
    private readonly settlement: SettlementRepository,
    @Optional() @Inject(SETTLEMENT_CHAIN) private readonly chain: SettlementChain | null = null,
  ) {
    this.redis = new Redis(endpoints.redisUrl, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    this.redis.on('error', () => undefined);
    this.rpc = chain
      ? new JsonRpcProvider(chain.rpcUrl, chain.chainId, {
          staticNetwork: true,
          batchMaxCount: 1,
          // every check asks the node: a cached block number would hide an RPC that stopped answering
          cacheTimeout: -1,
        })
      : null;
  }

  onModuleDestroy(): void {
    this.redis.disconnect();
    this.rpc?.destroy();
  }

  async check(): Promise<HealthReport> {
    const [database, redis, chain] = await Promise.all([
      timed(() => this.repo.ping()),
      timed(async () => {
        if (this.redis.status === 'wait') await this.redis.connect();
        return this.redis.ping();
      }),
      this.rpc ? timed(() => this.rpc!.getBlockNumber()) : Promise.resolve(null),
    ]);
    const checks: HealthReport['checks'] = { database: strip(database), redis: strip(redis) };
    if (chain && this.chain) {
      checks.chain = { ...strip(chain), chainId: this.chain.chainId };
      if (chain.value !== undefined) checks.chain.blockNumber = chain.value;
    }
    if (this.p2p.enabled) {
      const peers = this.p2p.connectedPeers().length;
      checks.p2p = { status: !this.p2p.running ? 'down' : peers > 0 ? 'up' : 'idle', peers };
    }
    if (this.chain && database.status === 'up') {
      const [epochs, lag] = await Promise.all([
        this.settlement.settlementHealth().catch(() => null),
        this.repo.postingLagSeconds().catch(() => null),
      ]);
      if (epochs) {
        const postingLagSeconds = lag ?? 0;
        const degraded =
          epochs.blocked > 0 || epochs.unfunded > 0n || postingLagSeconds > POSTING_LAG_DEGRADED_SECONDS;
        checks.settlement = {
          status: degraded ? 'degraded' : 'up',
          epochs: epochs.byState,
          unfundedBaseUnits: epochs.unfunded.toString(),
          blockedEpochs: epochs.blocked,
          postingLagSeconds,
        };
      }
    }
    const ready = database.status === 'up' && redis.status === 'up';
    const degraded =
      checks.chain?.status === 'down' ||
      checks.p2p?.status === 'down' ||
      checks.settlement?.status === 'degraded';
    return { status: !ready ? 'unavailable' : degraded ? 'degraded' : 'ok', checks };
  }
}

function strip(h: DependencyHealth & { value?: unknown }): DependencyHealth {
  const { value: _value, ...rest } = h;
  return rest;
}
