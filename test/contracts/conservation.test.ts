// Property: random deposits, epochs (honest, or with an understated total that pays an attacker),
// debits of final epochs in batches, funding and claims keep the tokens conserved:
//   token.balanceOf(escrow)      == Σ escrow balances
//   token.balanceOf(distributor) == Σ funded − totalClaimed
// and no claim ever takes the total paid beyond the cumulative total of its root. Developers sign
// spending caps (submitted by anyone) at random: a debit past a cap reverts (CapExceeded), and what
// was ever debited from each developer stays within the highest cap it signed.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  attachComputeToken,
  attachJobEscrow,
  capHeadroom,
  closeEpoch,
  cumulativeFromEpochFile,
  epochFileHash,
  EpochProofs,
  signSpendingCap,
  spendingCapDomain,
  type CumulativeEntry,
  type EpochCredit,
  type EpochFile,
} from '@gpumesh/rewards';

import {
  debitBatch,
  deploySystem,
  fundEpoch,
  increaseTime,
  postRootWithDebits,
  startChain,
  type Chain,
  type System,
} from './chain.js';

const WINDOW = 10;
const DEVS = [1, 2, 3];
const PROVIDERS = [4, 5, 6];
const ATTACKER = 7;

type Op =
  | { readonly kind: 'deposit'; readonly dev: number; readonly amount: bigint }
  | {
      readonly kind: 'epoch';
      /** Share (per mille) of each developer's escrow balance spent in the epoch. */
      readonly spend: readonly number[];
      /** Provider receiving each developer's spending. */
      readonly to: readonly number[];
      /** Extra paid to the attacker in the tree, left out of the posted total. */
      readonly forged: bigint;
      /** Debit in two batches. */
      readonly split: boolean;
    }
  | { readonly kind: 'claim'; readonly who: number }
  /** `dev` signs a cap `raise` above its current one; `by` submits it (anyone may). */
  | { readonly kind: 'cap'; readonly dev: number; readonly raise: bigint; readonly by: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('deposit' as const),
      dev: fc.constantFrom(...DEVS),
      amount: fc.bigInt({ min: 1n, max: 10_000n }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('epoch' as const),
      spend: fc.array(fc.integer({ min: 0, max: 1_000 }), { minLength: DEVS.length, maxLength: DEVS.length }),
      to: fc.array(fc.constantFrom(...PROVIDERS), { minLength: DEVS.length, maxLength: DEVS.length }),
      forged: fc.oneof(
        fc.constant(0n),
        fc.bigInt({ min: 1n, max: 100n }),
        fc.bigInt({ min: 100_000n, max: 1_000_000n }),
      ),
      split: fc.boolean(),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('claim' as const),
      who: fc.constantFrom(...PROVIDERS, ATTACKER),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('cap' as const),
      dev: fc.constantFrom(...DEVS),
      raise: fc.bigInt({ min: 1n, max: 5_000n }),
      by: fc.constantFrom(0, ...DEVS, ...PROVIDERS),
    }),
    weight: 1,
  },
);

describe('token conservation across escrow and distributor (property, on anvil)', () => {
  let chain: Chain;
  // One system for all runs: each run continues where the last one stopped (the invariants are
  // global), which keeps the property to a few seconds; shrinking is off (endOnFailure) anyway.
  let sys: System;
  let cumulative: ReadonlyMap<string, CumulativeEntry> = new Map();
  let latest: EpochFile | null = null;
  let epoch = 0;
  /** What this test debited from each developer, in total. */
  const debited = new Map<string, bigint>();

  beforeAll(async () => {
    chain = await startChain();
    sys = await deploySystem(chain, {
      challengeWindowSeconds: WINDOW,
      maxEpochSeconds: 60,
      fundingMarginSeconds: 10,
      mint: DEVS.map((d) => ({ to: chain.addresses[d], amount: 10n ** 9n })),
    });
    for (const d of DEVS) {
      const token = attachComputeToken(sys.addresses.token, chain.wallets[d]);
      await (await token.approve(sys.addresses.escrow, 10n ** 9n)).wait();
      await (await attachJobEscrow(sys.addresses.escrow, chain.wallets[d]).deposit(5_000n)).wait();
      // A cap below the deposit: it binds before the balance does.
      await (await attachJobEscrow(sys.addresses.escrow, chain.wallets[d]).setSpendingCap(3_000n)).wait();
    }
  });

  afterAll(async () => {
    await chain?.stop();
  });

  async function checkConservation(epochs: number): Promise<void> {
    let escrowSum = 0n;
    for (const d of DEVS) escrowSum += await sys.escrow.balanceOf(chain.addresses[d]);
    expect(await sys.token.balanceOf(sys.addresses.escrow)).toBe(escrowSum);
    let funded = 0n;
    for (let e = 1; e <= epochs; e++) funded += await sys.distributor.fundedIn(e);
    const claimed = await sys.distributor.totalClaimed();
    expect(await sys.token.balanceOf(sys.addresses.distributor)).toBe(funded - claimed);
    const fundedEpoch = await sys.distributor.fundedEpoch();
    expect(claimed <= (await sys.distributor.cumulativeTotal(fundedEpoch))).toBe(true);
    for (const d of DEVS) {
      const spent = await sys.escrow.spentBy(chain.addresses[d]);
      expect(spent).toBe(debited.get(chain.addresses[d]) ?? 0n);
      expect(spent <= (await sys.escrow.spendingCapOf(chain.addresses[d]))).toBe(true);
    }
  }

  it('holds for random sequences of deposits, epochs, debits, funding and claims', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 4, maxLength: 10 }), async (ops) => {
        for (const op of ops) {
          if (op.kind === 'deposit') {
            const escrow = attachJobEscrow(sys.addresses.escrow, chain.wallets[op.dev]);
            await (await escrow.deposit(op.amount)).wait();
          } else if (op.kind === 'cap') {
            const account = chain.addresses[op.dev];
            const cap = (await sys.escrow.spendingCapOf(account)) + op.raise;
            const domain = spendingCapDomain(chain.anvil.chainId, sys.addresses.escrow);
            const signed = await signSpendingCap(chain.wallets[op.dev], domain, cap);
            const submitter = attachJobEscrow(sys.addresses.escrow, chain.wallets[op.by]);
            await (await submitter.authorize(account, cap, signed.signature)).wait();
            expect(await sys.escrow.spendingCapOf(account)).toBe(cap);
          } else if (op.kind === 'epoch') {
            // `amount`: what the epoch charges (within the cap); `requested`: what its batch asks for.
            const debits: { account: string; amount: bigint; requested: bigint }[] = [];
            const credits: EpochCredit[] = [];
            for (const [i, d] of DEVS.entries()) {
              const account = chain.addresses[d];
              const balance = await sys.escrow.balanceOf(account);
              const requested = (balance * BigInt(op.spend[i])) / 1_000n;
              const headroom = capHeadroom(
                await sys.escrow.spendingCapOf(account),
                await sys.escrow.spentBy(account),
              );
              // Whatever a committed batch asks, the escrow takes no more than the developer signed for.
              const amount = requested > headroom ? headroom : requested;
              if (amount === 0n) continue;
              debits.push({ account: chain.addresses[d], amount, requested });
              credits.push({
                provider: chain.addresses[op.to[i]],
                receipts: [{ id: `e${epoch + 1}-${i}`, amount }],
              });
            }
            const total = debits.reduce((s, d) => s + d.amount, 0n);
            if (op.forged > 0n) {
              credits.push({
                provider: chain.addresses[ATTACKER],
                receipts: [{ id: `forged${epoch + 1}`, amount: op.forged }],
              });
            }
            if (credits.length === 0) continue;
            epoch += 1;
            const file = closeEpoch(cumulative, credits, { epoch, ...sys.domain });
            const half = op.split && debits.length > 1 ? 1 : debits.length;
            const batches = [debits.slice(0, half), debits.slice(half)].filter((b) => b.length > 0);
            const committed = await postRootWithDebits(
              sys,
              epoch,
              file.root,
              epochFileHash(file),
              total,
              batches.map((batch) => ({
                accounts: batch.map((d) => d.account),
                amounts: batch.map((d) => d.requested),
              })),
            );
            await increaseTime(chain, WINDOW);
            if (total === 0n) {
              await fundEpoch(chain, sys, epoch, 0n);
            } else {
              for (const [b, batch] of batches.entries()) {
                await (await debitBatch(sys.escrow, epoch, committed[b])).wait();
                for (const d of batch) debited.set(d.account, (debited.get(d.account) ?? 0n) + d.amount);
              }
            }
            expect(await sys.distributor.isFunded(epoch)).toBe(true);
            cumulative = cumulativeFromEpochFile(file);
            latest = file;
          } else if (latest) {
            const ticket = new EpochProofs(latest).ticket(chain.addresses[op.who]);
            if (ticket && ticket.cumulativeAmount > (await sys.distributor.claimedAmount(ticket.index))) {
              const args = [
                ticket.epoch,
                ticket.index,
                ticket.account,
                ticket.cumulativeAmount,
                [...ticket.proof],
              ] as const;
              try {
                await sys.distributor.claim.staticCall(...args);
              } catch (err) {
                // A forged root may promise more than was funded: only that refusal is expected.
                expect((err as { revert?: { name?: string } }).revert?.name).toBe('ClaimExceedsFunded');
                continue;
              }
              const before = await sys.distributor.totalClaimed();
              await (await sys.distributor.claim(...args)).wait();
              const after = await sys.distributor.totalClaimed();
              expect(after <= (await sys.distributor.cumulativeTotal(ticket.epoch))).toBe(true);
              expect(after - before).toBeGreaterThan(0n);
            }
          }
          await checkConservation(epoch);
        }
      }),
      { numRuns: 4, endOnFailure: true },
    );
  }, 120_000);
});
