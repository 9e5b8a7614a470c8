import { AbiCoder, BaseContract, ZeroHash, id, keccak256, type ContractTransactionResponse } from 'ethers';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  attachRewardsDistributor,
  closeEpoch,
  cumulativeFromEpochFile,
  deployRewardsDistributor,
  epochFileHash,
  EpochProofs,
  leafHash,
  type CumulativeEntry,
  type EpochFile,
} from '@gpumesh/rewards';

import {
  deployMock,
  deploySystem,
  fundEpoch,
  increaseTime,
  revertName,
  startChain,
  type Chain,
  type System,
} from './chain.js';

const WINDOW = 3_600;

describe('RewardsDistributor on anvil', () => {
  let chain: Chain;
  let sys: System;
  let providers: string[];
  let epoch1: EpochFile;
  let epoch2: EpochFile;
  let epoch3: EpochFile;

  beforeAll(async () => {
    chain = await startChain();
    sys = await deploySystem(chain, { challengeWindowSeconds: WINDOW });
    providers = chain.addresses.slice(1, 5);
    epoch1 = closeEpoch(
      new Map(),
      providers.map((p, i) => ({
        provider: p,
        receipts: [{ id: `r1-${i}`, amount: BigInt(1_000 * (i + 1)) }],
      })),
      { epoch: 1, ...sys.domain },
    );
    epoch2 = closeEpoch(
      cumulativeFromEpochFile(epoch1),
      [{ provider: providers[0], receipts: [{ id: 'r2-0', amount: 500n }] }],
      { epoch: 2, ...sys.domain },
    );
  });

  afterAll(async () => {
    await chain?.stop();
  });

  it('hashes leaves exactly like the TypeScript encoder', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 2 ** 40 }),
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        async (index, raw, amount) => {
          const account = `0x${Buffer.from(raw).toString('hex')}`;
          const onChain = await sys.distributor.leafHash(index, account, amount);
          expect(leafHash({ ...sys.domain, index, account, cumulativeAmount: amount })).toBe(onChain);
          const inner = keccak256(
            AbiCoder.defaultAbiCoder().encode(
              ['uint256', 'address', 'uint256', 'address', 'uint256'],
              [sys.domain.chainId, sys.domain.distributor, index, account, amount],
            ),
          );
          expect(keccak256(inner)).toBe(onChain);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('rejects roles it was not given', async () => {
    const stranger = attachRewardsDistributor(sys.addresses.distributor, chain.wallets[9]);
    expect(await revertName(() => stranger.postRoot.staticCall(1, epoch1.root, ZeroHash, 1n, ZeroHash))).toBe(
      'AccessControlUnauthorizedAccount',
    );
    expect(await revertName(() => stranger.vetoRoot.staticCall(1, ZeroHash))).toBe(
      'AccessControlUnauthorizedAccount',
    );
    expect(await revertName(() => stranger.pause.staticCall())).toBe('AccessControlUnauthorizedAccount');
  });

  it('enforces epoch = last + 1 and a non-empty root', async () => {
    expect(
      await revertName(() => sys.distributor.postRoot.staticCall(2, epoch1.root, ZeroHash, 1n, ZeroHash)),
    ).toBe('EpochOutOfOrder');
    expect(
      await revertName(() => sys.distributor.postRoot.staticCall(1, ZeroHash, ZeroHash, 1n, ZeroHash)),
    ).toBe('EmptyRoot');
  });

  it('pays a claim only after the challenge window, once, against the right proof', async () => {
    await (
      await sys.distributor.postRoot(1, epoch1.root, epochFileHash(epoch1), BigInt(epoch1.total), ZeroHash)
    ).wait();
    const proofs = new EpochProofs(epoch1);
    const t = proofs.ticket(providers[1])!;
    const args = [t.epoch, t.index, t.account, t.cumulativeAmount, [...t.proof]] as const;
    expect(await revertName(() => sys.distributor.claim.staticCall(...args))).toBe('ChallengeWindowOpen');
    await increaseTime(chain, WINDOW);
    // Final but not funded yet (escrow debits are covered in escrow-staking and test/rewards).
    expect(await revertName(() => sys.distributor.claim.staticCall(...args))).toBe('EpochNotFunded');
    await fundEpoch(chain, sys, 1, BigInt(epoch1.total));
    expect(await sys.distributor.isFunded(1)).toBe(true);
    // Wrong proof, wrong amount, somebody else's proof.
    const other = proofs.ticket(providers[2])!;
    expect(
      await revertName(() =>
        sys.distributor.claim.staticCall(t.epoch, t.index, t.account, t.cumulativeAmount, [...other.proof]),
      ),
    ).toBe('InvalidProof');
    expect(
      await revertName(() =>
        sys.distributor.claim.staticCall(t.epoch, t.index, t.account, t.cumulativeAmount + 1n, [...t.proof]),
      ),
    ).toBe('InvalidProof');
    expect(
      await revertName(() =>
        sys.distributor.claim.staticCall(t.epoch, t.index, providers[2], t.cumulativeAmount, [...t.proof]),
      ),
    ).toBe('InvalidProof');
    expect(
      await revertName(() =>
        sys.distributor.claim.staticCall(t.epoch, other.index, t.account, t.cumulativeAmount, [...t.proof]),
      ),
    ).toBe('InvalidProof');
    expect(
      await revertName(() =>
        sys.distributor.claim.staticCall(7, t.index, t.account, t.cumulativeAmount, [...t.proof]),
      ),
    ).toBe('UnknownEpoch');

    const before = await sys.token.balanceOf(t.account);
    // Anyone may submit the claim; the tokens go to the account.
    const relayer = attachRewardsDistributor(sys.addresses.distributor, chain.wallets[8]);
    await (await relayer.claim(...args)).wait();
    expect((await sys.token.balanceOf(t.account)) - before).toBe(t.cumulativeAmount);
    expect(await sys.distributor.claimedAmount(t.index)).toBe(t.cumulativeAmount);
    expect(await revertName(() => sys.distributor.claim.staticCall(...args))).toBe('NothingToClaim');
  });

  it('pays only the difference of a later cumulative root, and nothing for an older one', async () => {
    await (
      await sys.distributor.postRoot(2, epoch2.root, epochFileHash(epoch2), BigInt(epoch2.total), ZeroHash)
    ).wait();
    await increaseTime(chain, WINDOW);
    await fundEpoch(chain, sys, 2, BigInt(epoch2.total));
    const old = new EpochProofs(epoch1).ticket(providers[0])!;
    const now = new EpochProofs(epoch2).ticket(providers[0])!;
    const before = await sys.token.balanceOf(providers[0]);
    await (
      await sys.distributor.claim(now.epoch, now.index, now.account, now.cumulativeAmount, [...now.proof])
    ).wait();
    expect((await sys.token.balanceOf(providers[0])) - before).toBe(1_500n);
    expect(
      await revertName(() =>
        sys.distributor.claim.staticCall(old.epoch, old.index, old.account, old.cumulativeAmount, [
          ...old.proof,
        ]),
      ),
    ).toBe('NothingToClaim');
  });

  it('lets the guardian veto a root in its window, which rolls the epoch back', async () => {
    const bad = closeEpoch(
      cumulativeFromEpochFile(epoch2),
      [{ provider: providers[3], receipts: [{ id: 'forged', amount: 10n ** 9n }] }],
      { epoch: 3, ...sys.domain },
    );
    await (
      await sys.distributor.postRoot(3, bad.root, epochFileHash(bad), BigInt(bad.total), ZeroHash)
    ).wait();
    await (await sys.distributor.vetoRoot(3, id('forged receipts'))).wait();
    expect(await sys.distributor.lastEpoch()).toBe(2n);
    await increaseTime(chain, WINDOW);
    const t = new EpochProofs(bad).ticket(providers[3])!;
    expect(
      await revertName(() =>
        sys.distributor.claim.staticCall(t.epoch, t.index, t.account, t.cumulativeAmount, [...t.proof]),
      ),
    ).toBe('UnknownEpoch');
    // A corrected root is posted for the same epoch; once final it cannot be vetoed.
    const good = (epoch3 = closeEpoch(
      cumulativeFromEpochFile(epoch2),
      [{ provider: providers[3], receipts: [{ id: 'r3-3', amount: 7n }] }],
      { epoch: 3, ...sys.domain },
    ));
    await (
      await sys.distributor.postRoot(3, good.root, epochFileHash(good), BigInt(good.total), ZeroHash)
    ).wait();
    expect(await sys.distributor.cumulativeTotal(3)).toBe(BigInt(good.cumulativeTotal));
    await increaseTime(chain, WINDOW);
    await fundEpoch(chain, sys, 3, BigInt(good.total));
    expect(await revertName(() => sys.distributor.vetoRoot.staticCall(3, ZeroHash))).toBe(
      'ChallengeWindowClosed',
    );
    const g = new EpochProofs(good).ticket(providers[3])!;
    await (await sys.distributor.claim(g.epoch, g.index, g.account, g.cumulativeAmount, [...g.proof])).wait();
    expect(await sys.distributor.claimedAmount(g.index)).toBe(4_007n);
  });

  it('refuses a claim against an older root beyond its cumulative total, pays it against the newest', async () => {
    // Provider 3 was paid epoch 3's money: a claim against epoch 2 would go past epoch 2's total.
    const old = new EpochProofs(epoch2).ticket(providers[2])!;
    expect(
      await revertName(() =>
        sys.distributor.claim.staticCall(old.epoch, old.index, old.account, old.cumulativeAmount, [
          ...old.proof,
        ]),
      ),
    ).toBe('ClaimExceedsFunded');
  });

  it('stops claims while paused', async () => {
    const ticket = new EpochProofs(epoch3).ticket(providers[2])!;
    await (await sys.distributor.pause()).wait();
    expect(
      await revertName(() =>
        sys.distributor.claim.staticCall(
          ticket.epoch,
          ticket.index,
          ticket.account,
          ticket.cumulativeAmount,
          [...ticket.proof],
        ),
      ),
    ).toBe('EnforcedPause');
    await (await sys.distributor.unpause()).wait();
    await (
      await sys.distributor.claim(ticket.epoch, ticket.index, ticket.account, ticket.cumulativeAmount, [
        ...ticket.proof,
      ])
    ).wait();
  });

  it('refuses a claim re-entered from the token during the transfer', async () => {
    const evil = (await deployMock(chain, 'ReentrantToken')) as BaseContract & {
      mint(to: string, amount: bigint): Promise<ContractTransactionResponse>;
      approve(spender: string, amount: bigint): Promise<ContractTransactionResponse>;
      arm(target: string, data: string): Promise<ContractTransactionResponse>;
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
    await (await evil.mint(chain.addresses[0], 1_000_000n)).wait();
    await (await evil.approve(await distributor.getAddress(), 1_000_000n)).wait();
    const file = closeEpoch(
      new Map<string, CumulativeEntry>(),
      providers.map((p, i) => ({ provider: p, receipts: [{ id: `e${i}`, amount: 100n + BigInt(i) }] })),
      { epoch: 1, chainId: chain.anvil.chainId, distributor: await distributor.getAddress() },
    );
    await (
      await distributor.postRoot(1, file.root, epochFileHash(file), BigInt(file.total), ZeroHash)
    ).wait();
    await increaseTime(chain, 1);
    await (await distributor.fund(1, BigInt(file.total))).wait();
    const proofs = new EpochProofs(file);
    const a = proofs.ticket(providers[0])!;
    const b = proofs.ticket(providers[1])!;
    const reenter = distributor.interface.encodeFunctionData('claim', [
      b.epoch,
      b.index,
      b.account,
      b.cumulativeAmount,
      [...b.proof],
    ]);
    await (await evil.arm(await distributor.getAddress(), reenter)).wait();
    expect(
      await revertName(() =>
        distributor.claim.staticCall(a.epoch, a.index, a.account, a.cumulativeAmount, [...a.proof]),
      ),
    ).toBe('ReentrancyGuardReentrantCall');
  });
});
