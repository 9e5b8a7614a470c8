import { readFileSync } from 'node:fs';
import { getAddress } from 'ethers';
import { spendingCapDomain, type SpendingCapDomain } from '@gpumesh/rewards';
import { ConfigError, type AppConfig } from '../config/config.js';

/** The part of a worker's settlement chain (settlement/settlement-chain.ts) the domain comes from. */
export interface EscrowChain {
  readonly chainId: number;
  readonly contracts: { readonly escrow: string };
}

/** The EIP-712 domain developers sign spending caps in, or null when this coordinator settles on no chain. */
export const SPENDING_CAP_DOMAIN = Symbol('SPENDING_CAP_DOMAIN');

/**
 * The escrow's spending-cap domain: the chain a worker settles on (the local dev chain included), or,
 * in an API-only process, the configured CHAIN_ID and the escrow of CONTRACTS_FILE or ESCROW_ADDRESS.
 * Null without settlement (then balances are not escrowed and no cap applies), and for an API
 * process configured with neither (it cannot check caps: it says so at boot).
 */
export function spendingCapDomainOf(config: AppConfig, chain: EscrowChain | null): SpendingCapDomain | null {
  if (!config.SETTLEMENT_ENABLED) return null;
  if (chain) return spendingCapDomain(chain.chainId, chain.contracts.escrow);
  if (config.CONTRACTS_FILE) {
    let escrow: unknown;
    try {
      escrow = (JSON.parse(readFileSync(config.CONTRACTS_FILE, 'utf8')) as { escrow?: unknown }).escrow;
      return spendingCapDomain(config.CHAIN_ID, getAddress(String(escrow)));
    } catch (err) {
      throw new ConfigError(
        `CONTRACTS_FILE ${config.CONTRACTS_FILE}: no escrow address for spending caps (${(err as Error).message})`,
      );
    }
  }
  if (config.ESCROW_ADDRESS) return spendingCapDomain(config.CHAIN_ID, getAddress(config.ESCROW_ADDRESS));
  return null;
}
