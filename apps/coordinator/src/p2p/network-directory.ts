import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { RUNTIME_ENDPOINTS, type RuntimeEndpoints } from '../config/runtime-endpoints.js';

export interface CoordinatorPeer {
  peerId: string;
  multiaddrs: string[];
  signerAddress: string;
  updatedAt: number;
}

/** A peer entry older than this is considered gone (workers refresh theirs every 10 s). */
const PEER_TTL_MS = 30_000;

/**
 * Where agents reach the coordinator: each worker's libp2p node registers its multiaddrs in Redis,
 * and any API replica answers `GET /v1/network` from there.
 */
@Injectable()
export class NetworkDirectory implements OnModuleDestroy {
  private readonly redis: Redis;
  private readonly key: string;

  constructor(@Inject(RUNTIME_ENDPOINTS) endpoints: RuntimeEndpoints, @Inject(APP_CONFIG) config: AppConfig) {
    this.redis = new Redis(endpoints.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
    this.redis.on('error', () => undefined);
    this.key = `${config.QUEUE_PREFIX}:network:peers`;
  }

  async register(peer: Omit<CoordinatorPeer, 'updatedAt'>): Promise<void> {
    await this.connect();
    await this.redis.hset(this.key, peer.peerId, JSON.stringify({ ...peer, updatedAt: Date.now() }));
  }

  async unregister(peerId: string): Promise<void> {
    await this.connect();
    await this.redis.hdel(this.key, peerId);
  }

  async peers(now = Date.now()): Promise<CoordinatorPeer[]> {
    await this.connect();
    const all = await this.redis.hgetall(this.key);
    return Object.values(all)
      .map((v) => JSON.parse(v) as CoordinatorPeer)
      .filter((p) => now - p.updatedAt < PEER_TTL_MS)
      .sort((a, b) => a.peerId.localeCompare(b.peerId));
  }

  private async connect(): Promise<void> {
    if (this.redis.status === 'wait') await this.redis.connect();
  }

  onModuleDestroy(): void {
    this.redis.disconnect();
  }
}
