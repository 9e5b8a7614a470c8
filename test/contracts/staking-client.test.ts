// libs/rewards' staking and slashing clients against ProviderStaking on a real anvil.
import { keccak256, toUtf8Bytes } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ONE_TOKEN,
  RewardsError,
  executeSlash,
  readStake,
  requestUnbond,
  stakeTokens,
  withdrawUnbonded,
  type SlashJournal,
  type SlashRecord,
} from '#rewards';
import { deploySystem, increaseTime, startChain, type Chain, type System } from './chain.js';

const PROVIDER = 3;
const TREASURY = 6;

function memoryJournal(): SlashJournal & { record: SlashRecord | null; puts: number } {
  const j = {
    record: null as SlashRecord | null,
    puts: 0,
    async get(): Promise<SlashRecord | null> {
      return j.record;
    },
    async put(record: SlashRecord): Promise<void> {
      j.puts += 1;
      j.record = record;
    },
  };
  return j;
}

describe('staking and slashing clients (libs/rewards) on anvil', () => {
  let chain: Chain;
  let sys: System;

  beforeAll(async () => {
    chain = await startChain();
    sys = await deploySystem(chain, { mint: [{ to: chain.addresses[PROVIDER], amount: 100n * ONE_TOKEN }] });
    await (await sys.staking.setTreasury(chain.addresses[TREASURY])).wait();
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
    expect(staked.stake).toMatchObject({ bonded: 60n * ONE_TOKEN, unbonding: 0n });
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

  it('slashes once per evidence hash: a second executor with an empty journal sends nothing', async () => {
    const operator = chain.addresses[PROVIDER];
    const evidenceHash = keccak256(toUtf8Bytes('evidence-1'));
    const journal = memoryJournal();
    const first = await executeSlash({
      staking: sys.staking,
      signer: chain.wallets[0],
      journal,
      operator,
      amount: 15n * ONE_TOKEN,
      evidenceHash,
    });
    expect(first).toMatchObject({ slashed: 15n * ONE_TOKEN, alreadyExecuted: false });
    expect(first.treasury.toLowerCase()).toBe(chain.addresses[TREASURY].toLowerCase());
    expect(journal.puts).toBe(1);
    expect(journal.record?.txHash).toBe(first.txHash);
    // the same journal again: no new transaction
    const again = await executeSlash({
      staking: sys.staking,
      signer: chain.wallets[0],
      journal,
      operator,
      amount: 15n * ONE_TOKEN,
      evidenceHash,
    });
    expect(again.txHash).toBe(first.txHash);
    expect(journal.puts).toBe(1);
    // another executor that knows nothing: the chain says the evidence is used
    const other = memoryJournal();
    const elsewhere = await executeSlash({
      staking: sys.staking,
      signer: chain.wallets[0],
      journal: other,
      operator,
      amount: 15n * ONE_TOKEN,
      evidenceHash,
    });
    expect(elsewhere).toMatchObject({ txHash: first.txHash, alreadyExecuted: true });
    expect(other.puts).toBe(0);
    expect((await readStake(sys.staking, operator)).bonded).toBe(25n * ONE_TOKEN);

    // a second slash (treasury and evidence map already warm except the new hash)
    const second = await executeSlash({
      staking: sys.staking,
      signer: chain.wallets[0],
      journal: memoryJournal(),
      operator,
      amount: 5n * ONE_TOKEN,
      evidenceHash: keccak256(toUtf8Bytes('evidence-2')),
    });
    console.log(`slash gas: first ${first.gasUsed}, second ${second.gasUsed}`);
    expect(second.gasUsed).toBeLessThan(first.gasUsed!);
  });

  it('refuses a signer without SLASHER_ROLE before journaling anything', async () => {
    const journal = memoryJournal();
    const err = await executeSlash({
      staking: sys.staking,
      signer: chain.wallets[5],
      journal,
      operator: chain.addresses[PROVIDER],
      amount: ONE_TOKEN,
      evidenceHash: keccak256(toUtf8Bytes('evidence-3')),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RewardsError);
    expect((err as RewardsError).message).toMatch(/slash would revert: AccessControlUnauthorizedAccount/);
    expect(journal.puts).toBe(0);
  });
});
