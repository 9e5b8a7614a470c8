import { BaseContract, ZeroAddress, ZeroHash, id, type ContractTransactionResponse } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  SLASHER_ROLE,
  SLASH_REVIEWER_ROLE,
  attachComputeToken,
  attachJobEscrow,
  attachProviderStaking,
  closeEpoch,
  committedBatches,
  deployJobEscrow,
  deployRewardsDistributor,
  epochFileHash,
  fundingLeaf,
  toHex,
  type CommittedBatch,
} from '@gpumesh/rewards';

import {
  deployMock,
  deploySystem,
  increaseTime,
  nestedRevertName,
  postRootWithDebits,
  revertName,
  startChain,
  type Chain,
  type System,
} from './chain.js';

describe('JobEscrow and ProviderStaking on anvil', () => {
  let chain: Chain;
  let sys: System;

  beforeAll(async () => {
    chain = await startChain();
    sys = await deploySystem(chain, {
      challengeWindowSeconds: 60,
      maxEpochSeconds: 480,
      fundingMarginSeconds: 60,
      unlockDelaySeconds: 600,
      unbondingDelaySeconds: 900,
      mint: chain.addresses.slice(1, 8).map((to) => ({ to, amount: 10n ** 12n })),
    });
    for (const w of chain.wallets.slice(1, 8)) {
      const token = attachComputeToken(sys.addresses.token, w);
      await (await token.approve(sys.addresses.escrow, 2n ** 255n)).wait();
      await (await token.approve(sys.addresses.staking, 2n ** 255n)).wait();
    }
  });

  afterAll(async () => {
    await chain?.stop();
  });

  it('has six decimals', async () => {
    expect(await sys.token.decimals()).toBe(6n);
  });

  it('withdraws a deposit only after the unlock delay', async () => {
    const dev = attachJobEscrow(sys.addresses.escrow, chain.wallets[1]);
    const receipt = await (await dev.deposit(5_000_000n)).wait();
    const log = receipt!.logs
      .map((l) => sys.escrow.interface.parseLog(l))
      .find((l) => l?.name === 'Deposited');
    expect(log?.args[0]).toBe(chain.addresses[1]);
    expect(log?.args[1]).toBe(5_000_000n);
    expect(await revertName(() => dev.withdraw.staticCall(1n))).toBe('NotUnlocked');
    await (await dev.requestUnlock()).wait();
    expect(await revertName(() => dev.withdraw.staticCall(1n))).toBe('NotUnlocked');
    await increaseTime(chain, 600);
    expect(await revertName(() => dev.withdraw.staticCall(5_000_001n))).toBe('InsufficientBalance');
    await (await dev.withdraw(2_000_000n)).wait();
    expect(await sys.escrow.balanceOf(chain.addresses[1])).toBe(3_000_000n);
    // The unlock is spent by the withdrawal.
    expect(await revertName(() => dev.withdraw.staticCall(1n))).toBe('NotUnlocked');
  });

  it('debits only the batches committed with a final root, each once, by anyone, never beyond the total', async () => {
    const a = chain.addresses[2];
    const b = chain.addresses[3];
    for (const w of [chain.wallets[2], chain.wallets[3]]) {
      const dev = attachJobEscrow(sys.addresses.escrow, w);
      await (await dev.deposit(1_000n)).wait();
      await (await dev.setSpendingCap(10_000n)).wait();
    }
    const dist = sys.distributor.interface;
    const file = closeEpoch(
      new Map(),
      [{ provider: chain.addresses[7], receipts: [{ id: 'j1', amount: 600n }] }],
      {
        epoch: 1,
        ...sys.domain,
        escrow: sys.addresses.escrow,
        fundingBatchSize: 1,
        debits: [
          { account: a, amount: 400n },
          { account: b, amount: 200n },
        ],
      },
    );
    const [first, second] = committedBatches(file);
    const owed = new Map([
      [a.toLowerCase(), 400n],
      [b.toLowerCase(), 200n],
    ]);
    expect(first.amounts).toEqual([owed.get(first.accounts[0])]);
    // The library's leaf is the contract's.
    expect(await sys.escrow.debitLeaf(1, first.index, first.accounts, first.amounts)).toBe(
      toHex(fundingLeaf({ chainId: sys.domain.chainId, escrow: sys.addresses.escrow }, 1, first)),
    );
    const stranger = attachJobEscrow(sys.addresses.escrow, chain.wallets[5]);
    const debit = (e: number, x: CommittedBatch, over: Partial<CommittedBatch> = {}) => {
      const y = { ...x, ...over };
      return stranger.debit.staticCall(e, y.index, y.accounts, y.amounts, y.proof);
    };
    // Nothing posted: no funding root to prove against.
    expect(await revertName(() => debit(1, first))).toBe('InvalidDebitProof');
    await (
      await sys.distributor.postRoot(1, file.root, epochFileHash(file), 600n, file.funding!.root)
    ).wait();
    expect(await sys.distributor.fundingRoot(1)).toBe(file.funding!.root);
    expect(await nestedRevertName(() => debit(1, first), dist)).toBe('EpochNotFinal');
    await increaseTime(chain, 60);
    // Anything but a committed batch is refused: other amounts, accounts, index, epoch.
    expect(await revertName(() => debit(1, first, { amounts: [first.amounts[0] + 1n] }))).toBe(
      'InvalidDebitProof',
    );
    expect(await revertName(() => debit(1, first, { accounts: second.accounts }))).toBe('InvalidDebitProof');
    expect(await revertName(() => debit(1, first, { index: 1 }))).toBe('InvalidDebitProof');
    expect(await revertName(() => debit(2, first))).toBe('InvalidDebitProof');
    expect(await revertName(() => debit(1, first, { proof: second.proof }))).toBe('InvalidDebitProof');
    expect(await revertName(() => debit(1, first, { amounts: [1n, 2n] }))).toBe('LengthMismatch');

    // Anyone sends a committed batch (here an account with no role); a retry is refused.
    const receipt = await (
      await stranger.debit(1, first.index, first.accounts, first.amounts, first.proof)
    ).wait();
    const names = receipt!.logs.map((l) => sys.escrow.interface.parseLog(l)?.name).filter(Boolean);
    expect(names).toEqual(['Debited', 'BatchDebited']);
    expect(await sys.escrow.isBatchDebited(1, 0)).toBe(true);
    expect(await sys.escrow.isBatchDebited(1, 1)).toBe(false);
    expect(await revertName(() => debit(1, first))).toBe('BatchAlreadyDebited');
    expect(await sys.distributor.fundedIn(1)).toBe(first.amounts[0]);
    expect(await sys.distributor.isFunded(1)).toBe(false);

    await (await stranger.debit(1, second.index, second.accounts, second.amounts, second.proof)).wait();
    expect(await sys.distributor.isFunded(1)).toBe(true);
    expect(await sys.escrow.debitedIn(1)).toBe(600n);
    expect(await sys.token.balanceOf(sys.addresses.distributor)).toBe(600n);
    expect(await sys.token.allowance(sys.addresses.escrow, sys.addresses.distributor)).toBe(0n);
    expect(await sys.escrow.balanceOf(a)).toBe(600n);
    expect(await sys.escrow.balanceOf(b)).toBe(800n);

    // A vetoed root's batches cannot be debited; a committed batch beyond the total cannot fund.
    const over = await postRootWithDebits(sys, 2, `0x${'33'.repeat(32)}`, ZeroHash, 100n, [
      { accounts: [a], amounts: [150n] },
    ]);
    await (await sys.distributor.vetoRoot(2, ZeroHash)).wait();
    expect(await revertName(() => debit(2, over[0]))).toBe('InvalidDebitProof');
    const again = await postRootWithDebits(sys, 2, `0x${'33'.repeat(32)}`, ZeroHash, 100n, [
      { accounts: [a], amounts: [150n] },
    ]);
    await increaseTime(chain, 60);
    expect(await nestedRevertName(() => debit(2, again[0]), dist)).toBe('FundingExceedsTotal');
  });

  it('credits a depositFor to the beneficiary, who alone withdraws it', async () => {
    const payer = attachJobEscrow(sys.addresses.escrow, chain.wallets[5]);
    const beneficiary = chain.addresses[6];
    const before = await sys.escrow.balanceOf(beneficiary);
    const payerBefore = await sys.escrow.balanceOf(chain.addresses[5]);
    const receipt = await (await payer.depositFor(beneficiary, 7_000n)).wait();
    const log = receipt!.logs
      .map((l) => sys.escrow.interface.parseLog(l))
      .find((l) => l?.name === 'Deposited');
    expect(log?.args[0]).toBe(beneficiary);
    expect(log?.args[1]).toBe(7_000n);
    expect((await sys.escrow.balanceOf(beneficiary)) - before).toBe(7_000n);
    expect(await sys.escrow.balanceOf(chain.addresses[5])).toBe(payerBefore);
    expect(await revertName(() => payer.depositFor.staticCall(ZeroAddress, 1n))).toBe('ZeroAddress');
    expect(await revertName(() => payer.depositFor.staticCall(beneficiary, 0n))).toBe('ZeroAmount');
  });

  it('refuses a withdrawal re-entered from the token', async () => {
    const evil = (await deployMock(chain, 'ReentrantToken')) as BaseContract & {
      mint(to: string, amount: bigint): Promise<ContractTransactionResponse>;
      arm(target: string, data: string): Promise<ContractTransactionResponse>;
      approve(spender: string, amount: bigint): Promise<ContractTransactionResponse>;
    };
    const distributor = await deployRewardsDistributor(
      chain.wallets[0],
      await evil.getAddress(),
      chain.addresses[0],
      0,
      chain.addresses[0],
      chain.addresses[0],
      0,
    );
    const escrow = await deployJobEscrow(
      chain.wallets[0],
      await evil.getAddress(),
      await distributor.getAddress(),
      1,
      1,
      0,
    );
    await (await evil.mint(chain.addresses[0], 1_000n)).wait();
    await (await evil.approve(await escrow.getAddress(), 1_000n)).wait();
    await (await escrow.deposit(1_000n)).wait();
    await (await escrow.requestUnlock()).wait();
    await increaseTime(chain, 1);
    await (
      await evil.arm(await escrow.getAddress(), escrow.interface.encodeFunctionData('withdraw', [1n]))
    ).wait();
    expect(await revertName(() => escrow.withdraw.staticCall(500n))).toBe('ReentrancyGuardReentrantCall');
  });

  it('depositFor pulls from the caller and credits the named account (Deposited names it)', async () => {
    const payer = attachJobEscrow(sys.addresses.escrow, chain.wallets[4]);
    const before = await sys.escrow.balanceOf(chain.addresses[5]);
    const receipt = await (await payer.depositFor(chain.addresses[5], 7_000n)).wait();
    const log = receipt!.logs
      .map((l) => sys.escrow.interface.parseLog(l))
      .find((l) => l?.name === 'Deposited');
    expect([log?.args[0], log?.args[1]]).toEqual([chain.addresses[5], 7_000n]);
    expect((await sys.escrow.balanceOf(chain.addresses[5])) - before).toBe(7_000n);
    expect(await revertName(() => payer.depositFor.staticCall(ZeroAddress, 1n))).toBe('ZeroAddress');
    expect(await revertName(() => payer.depositFor.staticCall(chain.addresses[5], 0n))).toBe('ZeroAmount');
  });

  it('deployAll wires ProviderStaking to the escrow and burnable ComputeToken: a slash compensates and burns', async () => {
    expect(await sys.staking.escrow()).toBe(sys.addresses.escrow);
    expect(await sys.staking.token()).toBe(sys.addresses.token);
    expect(await sys.staking.hasRole(SLASHER_ROLE, chain.addresses[0])).toBe(true);
    expect(await sys.staking.hasRole(SLASH_REVIEWER_ROLE, chain.addresses[0])).toBe(true);
    expect(await sys.staking.slashReviewDelay()).toBe(0n); // anvil (31337): no default delay
    const p = attachProviderStaking(sys.addresses.staking, chain.wallets[3]);
    await (await p.stake(1_000n)).wait();
    await (await p.requestUnbond(400n)).wait();
    expect(await revertName(() => p.withdraw.staticCall())).toBe('StillUnbonding');
    const evidence = id('receipt 42 failed verification');
    const dev = chain.addresses[6];
    await (await sys.staking.proposeSlash(chain.addresses[3], 700n, evidence, [dev], [3n])).wait();
    const supply = await sys.token.totalSupply();
    const credited = await sys.escrow.balanceOf(dev);
    await (await sys.staking.executeSlash(evidence, [dev], [3n])).wait();
    const [bonded, unbonding] = await sys.staking.stakeOf(chain.addresses[3]);
    expect([bonded, unbonding]).toEqual([0n, 300n]);
    expect((await sys.escrow.balanceOf(dev)) - credited).toBe(700n);
    expect(await sys.token.totalSupply()).toBe(supply);
    await increaseTime(chain, 900);
    const before = await sys.token.balanceOf(chain.addresses[3]);
    await (await p.withdraw()).wait();
    expect((await sys.token.balanceOf(chain.addresses[3])) - before).toBe(300n);
    // no beneficiaries: ComputeToken burns it all
    await (await p.stake(50n)).wait();
    await (await sys.staking.proposeSlash(chain.addresses[3], 50n, ZeroHash, [], [])).wait();
    await (await sys.staking.executeSlash(ZeroHash, [], [])).wait();
    expect(await sys.token.totalSupply()).toBe(supply - 50n);
  });
});
