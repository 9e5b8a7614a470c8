// Gas report: the steady-state claim (a provider that has claimed before) against a funded root.
// Measured from receipts on anvil; the bound keeps the hot-slot packing from regressing silently.
import { ZeroHash } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  closeEpoch,
  cumulativeFromEpochFile,
  epochFileHash,
  EpochProofs,
  type EpochFile,
} from '@gpumesh/rewards';

import { deploySystem, fundEpoch, increaseTime, startChain, type Chain, type System } from './chain.js';

const WINDOW = 10;
/**
 * Measured 54,754 (8 leaves, proof depth 3, domain-separated leaf, no Claimed event, assembly proof
 * loop, the funded bound kept beside the funded epoch); 58,690 before. A 100,000-leaf tree (depth
 * 17) claims in 64,206: `npm run bench -- --only settlement` reports it.
 */
const STEADY_CLAIM_GAS_MAX = 56_000n;

describe('claim gas on anvil', () => {
  let chain: Chain;
  let sys: System;
  const providers = Array.from({ length: 8 }, (_, i) => `0x${(0x1000 + i).toString(16).padStart(40, '0')}`);

  beforeAll(async () => {
    chain = await startChain();
    sys = await deploySystem(chain, { challengeWindowSeconds: WINDOW, maxEpochSeconds: 60 });
  });

  afterAll(async () => {
    await chain?.stop();
  });

  async function postAndFund(file: EpochFile): Promise<void> {
    await (
      await sys.distributor.postRoot(file.epoch, file.root, epochFileHash(file), BigInt(file.total), ZeroHash)
    ).wait();
    await increaseTime(chain, WINDOW);
    await fundEpoch(chain, sys, file.epoch, BigInt(file.total));
  }

  async function claimAll(file: EpochFile): Promise<bigint[]> {
    const proofs = new EpochProofs(file);
    const gas: bigint[] = [];
    for (const p of providers) {
      const t = proofs.ticket(p)!;
      const receipt = await (
        await sys.distributor.claim(t.epoch, t.index, t.account, t.cumulativeAmount, [...t.proof])
      ).wait();
      gas.push(receipt!.gasUsed);
    }
    return gas;
  }

  it('keeps the steady-state claim under its bound', async () => {
    const e1 = closeEpoch(
      new Map(),
      providers.map((p, i) => ({ provider: p, receipts: [{ id: `a${i}`, amount: BigInt(1_000 + i) }] })),
      { epoch: 1, ...sys.domain },
    );
    const e2 = closeEpoch(
      cumulativeFromEpochFile(e1),
      providers.map((p, i) => ({ provider: p, receipts: [{ id: `b${i}`, amount: 500n }] })),
      { epoch: 2, ...sys.domain },
    );
    await postAndFund(e1);
    const first = await claimAll(e1);
    await postAndFund(e2);
    const steady = await claimAll(e2);
    const max = steady.reduce((m, g) => (g > m ? g : m), 0n);
    console.info(`claim gas: first ${first.join(', ')}; steady-state ${steady.join(', ')}`);
    expect(max).toBeLessThanOrEqual(STEADY_CLAIM_GAS_MAX);
  });
});
