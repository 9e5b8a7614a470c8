import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { JsonRpcProvider } from 'ethers';
import {
  attachProviderStaking,
  readStake,
  type ProviderStakingContract,
  type StakeInfo,
} from '@gpumesh/rewards';
import { SETTLEMENT_CHAIN, type SettlementChain } from './settlement-chain.js';

/** How long a stake read is reused (the dashboard polls provider pages every few seconds). */
const STAKE_CACHE_MS = 5_000;

export type StakeView =
  { available: true; stake: StakeInfo; staking: string } | { available: false; reason: string };

/**
 * Reads providers' stakes from ProviderStaking for the admin API, in any role that knows the chain
 * (a process that settles; an API-only process has no chain and says so).
 */
@Injectable()
export class StakeReader implements OnModuleDestroy {
  private provider: JsonRpcProvider | null = null;
  private staking: ProviderStakingContract | null = null;
  private readonly cache = new Map<string, { at: number; view: StakeView }>();

  constructor(@Inject(SETTLEMENT_CHAIN) private readonly chain: SettlementChain | null) {}

  async stakeOf(address: string): Promise<StakeView> {
    if (!this.chain) return { available: false, reason: 'no chain: settlement is off in this process' };
    const staking = this.chain.contracts.staking;
    if (!staking) return { available: false, reason: 'no ProviderStaking address configured' };
    const key = address.toLowerCase();
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < STAKE_CACHE_MS) return hit.view;
    this.provider ??= new JsonRpcProvider(this.chain.rpcUrl, this.chain.chainId, { staticNetwork: true });
    this.staking ??= attachProviderStaking(staking, this.provider);
    let view: StakeView;
    try {
      view = { available: true, stake: await readStake(this.staking, address), staking };
    } catch (err) {
      view = { available: false, reason: `chain unreachable: ${(err as Error).message.slice(0, 200)}` };
    }
    this.cache.set(key, { at: Date.now(), view });
    if (this.cache.size > 10_000) this.cache.clear();
    return view;
  }

  onModuleDestroy(): void {
    this.provider?.destroy();
  }
}
