import { NonceManager, Wallet, type Provider, type Signer } from 'ethers';

import { ANVIL_DEV_KEYS } from './anvil-keys.js';
import { attachComputeToken, attachJobEscrow } from './contracts/index.js';

/**
 * The local dev chain's faucet: anvil's well-known account 8 (a public test key). The coordinator's
 * dev chain mints it tokens at deploy; it funds wallets there (`gpumesh dev fund`, the agent's
 * `dev-fund`, `npm start`'s local agents), so it never competes for nonces with the settler or slasher.
 */
export const DEV_FAUCET_ANVIL_INDEX = 8;

/** What one wallet gets from the faucet: wei for gas and token base units. */
export interface DevFaucetGrant {
  to: string;
  wei: bigint;
  tokens: bigint;
}

/**
 * Sends each grant's ETH and tokens from the dev faucet (on a dev chain only: the key is public) and
 * waits until every transaction is mined. Returns their hashes, in order.
 */
export async function fundFromDevFaucet(
  provider: Provider,
  token: string,
  grants: readonly DevFaucetGrant[],
): Promise<string[]> {
  const faucet = new NonceManager(new Wallet(ANVIL_DEV_KEYS[DEV_FAUCET_ANVIL_INDEX], provider));
  const tokenContract = attachComputeToken(token, faucet);
  const sent = [];
  for (const grant of grants) {
    if (grant.wei > 0n) sent.push(await faucet.sendTransaction({ to: grant.to, value: grant.wei }));
    if (grant.tokens > 0n) sent.push(await tokenContract.transfer(grant.to, grant.tokens));
  }
  await Promise.all(sent.map((tx) => tx.wait()));
  return sent.map((tx) => tx.hash);
}

/**
 * Deposits `amount` of the signer's tokens into the JobEscrow as a developer does: approve, then
 * deposit. The coordinator credits the deposit to the signer's account once it is confirmed.
 */
export async function depositIntoEscrow(
  signer: Signer,
  contracts: { token: string; escrow: string },
  amount: bigint,
): Promise<string[]> {
  if (amount <= 0n) return [];
  const approve = await attachComputeToken(contracts.token, signer).approve(contracts.escrow, amount);
  await approve.wait();
  const deposit = await attachJobEscrow(contracts.escrow, signer).deposit(amount);
  await deposit.wait();
  return [approve.hash, deposit.hash];
}
