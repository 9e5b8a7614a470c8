// Regression tests for what attackers did to the contracts before funding and bounds: a root paying
// more than was funded, a zero challenge window off the dev chain, an unlock delay shorter than an
// epoch plus its window, unlimited minting, instant admin transfers.
import { ContractFactory, ZeroHash, id, type InterfaceAbi } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  attachComputeToken,
  attachRewardsDistributor,
  closeEpoch,
  computeTokenAbi,
  computeTokenBytecode,
  cumulativeFromEpochFile,
  deployAll,
  deployComputeToken,
  deployRewardsDistributor,
  epochFileHash,
  EpochProofs,
  jobEscrowAbi,
  jobEscrowBytecode,
  rewardsDistributorAbi,
  rewardsDistributorBytecode,
  type EpochFile,
} from '@gpumesh/rewards';

import {
  deploySystem,
  fundEpoch,
  increaseTime,
  nestedRevertName,
  revertName,
  startChain,
  type Chain,
  type System,
} from './chain.js';

const HOUR = 3_600;
const DAY = 86_400;

/** The custom error a deployment with `args` reverts with (an eth_call: no nonce is spent). */
async function deployRevertName(
  chain: Chain,
  abi: InterfaceAbi,
  bytecode: string,
  args: readonly unknown[],
): Promise<string> {
  const factory = new ContractFactory(abi, bytecode);
  const tx = await factory.getDeployTransaction(...args);
  return nestedRevertName(
    () => chain.provider.call({ from: chain.addresses[0], data: tx.data }),
    factory.interface,
  );
}

describe('bounds off the dev chain (chain id 1337)', () => {
  let chain: Chain;
  let token: string;

  beforeAll(async () => {
    chain = await startChain({ chainId: 1337 });
    const t = await deployComputeToken(
      chain.wallets[0],
      chain.addresses[0],
      0,
      chain.addresses[0],
      10n ** 15n,
    );
    token = await t.getAddress();
  });

  afterAll(async () => {
    await chain?.stop();
  });

  it('refuses a challenge window under one hour or over thirty days', async () => {
    const args = (window: number): unknown[] => [
      token,
      chain.addresses[0],
      0,
      chain.addresses[1],
      chain.addresses[2],
      window,
    ];
    for (const window of [0, 59 * 60, 30 * DAY + 1]) {
      expect(
        await deployRevertName(chain, rewardsDistributorAbi, rewardsDistributorBytecode, args(window)),
      ).toBe('ChallengeWindowOutOfRange');
    }
    for (const window of [HOUR, 30 * DAY]) {
      expect(
        await deployRevertName(chain, rewardsDistributorAbi, rewardsDistributorBytecode, args(window)),
      ).toBe('did not revert');
    }
  });

  it('refuses a funding margin under one hour', async () => {
    const distributor = await deployRewardsDistributor(
      chain.wallets[0],
      token,
      chain.addresses[0],
      0,
      chain.addresses[1],
      chain.addresses[2],
      HOUR,
    );
    const args = (margin: number): unknown[] => [token, distributor.target, 10 * HOUR, HOUR, margin];
    expect(await deployRevertName(chain, jobEscrowAbi, jobEscrowBytecode, args(HOUR - 1))).toBe(
      'FundingMarginTooShort',
    );
    expect(await deployRevertName(chain, jobEscrowAbi, jobEscrowBytecode, args(HOUR))).toBe('did not revert');
  });

  it('delays a default admin transfer by two days by default', async () => {
    const [deployer, newAdmin] = [chain.addresses[0], chain.addresses[9]];
    const addresses = await deployAll(chain.wallets[0], {
      settler: chain.addresses[1],
      guardian: chain.addresses[2],
      slasher: chain.addresses[3],
      challengeWindowSeconds: HOUR,
      maxEpochSeconds: HOUR,
      fundingMarginSeconds: HOUR,
      unlockDelaySeconds: 3 * HOUR,
      unbondingDelaySeconds: DAY,
    });
    const tokenAsAdmin = attachComputeToken(addresses.token, chain.wallets[0]);
    const tokenAsNew = attachComputeToken(addresses.token, chain.wallets[9]);
    expect(await tokenAsAdmin.defaultAdminDelay()).toBe(BigInt(2 * DAY));
    // Not through grantRole: only the two-step transfer.
    expect(await revertName(() => tokenAsAdmin.grantRole.staticCall(ZeroHash, newAdmin))).toBe(
      'AccessControlEnforcedDefaultAdminRules',
    );
    await (await tokenAsAdmin.beginDefaultAdminTransfer(newAdmin)).wait();
    expect(await revertName(() => tokenAsNew.acceptDefaultAdminTransfer.staticCall())).toBe(
      'AccessControlEnforcedDefaultAdminDelay',
    );
    await increaseTime(chain, 2 * DAY - 60);
    expect(await revertName(() => tokenAsNew.acceptDefaultAdminTransfer.staticCall())).toBe(
      'AccessControlEnforcedDefaultAdminDelay',
    );
    await increaseTime(chain, 61);
    await (await tokenAsNew.acceptDefaultAdminTransfer()).wait();
    expect(await tokenAsAdmin.defaultAdmin()).toBe(newAdmin);
    expect(await tokenAsAdmin.hasRole(ZeroHash, deployer)).toBe(false);
    // The roles are where deployAll put them, one address each.
    const distributor = attachRewardsDistributor(addresses.distributor, chain.provider);
    expect(await distributor.hasRole(id('SETTLER_ROLE'), chain.addresses[1])).toBe(true);
    expect(await distributor.hasRole(id('GUARDIAN_ROLE'), chain.addresses[2])).toBe(true);
    expect(await distributor.hasRole(id('SETTLER_ROLE'), deployer)).toBe(false);
  });
});

describe('bounds on the dev chain (31337)', () => {
  let chain: Chain;
  let token: string;

  beforeAll(async () => {
    chain = await startChain();
    const t = await deployComputeToken(chain.wallets[0], chain.addresses[0], 0, chain.addresses[1], 1_000n);
    token = await t.getAddress();
  });

  afterAll(async () => {
    await chain?.stop();
  });

  it('accepts any challenge window up to thirty days, 0 included', async () => {
    const args = (window: number): unknown[] => [
      token,
      chain.addresses[0],
      0,
      chain.addresses[1],
      chain.addresses[2],
      window,
    ];
    expect(await deployRevertName(chain, rewardsDistributorAbi, rewardsDistributorBytecode, args(0))).toBe(
      'did not revert',
    );
    expect(
      await deployRevertName(chain, rewardsDistributorAbi, rewardsDistributorBytecode, args(30 * DAY + 1)),
    ).toBe('ChallengeWindowOutOfRange');
  });

  it('refuses an unlock delay shorter than maxEpochSeconds + window + margin, and absurd durations', async () => {
    const distributor = await deployRewardsDistributor(
      chain.wallets[0],
      token,
      chain.addresses[0],
      0,
      chain.addresses[1],
      chain.addresses[2],
      100,
    );
    const args = (unlock: number, maxEpoch: number | bigint = 50, margin = 10): unknown[] => [
      token,
      distributor.target,
      unlock,
      maxEpoch,
      margin,
    ];
    expect(await deployRevertName(chain, jobEscrowAbi, jobEscrowBytecode, args(159))).toBe(
      'UnlockDelayTooShort',
    );
    expect(await deployRevertName(chain, jobEscrowAbi, jobEscrowBytecode, args(160))).toBe('did not revert');
    expect(await deployRevertName(chain, jobEscrowAbi, jobEscrowBytecode, args(365 * DAY + 1))).toBe(
      'DurationOutOfRange',
    );
    expect(await deployRevertName(chain, jobEscrowAbi, jobEscrowBytecode, args(365 * DAY, 2n ** 63n))).toBe(
      'DurationOutOfRange',
    );
    expect(await deployRevertName(chain, jobEscrowAbi, jobEscrowBytecode, args(160, 0))).toBe(
      'MaxEpochSecondsZero',
    );
    // The escrow's token must be the distributor's.
    const other = await deployComputeToken(chain.wallets[0], chain.addresses[0], 0, chain.addresses[0], 1n);
    const mismatched = [other.target, ...args(160).slice(1)];
    expect(await deployRevertName(chain, jobEscrowAbi, jobEscrowBytecode, mismatched)).toBe('TokenMismatch');
  });

  it('mints only by the minter and never beyond the cap', async () => {
    const asMinter = attachComputeToken(token, chain.wallets[1]);
    const asAdmin = attachComputeToken(token, chain.wallets[0]);
    expect(await revertName(() => asAdmin.mint.staticCall(chain.addresses[0], 1n))).toBe(
      'AccessControlUnauthorizedAccount',
    );
    await (await asMinter.mint(chain.addresses[5], 1_000n)).wait();
    expect(await revertName(() => asMinter.mint.staticCall(chain.addresses[5], 1n))).toBe('ERC20ExceededCap');
    // Burning makes room again.
    await (await attachComputeToken(token, chain.wallets[5]).burn(10n)).wait();
    await (await asMinter.mint(chain.addresses[5], 10n)).wait();
    expect(await asAdmin.totalSupply()).toBe(1_000n);
    expect(
      await deployRevertName(chain, computeTokenAbi, computeTokenBytecode, [
        chain.addresses[0],
        0,
        chain.addresses[0],
        0,
      ]),
    ).toBe('ERC20InvalidCap');
  });
});

describe('funding before claims', () => {
  const WINDOW = 60;
  let chain: Chain;
  let sys: System;
  let honest: string[];
  let attacker: string;
  let epoch1: EpochFile;

  beforeAll(async () => {
    chain = await startChain();
    sys = await deploySystem(chain, { challengeWindowSeconds: WINDOW, maxEpochSeconds: 600 });
    honest = chain.addresses.slice(1, 4);
    attacker = chain.addresses[7];
    epoch1 = closeEpoch(
      new Map(),
      honest.map((p, i) => ({ provider: p, receipts: [{ id: `h${i}`, amount: BigInt(1_000 * (i + 1)) }] })),
      { epoch: 1, ...sys.domain },
    );
  });

  afterAll(async () => {
    await chain?.stop();
  });

  it('funds only final epochs, in order, never beyond their total', async () => {
    const total1 = BigInt(epoch1.total);
    await (await sys.distributor.postRoot(1, epoch1.root, epochFileHash(epoch1), total1, ZeroHash)).wait();
    await (await sys.token.mint(chain.addresses[0], 10n ** 9n)).wait();
    await (await sys.token.approve(sys.addresses.distributor, 10n ** 9n)).wait();
    expect(await revertName(() => sys.distributor.fund.staticCall(1, total1))).toBe('EpochNotFinal');
    await increaseTime(chain, WINDOW);
    expect(await revertName(() => sys.distributor.fund.staticCall(1, 0n))).toBe('ZeroAmount');
    expect(await revertName(() => sys.distributor.fund.staticCall(1, total1 + 1n))).toBe(
      'FundingExceedsTotal',
    );
    expect(await revertName(() => sys.distributor.markFunded.staticCall(1))).toBe('EpochUnderfunded');
    // Anyone may fund: a stranger pays part, the deployer the rest.
    const stranger = chain.wallets[8];
    await (await sys.token.mint(chain.addresses[8], 1n)).wait();
    await (
      await attachComputeToken(sys.addresses.token, stranger).approve(sys.addresses.distributor, 1n)
    ).wait();
    const receipt = await (
      await attachRewardsDistributor(sys.addresses.distributor, stranger).fund(1, 1n)
    ).wait();
    const funded = receipt!.logs
      .map((l) => sys.distributor.interface.parseLog(l))
      .find((l) => l?.name === 'EpochFunded');
    expect(funded?.args.toArray()).toEqual([1n, chain.addresses[8], 1n, 1n, total1]);
    expect(await sys.distributor.isFunded(1)).toBe(false);
    await (await sys.distributor.fund(1, total1 - 1n)).wait();
    expect(await sys.distributor.isFunded(1)).toBe(true);
    expect(await sys.distributor.fundedEpoch()).toBe(1n);
    expect(await sys.distributor.fundedIn(1)).toBe(total1);
    expect(await sys.distributor.cumulativeTotal(1)).toBe(total1);
    expect(await revertName(() => sys.distributor.fund.staticCall(1, 1n))).toBe('EpochFundedOutOfOrder');
  });

  it('refuses a root that pays an attacker more than was funded (total = 0), and honest claims still pay', async () => {
    // Epoch 2's tree pays the attacker more than everything funded, and it is posted with total 0.
    const forged = closeEpoch(
      cumulativeFromEpochFile(epoch1),
      [{ provider: attacker, receipts: [{ id: 'forged', amount: BigInt(epoch1.total) + 1n }] }],
      { epoch: 2, ...sys.domain },
    );
    await (await sys.distributor.postRoot(2, forged.root, epochFileHash(forged), 0n, ZeroHash)).wait();
    expect(await sys.distributor.cumulativeTotal(2)).toBe(BigInt(epoch1.total));
    const t = new EpochProofs(forged).ticket(attacker)!;
    const claim = (): Promise<unknown> =>
      sys.distributor.claim.staticCall(t.epoch, t.index, t.account, t.cumulativeAmount, [...t.proof]);
    expect(await revertName(claim)).toBe('ChallengeWindowOpen');
    await increaseTime(chain, WINDOW);
    expect(await revertName(claim)).toBe('EpochNotFunded');
    expect(await revertName(() => sys.distributor.fund.staticCall(2, 1n))).toBe('FundingExceedsTotal');
    await (await sys.distributor.markFunded(2)).wait();
    expect(await sys.distributor.isFunded(2)).toBe(true);
    expect(await revertName(claim)).toBe('ClaimExceedsFunded');
    // Every honest provider is paid in full.
    const proofs = new EpochProofs(epoch1);
    for (const p of honest) {
      const h = proofs.ticket(p)!;
      await (
        await sys.distributor.claim(h.epoch, h.index, h.account, h.cumulativeAmount, [...h.proof])
      ).wait();
      expect(await sys.token.balanceOf(p)).toBe(h.cumulativeAmount);
    }
    expect(await sys.distributor.totalClaimed()).toBe(BigInt(epoch1.total));
    expect(await sys.token.balanceOf(sys.addresses.distributor)).toBe(0n);
  });

  it('claims nothing from a final epoch that is not funded, and funds epochs only in order', async () => {
    const base = cumulativeFromEpochFile(
      closeEpoch(
        cumulativeFromEpochFile(epoch1),
        [{ provider: attacker, receipts: [{ id: 'forged', amount: BigInt(epoch1.total) + 1n }] }],
        { epoch: 2, ...sys.domain },
      ),
    );
    const e3 = closeEpoch(base, [{ provider: honest[0], receipts: [{ id: 'e3', amount: 50n }] }], {
      epoch: 3,
      ...sys.domain,
    });
    const e4 = closeEpoch(
      cumulativeFromEpochFile(e3),
      [{ provider: honest[1], receipts: [{ id: 'e4', amount: 70n }] }],
      { epoch: 4, ...sys.domain },
    );
    await (await sys.distributor.postRoot(3, e3.root, epochFileHash(e3), 50n, ZeroHash)).wait();
    await (await sys.distributor.postRoot(4, e4.root, epochFileHash(e4), 70n, ZeroHash)).wait();
    await increaseTime(chain, WINDOW);
    const t = new EpochProofs(e4).ticket(honest[1])!;
    expect(
      await revertName(() =>
        sys.distributor.claim.staticCall(t.epoch, t.index, t.account, t.cumulativeAmount, [...t.proof]),
      ),
    ).toBe('EpochNotFunded');
    expect(await revertName(() => sys.distributor.fund.staticCall(4, 70n))).toBe('EpochFundedOutOfOrder');
    expect(await revertName(() => sys.distributor.markFunded.staticCall(4))).toBe('EpochFundedOutOfOrder');
    await fundEpoch(chain, sys, 3, 50n);
    await fundEpoch(chain, sys, 4, 70n);
    const before = await sys.token.balanceOf(honest[1]);
    await (await sys.distributor.claim(t.epoch, t.index, t.account, t.cumulativeAmount, [...t.proof])).wait();
    expect((await sys.token.balanceOf(honest[1])) - before).toBe(70n);
    expect(await sys.distributor.cumulativeTotal(4)).toBe(BigInt(epoch1.total) + 120n);
  });

  it('recomputes the cumulative total of a root re-posted after a veto', async () => {
    const cum4 = await sys.distributor.cumulativeTotal(4);
    await (await sys.distributor.postRoot(5, id('bad'), ZeroHash, 1_000n, ZeroHash)).wait();
    expect(await sys.distributor.cumulativeTotal(5)).toBe(cum4 + 1_000n);
    await (await sys.distributor.vetoRoot(5, id('evidence'))).wait();
    expect(await sys.distributor.cumulativeTotal(5)).toBe(0n);
    await (await sys.distributor.postRoot(5, id('good'), ZeroHash, 3n, ZeroHash)).wait();
    expect(await sys.distributor.cumulativeTotal(5)).toBe(cum4 + 3n);
    // Totals fit uint192, cumulative totals uint184 (the claim keeps their running sum in a packed slot).
    expect(
      await revertName(() => sys.distributor.postRoot.staticCall(6, id('x'), ZeroHash, 2n ** 192n, ZeroHash)),
    ).toBe('EpochTotalTooLarge');
    expect(
      await revertName(() => sys.distributor.postRoot.staticCall(6, id('x'), ZeroHash, 2n ** 184n, ZeroHash)),
    ).toBe('CumulativeTotalTooLarge');
  });
});
