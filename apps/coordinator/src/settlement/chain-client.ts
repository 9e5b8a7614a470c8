import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { JsonRpcProvider, Wallet } from 'ethers';
import {
  attachComputeToken,
  attachJobEscrow,
  attachProviderStaking,
  attachRewardsDistributor,
  type ComputeTokenContract,
  type JobEscrowContract,
  type ProviderStakingContract,
  type EpochDomain,
  type RewardsDistributorContract,
  rpcProvider,
} from '@gpumesh/rewards';
import { SETTLEMENT_CHAIN, type SettlementChain } from './settlement-chain.js';

/** Connections to the settlement chain: a read provider, the settler wallet and the contracts. */
@Injectable()
export class ChainClient implements OnModuleDestroy {
  readonly provider: JsonRpcProvider;
  readonly settler: Wallet;
  readonly distributor: RewardsDistributorContract;
  readonly escrow: JobEscrowContract;
  /** Holds SLASHER_ROLE on ProviderStaking (the settler key unless SLASHER_KEY says otherwise). */
  readonly slasher: Wallet;
  /** ProviderStaking, when its address is configured. */
  readonly staking: ProviderStakingContract | null;
  private keyPromise: Promise<string> | null = null;
  private tokenPromise: Promise<ComputeTokenContract> | null = null;

  constructor(@Inject(SETTLEMENT_CHAIN) readonly chain: SettlementChain) {
    this.provider = rpcProvider(chain.rpcUrl, chain.chainId);
    this.settler = new Wallet(chain.settlerKey, this.provider);
    this.distributor = attachRewardsDistributor(chain.contracts.distributor, this.provider);
    this.escrow = attachJobEscrow(chain.contracts.escrow, this.provider);
    this.slasher = new Wallet(chain.slasherKey, this.provider);
    this.staking = chain.contracts.staking
      ? attachProviderStaking(chain.contracts.staking, this.provider)
      : null;
  }

  /** The chain and distributor every leaf of an epoch file is bound to, and the escrow that funds it. */
  get epochDomain(): EpochDomain {
    return {
      chainId: this.chain.chainId,
      distributor: this.chain.contracts.distributor,
      escrow: this.chain.contracts.escrow,
    };
  }

  /**
   * Identifies the chain and contracts: `chainId:genesisHash:distributor`. A fresh dev anvil has a
   * new genesis hash, so its journal, deposit cursor and deposits never mix with an older chain's.
   */
  chainKey(): Promise<string> {
    this.keyPromise ??= this.provider.getBlock(0).then((genesis) => {
      if (!genesis?.hash) throw new Error('the chain has no genesis block');
      return `${this.chain.chainId}:${genesis.hash}:${this.chain.contracts.distributor.toLowerCase()}`;
    });
    this.keyPromise.catch(() => {
      this.keyPromise = null;
    });
    return this.keyPromise;
  }

  token(): Promise<ComputeTokenContract> {
    this.tokenPromise ??= (async () =>
      attachComputeToken(this.chain.contracts.token ?? (await this.distributor.token()), this.provider))();
    return this.tokenPromise;
  }

  onModuleDestroy(): void {
    this.provider.destroy();
  }
}
