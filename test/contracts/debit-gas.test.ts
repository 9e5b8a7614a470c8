// Gas report: JobEscrow.debit per account at 1, 10 and 100 accounts a batch, each account with its
// own deposit and signed spending cap (first debit of each account, then a second one), each batch
// proved against the epoch's funding root.
import { Wallet, ZeroHash } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { signSpendingCap, spendingCapDomain } from '@gpumesh/rewards';

import {
  debitBatch,
  deploySystem,
  increaseTime,
  postRootWithDebits,
  startChain,
  type Chain,
  type System,
} from './chain.js';

const WINDOW = 10;
const SIZES = [1, 10, 100] as const;
/**
 * Measured 14,586 per account at 100 accounts with spending caps and the batch's proof against the
 * funding root (14,350 before the proof; 8,898 before spending caps).
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
    // Every batch is committed with the epoch's root, so the accounts are funded and the batches cut
    // first: for each size, a first and a second debit of the same accounts.
    const batches: { accounts: string[]; amounts: bigint[] }[] = [];
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
      const ones = accounts.map(() => 1n);
      batches.push({ accounts, amounts: ones }, { accounts, amounts: ones });
    }
    const total = batches.reduce((s, b) => s + BigInt(b.accounts.length), 0n);
    const committed = await postRootWithDebits(sys, 1, `0x${'11'.repeat(32)}`, ZeroHash, total, batches);
    await increaseTime(chain, WINDOW);
    const report: Record<string, number> = {};
    for (const [i, size] of SIZES.entries()) {
      const first = await (await debitBatch(sys.escrow, 1, committed[2 * i])).wait();
      const second = await (await debitBatch(sys.escrow, 1, committed[2 * i + 1])).wait();
      report[`first${size}`] = Math.round(Number(first!.gasUsed) / size);
      report[`second${size}`] = Math.round(Number(second!.gasUsed) / size);
    }
    expect(await sys.distributor.isFunded(1)).toBe(true);
    console.log(JSON.stringify({ debitGasPerAccount: report }));
    expect(report.first100).toBeLessThanOrEqual(DEBIT_GAS_PER_ACCOUNT_MAX);
  }, 120_000);
});
