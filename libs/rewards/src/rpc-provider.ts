import { JsonRpcProvider } from 'ethers';

export interface RpcProviderOptions {
  /** How often `tx.wait()` and event filters poll, in ms (ethers' default is 4,000). */
  readonly pollingInterval?: number;
}

/**
 * A JSON-RPC provider for code that sends transactions and reads state it has just changed.
 *
 * ethers answers an identical read made within 250 ms from its cache (`cacheTimeout`). A wallet
 * reads its nonce with `eth_getTransactionCount(address, 'pending')` before each transaction, so two
 * transactions sent less than 250 ms apart — a debit mined at once on an automining chain, then a
 * claim — got the same nonce and the second failed `nonce too low`. Here every read asks the node.
 * The network is fixed (`staticNetwork`): the chain id is checked once by the caller, not per call.
 */
export function rpcProvider(
  rpcUrl: string,
  chainId?: number,
  options: RpcProviderOptions = {},
): JsonRpcProvider {
  return new JsonRpcProvider(rpcUrl, chainId, {
    staticNetwork: true,
    cacheTimeout: -1,
    pollingInterval: options.pollingInterval ?? 250,
  });
}
