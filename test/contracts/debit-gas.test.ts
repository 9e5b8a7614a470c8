// Gas report: JobEscrow.debit per account at 1, 10 and 100 accounts a batch, each account with its
// own deposit and signed spending cap (first debit of each account, then a second one).
import { Wallet, ZeroHash } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { signSpendingCap, spendingCapDomain } from '@gpumesh/rewards';

import { deploySystem, increaseTime, startChain, type Chain, type System } from './chain.js';

const WINDOW = 10;
const SIZES = [1, 10, 100] as const;
/**
 * Measured 14,350 per account at 100 accounts with spending caps (one more storage word per account:
 * spent and cap share it); 8,898 before them.
 */
const DEBIT_GAS_PER_ACCOUNT_MAX = 15_000;

describe('debit gas on anvil', () => {
  let chain: Chain;
  let sys: System;

  beforeAll(async () => {
    chain = await startChain();
    sys = await deploySystem(chain, { challengeWindowSeconds: WINDOW, maxEpochSeconds: 60 });
  });

  afterAll(async () => {
    await chain?.stop();
  });

  it('reports gas per account', async () => {
    const total = 10_000_000n;
    await (await sys.distributor.postRoot(1, `0x${'11'.repeat(32)}`, ZeroHash, total)).wait();
    await increaseTime(chain, WINDOW);
    let batch = 0;
    const report: Record<string, number> = {};
    for (const size of SIZES) {
      const wallets = Array.from({ length: size }, () => Wallet.createRandom());
      const accounts = wallets.map((w) => w.address);
      await (await sys.token.mint(chain.addresses[0], 10n * BigInt(size))).wait();
      await (await sys.token.approve(sys.addresses.escrow, 10n * BigInt(size))).wait();
      for (const a of accounts) await (await sys.escrow.depositFor(a, 10n)).wait();
      const domain = spendingCapDomain(chain.anvil.chainId, sys.addresses.escrow);
      for (const w of wallets) {
        const signed = await signSpendingCap(w, domain, 10n);
        await (await sys.escrow.authorize(w.address, 10n, signed.signature)).wait();
      }
      const first = await (
        await sys.escrow.debit(
          1,
          batch++,
          accounts,
          accounts.map(() => 1n),
        )
      ).wait();
      const second = await (
        await sys.escrow.debit(
          1,
          batch++,
          accounts,
          accounts.map(() => 1n),
        )
      ).wait();
      report[`first${size}`] = Math.round(Number(first!.gasUsed) / size);
      report[`second${size}`] = Math.round(Number(second!.gasUsed) / size);
    }
    console.log(JSON.stringify({ debitGasPerAccount: report }));
    expect(report.first100).toBeLessThanOrEqual(DEBIT_GAS_PER_ACCOUNT_MAX);
  }, 120_000);
});
