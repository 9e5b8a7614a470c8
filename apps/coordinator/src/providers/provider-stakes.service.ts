import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { JsonRpcProvider, getAddress } from 'ethers';
import type { Logger } from 'pino';
import {
  attachProviderStaking,
  readStake,
  type ProviderStakingContract,
  type StakeInfo,
} from '@gpumesh/rewards';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { LOGGER } from '../logging/logger.js';
import { SETTLEMENT_CHAIN, type SettlementChain } from '../settlement/settlement-chain.js';

/** Stake reads in flight at once. */
const READ_CONCURRENCY = 8;
/** How often the staking contract's logs are polled for providers whose stake changed. */
const LOG_POLL_MS = 1_000;
/** Most blocks one log poll asks for (a long outage catches up in steps). */
const LOG_POLL_MAX_BLOCKS = 5_000;
/** An address as an indexed topic: 12 zero bytes, then the 20 address bytes. */
const ADDRESS_TOPIC_PREFIX = `0x${'0'.repeat(24)}`;
/** An address no advert named for this long is no longer tracked. */
const FORGET_AFTER_MS = 10 * 60_000;

/** A provider's stake as placement uses it (base units). */
export interface ProviderStake {
  bonded: bigint;
  /** Frozen by a pending slash (0 until the staking contract reports such a figure). */
  frozen: bigint;
  /** When it was read (ms since epoch). */
  readAt: number;
}

interface Tracked {
  stake: ProviderStake | null;
  seenAt: number;
  /** When the next read is due (ms since epoch). */
  dueAt: number;
  reading: boolean;
}

export type StakeListener = (address: string, stake: ProviderStake) => void;

/**
 * Keeps the stake of every live provider's address fresh from ProviderStaking: read on its first
 * advert, then every STAKE_REFRESH_SECONDS, and at once when the contract logs an event naming it
 * (Staked, UnbondRequested, Withdrawn, Slashed). A failed read keeps the last known value; an outage
 * is logged once. Gating is on exactly when the process knows a staking contract.
 */
@Injectable()
export class ProviderStakesService implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly staking: string | null;
  private readonly tracked = new Map<string, Tracked>();
  private readonly listeners: StakeListener[] = [];
  private provider: JsonRpcProvider | null = null;
  private contract: ProviderStakingContract | null = null;
  private timer: NodeJS.Timeout | null = null;
  private logTimer: NodeJS.Timeout | null = null;
  private reads = 0;
  private lastBlock: number | null = null;
  private outage = false;
  private logOutage = false;
  private stopped = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(SETTLEMENT_CHAIN) private readonly chain: SettlementChain | null,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.staking = chain?.contracts.staking ?? null;
  }

  /** Whether stake gates placement in this process. */
  get gated(): boolean {
    return this.staking !== null;
  }

  /** Called whenever a read changes an address's stake. */
  onChange(listener: StakeListener): void {
    this.listeners.push(listener);
  }

  /** The last known stake of an address (undefined until first read). */
  stakeOf(address: string): ProviderStake | undefined {
    return this.tracked.get(address.toLowerCase())?.stake ?? undefined;
  }

  /** An advert named this address: keep its stake fresh (read at once the first time). */
  track(address: string, now = Date.now()): void {
    if (!this.gated) return;
    const key = address.toLowerCase();
    const t = this.tracked.get(key);
    if (t) {
      t.seenAt = now;
      return;
    }
    this.tracked.set(key, { stake: null, seenAt: now, dueAt: now, reading: false });
    this.pump();
  }

  /** Reads the address's stake now (and waits for it). */
  async refresh(address: string): Promise<ProviderStake | undefined> {
    if (!this.gated) return undefined;
    const key = address.toLowerCase();
    let t = this.tracked.get(key);
    if (!t) {
      t = { stake: null, seenAt: Date.now(), dueAt: 0, reading: false };
      this.tracked.set(key, t);
    }
    await this.read(key, t);
    return t.stake ?? undefined;
  }

  onApplicationBootstrap(): void {
    if (this.config.ROLE === 'api') return;
    if (!this.gated) {
      this.logger.warn(
        { minStake: this.config.MIN_PROVIDER_STAKE.toString() },
        'placement is not stake-gated: no ProviderStaking configured',
      );
      return;
    }
    this.logger.info(
      {
        staking: this.staking,
        minStake: this.config.MIN_PROVIDER_STAKE.toString(),
        stakePerInFlightValue: this.config.STAKE_PER_INFLIGHT_VALUE,
        refreshSeconds: this.config.STAKE_REFRESH_SECONDS,
      },
      'placement is stake-gated',
    );
    this.stakingContract();
    void this.provider
      ?.getBlockNumber()
      .then((block) => (this.lastBlock ??= block))
      .catch(() => undefined);
    this.timer = setInterval(() => this.pump(), 500);
    this.timer.unref();
    this.logTimer = setInterval(() => void this.pollLogs(), LOG_POLL_MS);
    this.logTimer.unref();
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.logTimer) clearInterval(this.logTimer);
    this.provider?.destroy();
    this.provider = null;
  }

  /** Starts due reads up to the concurrency bound; forgets addresses no advert named for a while. */
  private pump(now = Date.now()): void {
    if (this.stopped) return;
    for (const [key, t] of this.tracked) {
      if (this.reads >= READ_CONCURRENCY) return;
      if (now - t.seenAt > FORGET_AFTER_MS) {
        this.tracked.delete(key);
        continue;
      }
      if (!t.reading && t.dueAt <= now) void this.read(key, t);
    }
  }

  private stakingContract(): ProviderStakingContract {
    const chain = this.chain as SettlementChain;
    this.provider ??= new JsonRpcProvider(chain.rpcUrl, chain.chainId, {
      staticNetwork: true,
      cacheTimeout: -1,
    });
    this.contract ??= attachProviderStaking(this.staking as string, this.provider);
    return this.contract;
  }

  private async read(key: string, t: Tracked): Promise<void> {
    if (t.reading || this.stopped) return;
    t.reading = true;
    this.reads++;
    try {
      const info: StakeInfo = await readStake(this.stakingContract(), getAddress(key));
      const stake: ProviderStake = { bonded: info.bonded, frozen: info.frozen, readAt: Date.now() };
      const changed = t.stake === null || t.stake.bonded !== stake.bonded || t.stake.frozen !== stake.frozen;
      t.stake = stake;
      if (this.outage) {
        this.outage = false;
        this.logger.info({ staking: this.staking }, 'stake reads recovered');
      }
      if (changed) for (const l of this.listeners) l(key, stake);
    } catch (err) {
      if (!this.outage && !this.stopped) {
        this.outage = true;
        this.logger.warn(
          { err, staking: this.staking },
          'cannot read provider stakes; placement keeps the last known values until reads succeed',
        );
      }
    } finally {
      t.reading = false;
      t.dueAt = Date.now() + this.config.STAKE_REFRESH_SECONDS * 1000;
      this.reads--;
    }
  }

  /** Addresses named by the staking contract's recent events are re-read at once. */
  private async pollLogs(): Promise<void> {
    if (this.stopped) return;
    try {
      this.stakingContract();
      const provider = this.provider as JsonRpcProvider;
      const head = await provider.getBlockNumber();
      if (this.lastBlock === null) {
        this.lastBlock = head;
        return;
      }
      const from = this.lastBlock + 1;
      if (from > head) return;
      const to = Math.min(head, from + LOG_POLL_MAX_BLOCKS - 1);
      const logs = await provider.getLogs({ address: this.staking as string, fromBlock: from, toBlock: to });
      this.lastBlock = to;
      const now = Date.now();
      // Every event of ProviderStaking that concerns a provider has it as its first indexed topic.
      for (const log of logs) {
        const topic = log.topics[1]?.toLowerCase();
        if (topic === undefined || !topic.startsWith(ADDRESS_TOPIC_PREFIX) || topic.length !== 66) continue;
        const t = this.tracked.get(`0x${topic.slice(26)}`);
        if (t) t.dueAt = now;
      }
      if (this.logOutage) this.logOutage = false;
      if (logs.length > 0) this.pump(now);
    } catch (err) {
      if (!this.logOutage && !this.stopped) {
        this.logOutage = true;
        this.logger.warn(
          { err, staking: this.staking },
          'cannot poll staking events; stakes refresh on the timer',
        );
      }
    }
  }
}
