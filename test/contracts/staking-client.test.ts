// libs/rewards' staking and slashing clients against ProviderStaking on a real anvil.
import { keccak256, toUtf8Bytes } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MemoryTxJournal,
  ONE_TOKEN,
  RewardsError,
  cancelSlash,
  executeSlash,
  proposeSlash,
  readSlashProposal,
  readStake,
  requestUnbond,
  slashTxKey,
  stakeTokens,
  withdrawUnbonded,
  type JournaledTx,
} from '@gpumesh/rewards';
import { deploySystem, increaseTime, startChain, type Chain, type System } from './chain.js';

/** The shared transaction journal, counting its writes (one per signed attempt). */
class CountingTxJournal extends MemoryTxJournal {
  puts = 0;

  override async put(tx: JournaledTx): Promise<void> {
    this.puts += 1;
    await super.put(tx);
  }
}

const PROVIDER = 3;
const DEV = 6;
const REVIEW = 600;

describe('staking and slashing clients (libs/rewards) on anvil', () => {
  let chain: Chain;
  let sys: System;
  const evidence = (label: string): string => keccak256(toUtf8Bytes(label));

  beforeAll(async () => {
    chain = await startChain();
    sys = await deploySystem(chain, {
      slashReviewDelaySeconds: REVIEW,
      mint: [{ to: chain.addresses[PROVIDER], amount: 100n * ONE_TOKEN }],
    });
  });

  afterAll(async () => {
    await chain?.stop();
  });

  it('stakes (approving first), unbonds, and withdraws after the unbonding delay', async () => {
    const signer = chain.wallets[PROVIDER];
    const address = chain.addresses[PROVIDER];
    await expect(
      stakeTokens({ staking: sys.addresses.staking, signer, amount: 101n * ONE_TOKEN }),
    ).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    const staked = await stakeTokens({ staking: sys.addresses.staking, signer, amount: 60n * ONE_TOKEN });
    expect(staked.stake).toMatchObject({ bonded: 60n * ONE_TOKEN, unbonding: 0n, frozen: 0n });
    const unbond = await requestUnbond({ staking: sys.addresses.staking, signer, amount: 20n * ONE_TOKEN });
    expect(unbond.stake).toMatchObject({ bonded: 40n * ONE_TOKEN, unbonding: 20n * ONE_TOKEN });
    await expect(withdrawUnbonded({ staking: sys.addresses.staking, signer })).rejects.toMatchObject({
      code: 'STILL_UNBONDING',
    });
    await increaseTime(chain, 86_400);
    const out = await withdrawUnbonded({ staking: sys.addresses.staking, signer });
    expect(out.withdrawn).toBe(20n * ONE_TOKEN);
    expect(await sys.token.balanceOf(address)).toBe(60n * ONE_TOKEN);
    expect(await readStake(sys.staking, address)).toMatchObject({ bonded: 40n * ONE_TOKEN, unbonding: 0n });
  });

  it('proposes, then executes once per evidence hash: a second client with an empty journal sends nothing', async () => {
    const operator = chain.addresses[PROVIDER];
    const evidenceHash = evidence('evidence-1');
    const beneficiaries = [{ account: chain.addresses[DEV], weight: 5n }];
    const journal = new CountingTxJournal();
    const base = { staking: sys.staking, signer: chain.wallets[0], evidenceHash };
    const proposed = await proposeSlash({
      ...base,
      journal,
      operator,
      amount: 15n * ONE_TOKEN,
      beneficiaries,
    });
    expect(proposed).toMatchObject({ frozen: 15n * ONE_TOKEN, state: 'PENDING', alreadyProposed: false });
    expect(journal.puts).toBe(1);
    expect((await readStake(sys.staking, operator)).frozen).toBe(15n * ONE_TOKEN);
    // again, and from a client that knows nothing: the chain has it
    const again = await proposeSlash({ ...base, journal, operator, amount: 15n * ONE_TOKEN, beneficiaries });
    expect(again).toMatchObject({ txHash: proposed.txHash, alreadyProposed: false });
    const elsewhere = await proposeSlash({
      ...base,
      journal: new CountingTxJournal(),
      operator,
      amount: 15n * ONE_TOKEN,
      beneficiaries,
    });
    expect(elsewhere).toMatchObject({ txHash: proposed.txHash, alreadyProposed: true });
    expect(journal.puts).toBe(1);

    // the provider's withdrawal of everything stops at the frozen part
    const signer = chain.wallets[PROVIDER];
    await requestUnbond({ staking: sys.addresses.staking, signer });
    await increaseTime(chain, 86_400);
    const out = await withdrawUnbonded({ staking: sys.addresses.staking, signer });
    expect(out.withdrawn).toBe(25n * ONE_TOKEN);
    await expect(withdrawUnbonded({ staking: sys.addresses.staking, signer })).rejects.toMatchObject({
      code: 'STAKE_FROZEN',
    });

    const first = await executeSlash({ ...base, journal, beneficiaries });
    expect(first).toMatchObject({
      slashed: 15n * ONE_TOKEN,
      compensated: 15n * ONE_TOKEN,
      burnt: 0n,
      alreadyExecuted: false,
    });
    expect(await sys.escrow.balanceOf(chain.addresses[DEV])).toBe(15n * ONE_TOKEN);
    expect(journal.puts).toBe(2);
    const repeat = await executeSlash({ ...base, journal, beneficiaries });
    expect(repeat).toMatchObject({ txHash: first.txHash, alreadyExecuted: false });
    const other = new CountingTxJournal();
    const otherRun = await executeSlash({ ...base, journal: other, beneficiaries });
    expect(otherRun).toMatchObject({ txHash: first.txHash, alreadyExecuted: true });
    expect(other.puts).toBe(0);
    expect(await readStake(sys.staking, operator)).toMatchObject({ bonded: 0n, unbonding: 0n, frozen: 0n });
    await expect(cancelSlash({ ...base, journal })).rejects.toMatchObject({ code: 'SLASH_CLOSED' });
  });

  it('does not execute before the review delay, and cancels (unfreezing) with the slasher key', async () => {
    const operator = chain.addresses[PROVIDER];
    await stakeTokens({ staking: sys.addresses.staking, signer: chain.wallets[PROVIDER], amount: ONE_TOKEN });
    const journal = new CountingTxJournal();
    const base = { staking: sys.staking, signer: chain.wallets[0], evidenceHash: evidence('evidence-2') };
    await proposeSlash({ ...base, journal, operator, amount: ONE_TOKEN, beneficiaries: [] });
    await expect(executeSlash({ ...base, journal, beneficiaries: [] })).rejects.toMatchObject({
      code: 'SLASH_NOT_DUE',
    });
    expect(await journal.get(slashTxKey('execute', base.evidenceHash))).toBeNull();
    const cancelled = await cancelSlash({ ...base, journal });
    expect(cancelled).toMatchObject({ state: 'CANCELLED', alreadyCancelled: false });
    expect((await cancelSlash({ ...base, journal })).txHash).toBe(cancelled.txHash);
    expect((await readSlashProposal(sys.staking, base.evidenceHash)).state).toBe('CANCELLED');
    expect((await readStake(sys.staking, operator)).frozen).toBe(0n);
    await expect(executeSlash({ ...base, journal, beneficiaries: [] })).rejects.toMatchObject({
      code: 'SLASH_CLOSED',
    });
    // cancelling what never reached the chain is a no-op
    const never = await cancelSlash({
      ...base,
      journal: new CountingTxJournal(),
      evidenceHash: evidence('never proposed'),
    });
    expect(never).toMatchObject({ state: 'NOT_PROPOSED', txHash: null });
  });

  it('refuses a signer without SLASHER_ROLE, and an operator without stake, before journaling anything', async () => {
    const journal = new CountingTxJournal();
    const err = await proposeSlash({
      staking: sys.staking,
      signer: chain.wallets[5],
      journal,
      operator: chain.addresses[PROVIDER],
      amount: ONE_TOKEN,
      evidenceHash: evidence('evidence-3'),
      beneficiaries: [],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RewardsError);
    expect((err as RewardsError).message).toMatch(
      /proposeSlash would revert: AccessControlUnauthorizedAccount/,
    );
    await expect(
      proposeSlash({
        staking: sys.staking,
        signer: chain.wallets[0],
        journal,
        operator: chain.addresses[8],
        amount: ONE_TOKEN,
        evidenceHash: evidence('evidence-4'),
        beneficiaries: [],
      }),
    ).rejects.toMatchObject({ code: 'NOTHING_TO_SLASH' });
    expect(journal.puts).toBe(0);
  });
});
