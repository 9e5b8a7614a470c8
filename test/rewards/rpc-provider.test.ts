// rpcProvider on a real anvil: a plain wallet (no NonceManager) sends transactions back to back,
// each right after the last was mined, as `gpumesh-agent claim` does after funding an epoch. With
// ethers' default 250 ms read cache the second one reused the first one's nonce (`nonce too low`).
import { Wallet, parseEther } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { rpcProvider } from '@gpumesh/rewards';
import { startAnvil, type AnvilInstance } from '@gpumesh/devchain';

describe('rpcProvider', () => {
  let anvil: AnvilInstance;
  beforeAll(async () => {
    anvil = await startAnvil();
  });
  afterAll(async () => {
    await anvil?.stop();
  });

  it('gives each of a plain wallet’s back-to-back transactions its own nonce', async () => {
    const provider = rpcProvider(anvil.rpcUrl);
    try {
      const account = anvil.accounts[3]!;
      const wallet = new Wallet(account.privateKey, provider);
      const start = await provider.getTransactionCount(wallet.address, 'pending');
      const nonces: number[] = [];
      for (let i = 0; i < 6; i++) {
        const tx = await wallet.sendTransaction({
          to: anvil.accounts[4]!.address,
          value: parseEther('0.01'),
        });
        const receipt = await tx.wait();
        expect(receipt?.status).toBe(1);
        nonces.push(tx.nonce);
      }
      expect(nonces).toEqual([0, 1, 2, 3, 4, 5].map((n) => start + n));
    } finally {
      provider.destroy();
    }
  });

  it('reads state the last transaction changed, not a cached answer', async () => {
    const provider = rpcProvider(anvil.rpcUrl);
    try {
      const to = Wallet.createRandom().address;
      const wallet = new Wallet(anvil.accounts[5]!.privateKey, provider);
      expect(await provider.getBalance(to)).toBe(0n);
      await (await wallet.sendTransaction({ to, value: 7n })).wait();
      expect(await provider.getBalance(to)).toBe(7n);
    } finally {
      provider.destroy();
    }
  });
});
