// ProviderStaking against a real anvil, with a burnable ERC20 mock and a `depositFor` escrow mock:
// the measured attack (unbond and withdraw inside the review window) regression, the proposal
// lifecycle (propose → execute | cancel | expire), and properties over random operation sequences
// (freeze bounds, withdraw never takes frozen stake, token conservation, slashed = compensated + burnt).
import { BaseContract, ContractFactory, Wallet, id, type ContractTransactionResponse } from 'ethers';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  applySlash,
  attachProviderStaking,
  deployProviderStaking,
  providerStakingAbi,
  providerStakingBytecode,
  splitSlash,
  type ProviderStakingContract,
} from '@gpumesh/rewards';

import { deployMock, increaseTime, mockArtifact, revertName, startChain, type Chain } from './chain.js';

const UNBONDING = 60;
const REVIEW = 3_600;
const WINDOW = 30 * 86_400;
const SLASHER = 0;
const REVIEWER = 1;
const STRANGER = 2;
const PROVIDERS = [3, 4];
const DEVS = [5, 6, 7];
const PENDING = 1n;
const EXECUTED = 2n;
const CANCELLED = 3n;
const EXPIRED = 4n;

type TokenMock = BaseContract & {
  mint(to: string, amount: bigint): Promise<ContractTransactionResponse>;
  approve(spender: string, amount: bigint): Promise<ContractTransactionResponse>;
  balanceOf(account: string): Promise<bigint>;
  totalSupply(): Promise<bigint>;
};
type EscrowMock = BaseContract & { balanceOf(account: string): Promise<bigint> };

describe('ProviderStaking: freeze on proposal, compensate or burn on execution (anvil)', () => {
  let chain: Chain;
  let token: TokenMock;
  let escrow: EscrowMock;
  let staking: ProviderStakingContract;
  let address: string;
  let evidenceCounter = 0;
  const evidence = (): string => id(`evidence ${++evidenceCounter}`);
  const as = (i: number): ProviderStakingContract => attachProviderStaking(address, chain.wallets[i]);

  async function send(tx: Promise<ContractTransactionResponse>): Promise<void> {
    const receipt = await (await tx).wait();
    if (receipt?.status !== 1) throw new Error('transaction failed');
  }

  async function stakeOf(who: string): Promise<{ bonded: bigint; unbonding: bigint; frozen: bigint }> {
    const [bonded, unbonding] = await staking.stakeOf(who);
    return { bonded, unbonding, frozen: await staking.frozenOf(who) };
  }

  /** Conservation: the contract holds exactly Σ (bonded + unbonding), and frozen ≤ stake for all. */
  async function checkInvariants(): Promise<void> {
    let total = 0n;
    for (const i of PROVIDERS) {
      const s = await stakeOf(chain.addresses[i]);
      expect(s.frozen).toBeLessThanOrEqual(s.bonded + s.unbonding);
      total += s.bonded + s.unbonding;
    }
    expect(await token.balanceOf(address)).toBe(total);
  }

  beforeAll(async () => {
    chain = await startChain();
    token = (await deployMock(chain, 'BurnableTestToken')) as TokenMock;
    const escrowArtifact = mockArtifact('DepositEscrowMock');
    const escrowContract = await new ContractFactory(
      escrowArtifact.abi,
      escrowArtifact.bytecode,
      chain.wallets[0],
    ).deploy(await token.getAddress());
    await escrowContract.waitForDeployment();
    escrow = escrowContract as EscrowMock;
    staking = await deployProviderStaking(
      chain.wallets[0],
      await token.getAddress(),
      await escrow.getAddress(),
      chain.addresses[0],
      0,
      chain.addresses[SLASHER],
      chain.addresses[REVIEWER],
      UNBONDING,
      REVIEW,
    );
    address = await staking.getAddress();
    for (const i of PROVIDERS) {
      await send(token.mint(chain.addresses[i], 10n ** 15n));
      const t = token.connect(chain.wallets[i]) as TokenMock;
      await send(t.approve(address, 2n ** 255n));
    }
  });

  afterAll(async () => {
    await chain?.stop();
  });

  it('has the configured roles, delays and escrow, and bounds every delay to 365 days', async () => {
    expect(await staking.hasRole(await staking.SLASHER_ROLE(), chain.addresses[SLASHER])).toBe(true);
    expect(await staking.hasRole(await staking.SLASH_REVIEWER_ROLE(), chain.addresses[REVIEWER])).toBe(true);
    expect(await staking.defaultAdmin()).toBe(chain.addresses[0]);
    expect(await staking.slashReviewDelay()).toBe(BigInt(REVIEW));
    expect(await staking.unbondingDelay()).toBe(BigInt(UNBONDING));
    expect(await staking.escrow()).toBe(await escrow.getAddress());
    expect(await staking.SLASH_EXECUTION_WINDOW()).toBe(BigInt(WINDOW));
    const factory = new ContractFactory(providerStakingAbi, providerStakingBytecode, chain.wallets[0]);
    const args = (review: number, unbonding = UNBONDING, adminDelay = 0): unknown[] => [
      token.target,
      escrow.target,
      chain.addresses[0],
      adminDelay,
      chain.addresses[SLASHER],
      chain.addresses[REVIEWER],
      unbonding,
      review,
    ];
    const tooLong = 365 * 86_400 + 1;
    for (const a of [args(tooLong), args(REVIEW, tooLong), args(REVIEW, UNBONDING, tooLong)]) {
      const tx = await factory.getDeployTransaction(...a);
      const data = await chain.provider
        .call({ ...tx, from: chain.addresses[0] })
        .catch((err: { data?: string }) => err.data ?? '0x');
      expect(staking.interface.parseError(data)?.name).toBe('DurationOutOfRange');
    }
  });

  it('the measured attack fails: unbonding and withdrawing inside the review window leaves the frozen stake', async () => {
    const who = chain.addresses[PROVIDERS[0]];
    const provider = as(PROVIDERS[0]);
    await send(provider.stake(1_000n));
    const e = evidence();
    const beneficiaries = [chain.addresses[DEVS[0]], chain.addresses[DEVS[1]]];
    const weights = [2n, 1n];
    const supply0 = await token.totalSupply();
    await send(staking.proposeSlash(who, 600n, e, beneficiaries, weights));
    expect(await stakeOf(who)).toEqual({ bonded: 1_000n, unbonding: 0n, frozen: 600n });
    const [, amount, executableAt, state] = await staking.slashProposal(e);
    expect([amount, state]).toEqual([600n, PENDING]);

    // The attack: unbond everything, wait out the unbonding delay (60 s ≪ the review delay), withdraw.
    await send(provider.requestUnbond(1_000n));
    await increaseTime(chain, UNBONDING + 1);
    const before = await token.balanceOf(who);
    await send(provider.withdraw());
    expect((await token.balanceOf(who)) - before).toBe(400n); // only the unfrozen part
    expect(await stakeOf(who)).toEqual({ bonded: 0n, unbonding: 600n, frozen: 600n });
    expect(await revertName(() => provider.withdraw.staticCall())).toBe('StakeFrozen');
    await checkInvariants();

    // Execution: not before executableAt, only with the proposed beneficiaries.
    expect(await revertName(() => staking.executeSlash.staticCall(e, beneficiaries, weights))).toBe(
      'SlashNotExecutable',
    );
    const block = await chain.provider.getBlock('latest');
    await increaseTime(chain, Number(executableAt) - block!.timestamp);
    expect(await revertName(() => staking.executeSlash.staticCall(e, beneficiaries, [1n, 2n]))).toBe(
      'BeneficiariesMismatch',
    );
    expect(await revertName(() => staking.executeSlash.staticCall(e, [beneficiaries[0]], [2n]))).toBe(
      'BeneficiariesMismatch',
    );
    expect(await revertName(() => as(STRANGER).executeSlash.staticCall(e, beneficiaries, weights))).toBe(
      'AccessControlUnauthorizedAccount',
    );
    const receipt = await (await staking.executeSlash(e, beneficiaries, weights)).wait();
    const slashed = receipt!.logs
      .map((l) => staking.interface.parseLog(l))
      .find((l) => l?.name === 'Slashed');
    expect(slashed?.args.slice(0, 5)).toEqual([who, e, 600n, 600n, 0n]);
    expect(await escrow.balanceOf(beneficiaries[0])).toBe(400n);
    expect(await escrow.balanceOf(beneficiaries[1])).toBe(200n);
    expect(await token.totalSupply()).toBe(supply0);
    expect(await stakeOf(who)).toEqual({ bonded: 0n, unbonding: 0n, frozen: 0n });
    expect((await staking.slashProposal(e))[3]).toBe(EXECUTED);
    expect(await revertName(() => staking.executeSlash.staticCall(e, beneficiaries, weights))).toBe(
      'SlashNotPending',
    );
    expect(await revertName(() => provider.withdraw.staticCall())).toBe('NothingUnbonding');
    await checkInvariants();
  });

  it('burns the dust, and everything when no developer is named', async () => {
    const who = chain.addresses[PROVIDERS[1]];
    await send(as(PROVIDERS[1]).stake(1_000n));
    const dust = evidence();
    const none = evidence();
    const bens = DEVS.map((i) => chain.addresses[i]);
    await send(staking.proposeSlash(who, 100n, dust, bens, [1n, 1n, 1n]));
    await send(staking.proposeSlash(who, 50n, none, [], []));
    expect((await stakeOf(who)).frozen).toBe(150n);
    await increaseTime(chain, REVIEW);
    const supply0 = await token.totalSupply();
    const escrow0 = await token.balanceOf(await escrow.getAddress());
    await send(staking.executeSlash(dust, bens, [1n, 1n, 1n]));
    expect(await token.totalSupply()).toBe(supply0 - 1n); // 100 = 3 × 33 + 1 burnt
    expect((await token.balanceOf(await escrow.getAddress())) - escrow0).toBe(99n);
    await send(staking.executeSlash(none, [], []));
    expect(await token.totalSupply()).toBe(supply0 - 51n);
    expect(await stakeOf(who)).toEqual({ bonded: 850n, unbonding: 0n, frozen: 0n });
    await checkInvariants();
  });

  it('pays 64 developers in one execution (the bound), within a block', async () => {
    const who = chain.addresses[PROVIDERS[0]];
    await send(as(PROVIDERS[0]).stake(1_000_000n));
    const e = evidence();
    const bens = Array.from({ length: 64 }, () => Wallet.createRandom().address);
    const weights = bens.map((_, i) => BigInt(i + 1));
    await send(staking.proposeSlash(who, 1_000_000n, e, bens, weights));
    await increaseTime(chain, REVIEW);
    const receipt = await (await staking.executeSlash(e, bens, weights)).wait();
    const split = splitSlash(1_000_000n, weights);
    for (const i of [0, 31, 63]) expect(await escrow.balanceOf(bens[i])).toBe(split.shares[i]);
    console.log(`executeSlash gas with 64 beneficiaries: ${receipt!.gasUsed}`);
    expect(receipt!.gasUsed).toBeLessThan(5_000_000n);
    await checkInvariants();
  });

  it('validates proposals: role, evidence once, amount, arrays, unfrozen stake', async () => {
    const who = chain.addresses[PROVIDERS[1]];
    const e = evidence();
    expect(await revertName(() => as(STRANGER).proposeSlash.staticCall(who, 1n, e, [], []))).toBe(
      'AccessControlUnauthorizedAccount',
    );
    expect(await revertName(() => as(REVIEWER).proposeSlash.staticCall(who, 1n, e, [], []))).toBe(
      'AccessControlUnauthorizedAccount',
    );
    expect(await revertName(() => staking.proposeSlash.staticCall(who, 0n, e, [], []))).toBe('ZeroAmount');
    expect(await revertName(() => staking.proposeSlash.staticCall(who, 1n, e, [who], []))).toBe(
      'LengthMismatch',
    );
    const many = Array.from({ length: 65 }, () => chain.addresses[DEVS[0]]);
    expect(
      await revertName(() =>
        staking.proposeSlash.staticCall(
          who,
          1n,
          e,
          many,
          many.map(() => 1n),
        ),
      ),
    ).toBe('TooManyBeneficiaries');
    expect(await revertName(() => staking.proposeSlash.staticCall(who, 1n, e, [who], [0n]))).toBe(
      'ZeroWeight',
    );
    expect(await revertName(() => staking.proposeSlash.staticCall(chain.addresses[9], 1n, e, [], []))).toBe(
      'NothingToSlash',
    );
    // A request beyond the unfrozen stake freezes what there is; then nothing is left to freeze.
    await send(staking.proposeSlash(who, 10n ** 18n, e, [], []));
    expect(await stakeOf(who)).toEqual({ bonded: 850n, unbonding: 0n, frozen: 850n });
    expect(await revertName(() => staking.proposeSlash.staticCall(who, 1n, e, [], []))).toBe(
      'EvidenceAlreadyUsed',
    );
    expect(await revertName(() => staking.proposeSlash.staticCall(who, 1n, evidence(), [], []))).toBe(
      'NothingToSlash',
    );
    expect(await staking.isEvidenceUsed(e)).toBe(true);
    // cancel: a slasher or a reviewer, once; it unfreezes and cannot be executed afterwards
    expect(await revertName(() => as(STRANGER).cancelSlash.staticCall(e))).toBe(
      'AccessControlUnauthorizedAccount',
    );
    const receipt = await (await as(REVIEWER).cancelSlash(e)).wait();
    const cancelled = receipt!.logs
      .map((l) => staking.interface.parseLog(l))
      .find((l) => l?.name === 'SlashCancelled');
    expect(cancelled?.args.slice(0, 2)).toEqual([e, chain.addresses[REVIEWER]]);
    expect((await stakeOf(who)).frozen).toBe(0n);
    expect((await staking.slashProposal(e))[3]).toBe(CANCELLED);
    expect(await revertName(() => staking.cancelSlash.staticCall(e))).toBe('SlashNotPending');
    await increaseTime(chain, REVIEW);
    expect(await revertName(() => staking.executeSlash.staticCall(e, [], []))).toBe('SlashNotPending');
    expect(await staking.isEvidenceUsed(e)).toBe(true);
    await checkInvariants();
  });

  it('anyone expires a proposal left unexecuted past its window; the slasher can no longer execute it', async () => {
    const who = chain.addresses[PROVIDERS[1]];
    const e = evidence();
    await send(staking.proposeSlash(who, 300n, e, [], []));
    expect(await revertName(() => as(STRANGER).expireSlash.staticCall(e))).toBe('SlashNotExpired');
    await increaseTime(chain, REVIEW + WINDOW - 5);
    expect(await revertName(() => as(STRANGER).expireSlash.staticCall(e))).toBe('SlashNotExpired');
    await increaseTime(chain, 5);
    expect(await revertName(() => staking.executeSlash.staticCall(e, [], []))).toBe('SlashWindowClosed');
    await send(as(STRANGER).expireSlash(e));
    expect((await staking.slashProposal(e))[3]).toBe(EXPIRED);
    expect((await stakeOf(who)).frozen).toBe(0n);
    expect(await revertName(() => as(STRANGER).expireSlash.staticCall(e))).toBe('SlashNotPending');
    expect(await revertName(() => staking.cancelSlash.staticCall(e))).toBe('SlashNotPending');
    await checkInvariants();
  });

  it('random operation sequences keep the freeze bounds and conserve tokens (property)', async () => {
    type Op =
      | { kind: 'stake'; p: number; amount: bigint }
      | { kind: 'unbond'; p: number; fraction: number }
      | { kind: 'withdraw'; p: number }
      | { kind: 'propose'; p: number; amount: bigint; bens: number; w: bigint[] }
      | { kind: 'execute'; pick: number }
      | { kind: 'cancel'; pick: number }
      | { kind: 'time'; seconds: number };
    const p = fc.integer({ min: 0, max: PROVIDERS.length - 1 });
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('stake' as const),
          p,
          amount: fc.bigInt({ min: 1n, max: 10n ** 9n }),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('unbond' as const),
          p,
          fraction: fc.integer({ min: 1, max: 100 }),
        }),
      },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('withdraw' as const), p }) },
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('propose' as const),
          p,
          amount: fc.bigInt({ min: 1n, max: 2n * 10n ** 9n }),
          bens: fc.integer({ min: 0, max: DEVS.length }),
          w: fc.array(fc.bigInt({ min: 1n, max: 10n ** 12n }), {
            minLength: DEVS.length,
            maxLength: DEVS.length,
          }),
        }),
      },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('execute' as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }) },
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('time' as const),
          seconds: fc.integer({ min: 1, max: 2 * REVIEW }),
        }),
      },
    );
    const seen = { withdraw: 0, frozenWithdraw: 0, propose: 0, execute: 0, cancel: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 8, maxLength: 16 }), async (ops) => {
        const snapshot = (await chain.provider.send('evm_snapshot', [])) as string;
        try {
          for (const i of PROVIDERS) await send(as(i).stake(10n ** 9n));
          const pending: { e: string; bens: string[]; w: bigint[] }[] = [];
          for (const o of ops) {
            if (o.kind === 'stake') {
              await send(as(PROVIDERS[o.p]).stake(o.amount));
            } else if (o.kind === 'unbond') {
              const s = await stakeOf(chain.addresses[PROVIDERS[o.p]]);
              const amount = (s.bonded * BigInt(o.fraction)) / 100n;
              if (amount > 0n) await send(as(PROVIDERS[o.p]).requestUnbond(amount, { gasLimit: 200_000 }));
            } else if (o.kind === 'withdraw') {
              const who = chain.addresses[PROVIDERS[o.p]];
              const [bonded, unbonding, endsAt] = await staking.stakeOf(who);
              const frozen = await staking.frozenOf(who);
              const block = await chain.provider.getBlock('latest');
              const free = bonded + unbonding - frozen;
              const expected = unbonding < free ? unbonding : free;
              if (unbonding === 0n) continue;
              // wait out the unbonding delay when needed: the property is about what withdraw pays
              if (BigInt(block!.timestamp) + 1n < endsAt)
                await increaseTime(chain, Number(endsAt) - block!.timestamp);
              if (expected === 0n) {
                expect(await revertName(() => as(PROVIDERS[o.p]).withdraw.staticCall())).toBe('StakeFrozen');
                seen.frozenWithdraw++;
                continue;
              }
              const before = await token.balanceOf(who);
              await send(as(PROVIDERS[o.p]).withdraw());
              seen.withdraw++;
              // withdraw never takes frozen stake, and pays exactly the unfrozen unbonding part
              expect((await token.balanceOf(who)) - before).toBe(expected);
              const after = await stakeOf(who);
              expect(after.bonded + after.unbonding).toBeGreaterThanOrEqual(after.frozen);
            } else if (o.kind === 'propose') {
              const who = chain.addresses[PROVIDERS[o.p]];
              const s = await stakeOf(who);
              const free = s.bonded + s.unbonding - s.frozen;
              const e = evidence();
              const bens = DEVS.slice(0, o.bens).map((i) => chain.addresses[i]);
              const w = o.w.slice(0, o.bens);
              if (free === 0n) {
                expect(
                  await revertName(() => staking.proposeSlash.staticCall(who, o.amount, e, bens, w)),
                ).toBe('NothingToSlash');
                continue;
              }
              await send(staking.proposeSlash(who, o.amount, e, bens, w));
              expect((await stakeOf(who)).frozen - s.frozen).toBe(o.amount < free ? o.amount : free);
              pending.push({ e, bens, w });
              seen.propose++;
            } else if (o.kind === 'execute' || o.kind === 'cancel') {
              if (pending.length === 0) continue;
              const [chosen] = pending.splice(o.pick % pending.length, 1);
              const [who, amount, executableAt] = await staking.slashProposal(chosen.e);
              const before = await stakeOf(who);
              if (o.kind === 'cancel') {
                await send(as(REVIEWER).cancelSlash(chosen.e));
                seen.cancel++;
                expect(await stakeOf(who)).toEqual({ ...before, frozen: before.frozen - amount });
                continue;
              }
              const block = await chain.provider.getBlock('latest');
              if (BigInt(block!.timestamp) + 1n < executableAt) {
                expect(
                  await revertName(() => staking.executeSlash.staticCall(chosen.e, chosen.bens, chosen.w)),
                ).toBe('SlashNotExecutable');
                await increaseTime(chain, Number(executableAt) - block!.timestamp);
              }
              const supply0 = await token.totalSupply();
              const escrow0 = await token.balanceOf(await escrow.getAddress());
              const receipt = await (await staking.executeSlash(chosen.e, chosen.bens, chosen.w)).wait();
              seen.execute++;
              const ev = receipt!.logs
                .map((l) => staking.interface.parseLog(l))
                .find((l) => l?.name === 'Slashed');
              const [slashed, compensated, burnt] = [ev!.args[2], ev!.args[3], ev!.args[4]] as bigint[];
              const model = applySlash(before, amount);
              const split = splitSlash(slashed, chosen.w);
              expect(slashed).toBe(amount); // the frozen amount is always there to take
              expect(slashed).toBe(model.slashed);
              expect(slashed).toBe(compensated + burnt);
              expect([compensated, burnt]).toEqual([split.compensated, split.burnt]);
              expect(supply0 - (await token.totalSupply())).toBe(burnt);
              expect((await token.balanceOf(await escrow.getAddress())) - escrow0).toBe(compensated);
              expect(await stakeOf(who)).toEqual({
                bonded: model.bonded,
                unbonding: model.unbonding,
                frozen: before.frozen - amount,
              });
            } else {
              await increaseTime(chain, o.seconds);
            }
            await checkInvariants();
          }
        } finally {
          await chain.provider.send('evm_revert', [snapshot]);
          for (const w of chain.wallets) w.reset();
        }
      }),
      { numRuns: 6, endOnFailure: true },
    );
    console.log(`property operations exercised: ${JSON.stringify(seen)}`);
  });
});
