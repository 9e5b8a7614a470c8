// JobEscrow spending caps: what a developer signed (EIP-712, EOA or ERC-1271) bounds everything that
// can ever be debited from it, whatever the committed batches say; caps only rise; anyone may submit
// a signed cap.
import { TypedDataEncoder, Wallet, ZeroHash, id, type ContractTransactionReceipt } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  SPENDING_CAP_TYPES,
  attachComputeToken,
  attachJobEscrow,
  signSpendingCap,
  spendingCapDigest,
  spendingCapDomain,
  type CommittedBatch,
  type SpendingCapDomain,
} from '@gpumesh/rewards';

import {
  debitBatch,
  deployMock,
  deploySystem,
  increaseTime,
  postRootWithDebits,
  revertName,
  startChain,
  type Chain,
  type DebitBatchInput,
  type System,
} from './chain.js';

const WINDOW = 10;

describe('JobEscrow spending caps on anvil', () => {
  let chain: Chain;
  let sys: System;
  let domain: SpendingCapDomain;
  let epoch = 0;

  beforeAll(async () => {
    chain = await startChain();
    sys = await deploySystem(chain, {
      challengeWindowSeconds: WINDOW,
      maxEpochSeconds: 60,
      mint: chain.addresses.slice(1, 4).map((to) => ({ to, amount: 10n ** 12n })),
    });
    for (const w of chain.wallets.slice(1, 4)) {
      const token = attachComputeToken(sys.addresses.token, w);
      await (await token.approve(sys.addresses.escrow, 2n ** 255n)).wait();
      await (await attachJobEscrow(sys.addresses.escrow, w).deposit(10_000n)).wait();
    }
    domain = spendingCapDomain(chain.anvil.chainId, sys.addresses.escrow);
  });

  afterAll(async () => {
    await chain?.stop();
  });

  /** Posts an epoch of `total` committing `batches`, lets it become final; returns it and its batches. */
  async function finalEpoch(
    total: bigint,
    batches: readonly DebitBatchInput[],
  ): Promise<{ e: number; committed: CommittedBatch[] }> {
    epoch += 1;
    const committed = await postRootWithDebits(sys, epoch, `0x${'22'.repeat(32)}`, ZeroHash, total, batches);
    await increaseTime(chain, WINDOW);
    return { e: epoch, committed };
  }

  /** The `DebitShort` events of a debit: `[account, owed, debited]`. */
  function shorts(receipt: ContractTransactionReceipt | null): [string, bigint, bigint][] {
    return (receipt?.logs ?? [])
      .map((l) => sys.escrow.interface.parseLog(l))
      .filter((l) => l?.name === 'DebitShort')
      .map((l) => [l!.args[1] as string, l!.args[2] as bigint, l!.args[3] as bigint]);
  }

  it('matches the contract: domain separator and digest of the library', async () => {
    expect(await sys.escrow.domainSeparator()).toBe(TypedDataEncoder.hashDomain(domain));
    expect(await sys.escrow.SPENDING_CAP_TYPEHASH()).toBe(
      id(TypedDataEncoder.from(SPENDING_CAP_TYPES).encodeType('SpendingCap')),
    );
    expect(spendingCapDigest(domain, chain.addresses[1], 5n)).toMatch(/^0x[0-9a-f]{64}$/);
  });

  it('debits nothing from an account without a cap, and never beyond the cap it signed', async () => {
    const dev = chain.addresses[1];
    const other = chain.addresses[2];
    const { e, committed } = await finalEpoch(1_010n, [
      { accounts: [dev], amounts: [1n] },
      { accounts: [dev], amounts: [200n] },
      { accounts: [dev], amounts: [150n] },
      { accounts: [other, dev], amounts: [10n, 5n] },
      { accounts: [dev], amounts: [700n] },
    ]);
    expect(await sys.escrow.spendingCapOf(dev)).toBe(0n);
    // No cap: nothing is taken, the batch still lands (it cannot be sent again).
    expect(shorts(await (await debitBatch(sys.escrow, e, committed[0])).wait())).toEqual([[dev, 1n, 0n]]);
    expect(await sys.escrow.spentBy(dev)).toBe(0n);
    const again = committed[0];
    expect(
      await revertName(() =>
        sys.escrow.debit.staticCall(e, again.index, again.accounts, again.amounts, again.proof),
      ),
    ).toBe('BatchAlreadyDebited');

    // Anyone (here account 0) submits the cap the developer signed.
    const signed = await signSpendingCap(chain.wallets[1], domain, 300n);
    const receipt = await (await sys.escrow.authorize(dev, 300n, signed.signature)).wait();
    const log = receipt!.logs.map((l) => sys.escrow.interface.parseLog(l)).find((l) => l?.name);
    expect(log?.name).toBe('SpendingCapAuthorized');
    expect(log?.args[0]).toBe(dev);
    expect(log?.args[1]).toBe(300n);
    expect(await sys.escrow.spendingCapOf(dev)).toBe(300n);

    expect(shorts(await (await debitBatch(sys.escrow, e, committed[1])).wait())).toEqual([]);
    expect(await sys.escrow.spentBy(dev)).toBe(200n);
    // Cumulative: 200 spent, so of 150 owed only 100 fit under the cap of 300.
    expect(shorts(await (await debitBatch(sys.escrow, e, committed[2])).wait())).toEqual([[dev, 150n, 100n]]);
    expect(await sys.escrow.spentBy(dev)).toBe(300n);
    // One account at its cap does not hold up the others of its batch.
    await (await attachJobEscrow(sys.addresses.escrow, chain.wallets[2]).setSpendingCap(1_000n)).wait();
    expect(shorts(await (await debitBatch(sys.escrow, e, committed[3])).wait())).toEqual([[dev, 5n, 0n]]);
    expect(await sys.escrow.spentBy(other)).toBe(10n);
    expect(await sys.escrow.spentBy(dev)).toBe(300n);
    expect(await sys.escrow.balanceOf(dev)).toBe(10_000n - 300n);

    // A higher cap lets debits resume.
    const higher = await signSpendingCap(chain.wallets[1], domain, 1_000n);
    await (
      await attachJobEscrow(sys.addresses.escrow, chain.wallets[3]).authorize(dev, 1_000n, higher.signature)
    ).wait();
    await (await debitBatch(sys.escrow, e, committed[4])).wait();
    expect(await sys.escrow.spentBy(dev)).toBe(1_000n);
    expect(await sys.distributor.fundedIn(e)).toBe(1_010n);
    expect(await sys.distributor.isFunded(e)).toBe(true);
  });

  it('refuses stale caps, forged signatures and caps signed for another escrow or chain', async () => {
    const dev = chain.addresses[1];
    const current = await sys.escrow.spendingCapOf(dev);
    const lower = await signSpendingCap(chain.wallets[1], domain, current - 1n);
    expect(await revertName(() => sys.escrow.authorize.staticCall(dev, current - 1n, lower.signature))).toBe(
      'StaleSpendingCap',
    );
    const same = await signSpendingCap(chain.wallets[1], domain, current);
    expect(await revertName(() => sys.escrow.authorize.staticCall(dev, current, same.signature))).toBe(
      'StaleSpendingCap',
    );
    const self = attachJobEscrow(sys.addresses.escrow, chain.wallets[1]);
    expect(await revertName(() => self.setSpendingCap.staticCall(current))).toBe('StaleSpendingCap');

    // Signed by someone else, for another amount, another chain, another escrow.
    const forged = await signSpendingCap(chain.wallets[2], domain, 10n ** 9n);
    expect(await revertName(() => sys.escrow.authorize.staticCall(dev, 10n ** 9n, forged.signature))).toBe(
      'InvalidSpendingCapSignature',
    );
    const mine = await signSpendingCap(chain.wallets[1], domain, 10n ** 9n);
    expect(await revertName(() => sys.escrow.authorize.staticCall(dev, 10n ** 9n + 1n, mine.signature))).toBe(
      'InvalidSpendingCapSignature',
    );
    for (const d of [
      spendingCapDomain(1, sys.addresses.escrow),
      spendingCapDomain(chain.anvil.chainId, sys.addresses.distributor),
    ]) {
      const elsewhere = await signSpendingCap(chain.wallets[1], d, 10n ** 9n);
      expect(
        await revertName(() => sys.escrow.authorize.staticCall(dev, 10n ** 9n, elsewhere.signature)),
      ).toBe('InvalidSpendingCapSignature');
    }
    expect(await revertName(() => sys.escrow.authorize.staticCall(dev, 10n ** 9n, '0x'))).toBe(
      'InvalidSpendingCapSignature',
    );
    // The developer may raise its own cap directly; caps beyond uint128 are stored as its maximum.
    await (await self.setSpendingCap(2n ** 200n)).wait();
    expect(await sys.escrow.spendingCapOf(dev)).toBe(2n ** 128n - 1n);
    expect(await revertName(() => self.setSpendingCap.staticCall(2n ** 255n))).toBe('StaleSpendingCap');
  });

  it('accepts a contract account’s ERC-1271 approval, and not someone else’s signature for it', async () => {
    const wallet = await deployMock(chain, 'ERC1271WalletMock', 3);
    const account = await wallet.getAddress();
    await (await sys.token.mint(chain.addresses[0], 500n)).wait();
    await (await sys.token.approve(sys.addresses.escrow, 500n)).wait();
    await (await sys.escrow.depositFor(account, 500n)).wait();
    const bySomeoneElse = await chain.wallets[1].signTypedData(domain, SPENDING_CAP_TYPES, {
      account,
      cap: 400n,
    });
    expect(await revertName(() => sys.escrow.authorize.staticCall(account, 400n, bySomeoneElse))).toBe(
      'InvalidSpendingCapSignature',
    );
    const byOwner = await chain.wallets[3].signTypedData(domain, SPENDING_CAP_TYPES, { account, cap: 400n });
    await (await sys.escrow.authorize(account, 400n, byOwner)).wait();
    expect(await sys.escrow.spendingCapOf(account)).toBe(400n);
    const { e, committed } = await finalEpoch(400n, [{ accounts: [account], amounts: [400n] }]);
    expect(shorts(await (await debitBatch(sys.escrow, e, committed[0])).wait())).toEqual([]);
    expect(await sys.escrow.spentBy(account)).toBe(400n);
  });

  it('signs with a fresh key too (no chain account needed to sign)', async () => {
    const key = Wallet.createRandom();
    const signed = await signSpendingCap(key, domain, 7n);
    await (await sys.escrow.authorize(key.address, 7n, signed.signature)).wait();
    expect(await sys.escrow.spendingCapOf(key.address)).toBe(7n);
  });
});
