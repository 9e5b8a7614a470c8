// sendJournaled on a real anvil: fee spikes, a crash between journal and broadcast, a dropped
// transaction, a reorg, and a nonce taken by a foreign transaction.
import { Transaction, Wallet, ZeroHash, toQuantity, type JsonRpcProvider } from 'ethers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  MemoryTxJournal,
  postEpochRoot,
  postRootKey,
  sendJournaled,
  type JournaledTx,
  type JournaledTxEvent,
  type SendJournaledParams,
  type TxJournal,
} from '@gpumesh/rewards';

import { deploySystem, startChain, type Chain, type System } from '../contracts/chain.js';

const GWEI = 1_000_000_000n;
const HIGH_BASE_FEE = 100n * GWEI;
const POLL_MS = 50;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Mines a block every `ms` (each with `baseFee` when given) until the returned stop is awaited. */
function mineEvery(provider: JsonRpcProvider, ms: number, baseFee?: bigint): () => Promise<void> {
  let running = true;
  const loop = (async (): Promise<void> => {
    while (running) {
      if (baseFee !== undefined)
        await provider.send('anvil_setNextBlockBaseFeePerGas', [toQuantity(baseFee)]);
      await provider.send('evm_mine', []);
      await sleep(ms);
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

/** A journal whose first `put` is stored and then "crashes" the process (throws) before the broadcast. */
class CrashAfterPutJournal implements TxJournal {
  private crashed = false;
  constructor(private readonly inner: TxJournal) {}
  get(key: string): Promise<JournaledTx | null> {
    return this.inner.get(key);
  }
  async put(tx: JournaledTx): Promise<void> {
    await this.inner.put(tx);
    if (!this.crashed) {
      this.crashed = true;
      throw new Error('crash after the journal write');
    }
  }
}

function nonceOf(raw: string): number {
  return Transaction.from(raw).nonce;
}

async function inPool(provider: JsonRpcProvider, txHash: string): Promise<boolean> {
  const tx = await provider.getTransaction(txHash);
  return tx !== null && tx.blockNumber === null;
}

describe('sendJournaled on anvil', () => {
  let chain: Chain;
  let sys: System;

  beforeAll(async () => {
    chain = await startChain();
    sys = await deploySystem(chain);
  });

  afterAll(async () => {
    await chain?.stop();
  });

  afterEach(async () => {
    // Back to automine and a low base fee for the next test.
    await chain.provider.send('evm_setAutomine', [true]);
    await chain.provider.send('anvil_setNextBlockBaseFeePerGas', [toQuantity(GWEI)]);
    await chain.provider.send('evm_mine', []);
  });

  function wallet(i: number): Wallet {
    return new Wallet(chain.anvil.accounts[i].privateKey, chain.provider);
  }

  /** A plain call to account 9 from account `from` (the effect of tests without a contract). */
  function transfer(
    from: number,
    key: string,
    journal: TxJournal,
    events: JournaledTxEvent[],
  ): SendJournaledParams {
    return {
      signer: wallet(from),
      journal,
      key,
      to: chain.addresses[9],
      data: '0x',
      pollMs: POLL_MS,
      timeoutMs: 20_000,
      onEvent: (e) => events.push(e),
    };
  }

  it('replaces a transaction a base-fee rise blocks with the same nonce and a higher fee, within the cap', async () => {
    const journal = new MemoryTxJournal();
    const events: JournaledTxEvent[] = [];
    const cap = 1_000n * GWEI;
    const startNonce = await chain.provider.getTransactionCount(chain.addresses[1], 'latest');
    await chain.provider.send('evm_setAutomine', [false]);
    const sending = sendJournaled({
      ...transfer(1, 'spike', journal, events),
      fees: { bumpAfterMs: 300, bumpPercent: 12.5, maxFeePerGas: cap },
    });
    await until('the first attempt', () => events.some((e) => e.type === 'sent'));
    const first = (await journal.get('spike'))!.attempts[0];
    // The base fee jumps far above the first attempt's maxFeePerGas (2 × base + tip at ~1 gwei).
    expect(BigInt(first.maxFeePerGas)).toBeLessThan(HIGH_BASE_FEE);
    const stop = mineEvery(chain.provider, 100, HIGH_BASE_FEE);
    const sent = await sending.finally(stop);

    const entry = (await journal.get('spike'))!;
    expect(sent.replacements).toBeGreaterThanOrEqual(1);
    expect(entry.attempts.length).toBe(1 + sent.replacements);
    expect(sent.txHash).toBe(entry.attempts[entry.attempts.length - 1].txHash);
    expect(sent.txHash).not.toBe(first.txHash);
    // One nonce throughout: the replacements compete with the first, only one is mined.
    expect(entry.nonce).toBe(startNonce);
    expect(entry.attempts.map((a) => nonceOf(a.rawTransaction))).toEqual(
      entry.attempts.map(() => startNonce),
    );
    expect((await chain.provider.getTransaction(sent.txHash!))!.nonce).toBe(startNonce);
    expect(await chain.provider.getTransactionCount(chain.addresses[1], 'latest')).toBe(startNonce + 1);
    for (const [i, a] of entry.attempts.entries()) {
      expect(BigInt(a.maxFeePerGas)).toBeLessThanOrEqual(cap);
      if (i > 0) {
        const prev = entry.attempts[i - 1];
        // ≥ +12.5 % on both fee fields.
        expect(BigInt(a.maxFeePerGas) * 8n).toBeGreaterThanOrEqual(BigInt(prev.maxFeePerGas) * 9n);
        expect(BigInt(a.maxPriorityFeePerGas) * 8n).toBeGreaterThanOrEqual(
          BigInt(prev.maxPriorityFeePerGas) * 9n,
        );
      }
    }
    expect(BigInt(entry.attempts[entry.attempts.length - 1].maxFeePerGas)).toBeGreaterThan(HIGH_BASE_FEE);
    expect(events.filter((e) => e.type === 'replaced')).toHaveLength(sent.replacements);
  });

  it('at the fee cap waits instead of exceeding it, and a later call lands once fees fall', async () => {
    const journal = new MemoryTxJournal();
    const events: JournaledTxEvent[] = [];
    const cap = 50n * GWEI; // below what the raised base fee needs
    const startNonce = await chain.provider.getTransactionCount(chain.addresses[2], 'latest');
    await chain.provider.send('evm_setAutomine', [false]);
    const params = {
      ...transfer(2, 'capped', journal, events),
      fees: { bumpAfterMs: 200, maxFeePerGas: cap },
    };
    const sending = sendJournaled({ ...params, timeoutMs: 3_000 });
    await until('the first attempt', () => events.some((e) => e.type === 'sent'));
    const stop = mineEvery(chain.provider, 100, HIGH_BASE_FEE);
    await expect(sending.finally(stop)).rejects.toMatchObject({ code: 'TX_TIMEOUT' });

    const entry = (await journal.get('capped'))!;
    expect(entry.attempts.length).toBeGreaterThanOrEqual(2);
    expect(entry.attempts.every((a) => BigInt(a.maxFeePerGas) <= cap)).toBe(true);
    expect(BigInt(entry.attempts[entry.attempts.length - 1].maxFeePerGas)).toBe(cap);
    expect(events.some((e) => e.type === 'fee-cap')).toBe(true);
    expect(await chain.provider.getTransactionCount(chain.addresses[2], 'latest')).toBe(startNonce);

    // The base fee falls back (blocks at 1 gwei): the next call resumes the entry, same nonce.
    await chain.provider.send('anvil_setNextBlockBaseFeePerGas', [toQuantity(GWEI)]);
    await chain.provider.send('evm_mine', []);
    const stopLow = mineEvery(chain.provider, 100, GWEI);
    const sent = await sendJournaled(params).finally(stopLow);
    const after = (await journal.get('capped'))!;
    expect(after.nonce).toBe(startNonce);
    expect(after.attempts.map((a) => a.txHash)).toContain(sent.txHash);
    expect(after.attempts.every((a) => BigInt(a.maxFeePerGas) <= cap)).toBe(true);
    expect(await chain.provider.getTransactionCount(chain.addresses[2], 'latest')).toBe(startNonce + 1);
  });

  it('after a crash between the journal write and the broadcast, sends the journaled transaction (same hash, one nonce)', async () => {
    const journal = new MemoryTxJournal();
    const events: JournaledTxEvent[] = [];
    const startNonce = await chain.provider.getTransactionCount(chain.addresses[3], 'latest');
    await expect(
      sendJournaled(transfer(3, 'crash', new CrashAfterPutJournal(journal), events)),
    ).rejects.toThrow(/crash after the journal write/);
    const journaled = (await journal.get('crash'))!;
    expect(journaled.attempts).toHaveLength(1);
    const hash = journaled.attempts[0].txHash;
    expect(await chain.provider.getTransaction(hash)).toBeNull(); // never broadcast
    expect(await chain.provider.getTransactionCount(chain.addresses[3], 'pending')).toBe(startNonce);

    const sent = await sendJournaled(transfer(3, 'crash', journal, events));
    expect(sent).toMatchObject({ txHash: hash, alreadyDone: false, replacements: 0 });
    expect((await journal.get('crash'))!.attempts).toHaveLength(1);
    expect(await chain.provider.getTransactionCount(chain.addresses[3], 'latest')).toBe(startNonce + 1);

    // Again: the mined attempt is reported, nothing is sent.
    const again = await sendJournaled(transfer(3, 'crash', journal, events));
    expect(again.txHash).toBe(hash);
    expect(await chain.provider.getTransactionCount(chain.addresses[3], 'latest')).toBe(startNonce + 1);
  });

  it('detects a transaction the node dropped and sends it again', async () => {
    const journal = new MemoryTxJournal();
    const events: JournaledTxEvent[] = [];
    await chain.provider.send('evm_setAutomine', [false]);
    const sending = sendJournaled(transfer(4, 'dropped', journal, events));
    await until('the first attempt', () => events.some((e) => e.type === 'sent'));
    const hash = (await journal.get('dropped'))!.attempts[0].txHash;
    expect(await inPool(chain.provider, hash)).toBe(true);
    const before = events.length;
    await chain.provider.send('anvil_dropTransaction', [hash]);
    // (Not asserted gone: the sender polls every POLL_MS and may have sent it again already.)
    await until('the rebroadcast', () => events.slice(before).some((e) => e.type === 'rebroadcast'));
    expect(await inPool(chain.provider, hash)).toBe(true);
    await chain.provider.send('evm_mine', []);
    const sent = await sending;
    expect(sent).toMatchObject({ txHash: hash, replacements: 0 });
    expect(sent.receipt?.status).toBe(1);
  });

  it('notices a receipt a reorg removed, while waiting for confirmations and on the next call', async () => {
    const journal = new MemoryTxJournal();
    const events: JournaledTxEvent[] = [];
    const startNonce = await chain.provider.getTransactionCount(chain.addresses[5], 'latest');
    await chain.provider.send('evm_setAutomine', [false]);
    const sending = sendJournaled({ ...transfer(5, 'reorg', journal, events), confirmations: 3 });
    await until('the first attempt', () => events.some((e) => e.type === 'sent'));
    const hash = (await journal.get('reorg'))!.attempts[0].txHash;
    await chain.provider.send('evm_mine', []);
    await until('the receipt', async () => (await chain.provider.getTransactionReceipt(hash)) !== null);
    await sleep(4 * POLL_MS); // the sender sees it mined with one confirmation
    // Replace the block holding it by an empty one: anvil forgets the transaction.
    await chain.provider.send('anvil_reorg', [1, []]);
    expect(await chain.provider.getTransactionReceipt(hash)).toBeNull();
    expect(await chain.provider.getTransactionCount(chain.addresses[5], 'latest')).toBe(startNonce);

    await until('the reorg noticed', () => events.some((e) => e.type === 'reorged'));
    await until('the rebroadcast', () => events.some((e) => e.type === 'rebroadcast'));
    const stop = mineEvery(chain.provider, 100);
    const sent = await sending.finally(stop);
    expect(sent.txHash).toBe(hash);
    const receipt = (await chain.provider.getTransactionReceipt(hash))!;
    expect((await chain.provider.getBlock(receipt.blockNumber))!.hash).toBe(receipt.blockHash);

    // Mined and confirmed, then reorged out between two calls: the next call sends it again.
    await chain.provider.send('evm_setAutomine', [true]);
    const depth = (await chain.provider.getBlockNumber()) - receipt.blockNumber + 1;
    await chain.provider.send('anvil_reorg', [depth, []]);
    expect(await chain.provider.getTransactionReceipt(hash)).toBeNull();
    const again = await sendJournaled(transfer(5, 'reorg', journal, events));
    expect(again).toMatchObject({ txHash: hash, alreadyDone: false });
    expect(await chain.provider.getTransactionReceipt(hash)).not.toBeNull();
    expect(await chain.provider.getTransactionCount(chain.addresses[5], 'latest')).toBe(startNonce + 1);
  });

  it('when a foreign transaction takes the nonce, starts a fresh entry only if the effect is not on chain', async () => {
    const settler = wallet(0);
    const journal = new MemoryTxJournal();
    const events: JournaledTxEvent[] = [];
    const [epoch1, epoch2] = [1, 2];
    const root1 = `0x${'11'.repeat(32)}`;
    const root2 = `0x${'22'.repeat(32)}`;
    const fileHash = `0x${'ab'.repeat(32)}`;
    const post = (epoch: number, root: string, j: TxJournal): ReturnType<typeof postEpochRoot> =>
      postEpochRoot({
        distributor: sys.distributor,
        signer: settler,
        journal: j,
        epoch,
        root,
        fileHash,
        total: 0n,
        fundingRoot: ZeroHash,
        pollMs: POLL_MS,
        timeoutMs: 20_000,
        onEvent: (e) => events.push(e),
      });
    const foreign = async (nonce: number, tx: { to: string; data: string }): Promise<void> => {
      const raw = await settler.signTransaction(
        await settler.populateTransaction({ ...tx, nonce, gasLimit: 300_000 }),
      );
      await (await chain.provider.broadcastTransaction(raw)).wait();
    };

    // Journaled, not broadcast; then an unrelated transaction takes its nonce: the root is not on
    // chain, so a fresh entry with the next nonce posts it.
    await expect(post(epoch1, root1, new CrashAfterPutJournal(journal))).rejects.toThrow(/crash/);
    const stale = (await journal.get(postRootKey(epoch1, root1)))!;
    await foreign(stale.nonce, { to: chain.addresses[8], data: '0x' });
    const posted = await post(epoch1, root1, journal);
    expect(posted.alreadyPosted).toBe(false);
    expect(events).toContainEqual(expect.objectContaining({ type: 'nonce-taken', nonce: stale.nonce }));
    const fresh = (await journal.get(postRootKey(epoch1, root1)))!;
    expect(fresh.nonce).toBe(stale.nonce + 1);
    expect(posted.txHash).toBe(fresh.attempts[0].txHash);
    expect(await sys.distributor.lastEpoch()).toBe(1n);

    // Journaled, not broadcast; then another transaction posts the same root with that nonce:
    // the effect is on chain, nothing more is sent.
    await expect(post(epoch2, root2, new CrashAfterPutJournal(journal))).rejects.toThrow(/crash/);
    const pending = (await journal.get(postRootKey(epoch2, root2)))!;
    const request = await sys.distributor.postRoot.populateTransaction(epoch2, root2, fileHash, 0n, ZeroHash);
    await foreign(pending.nonce, { to: request.to, data: request.data });
    const before = await chain.provider.getTransactionCount(settler.address, 'latest');
    const done = await post(epoch2, root2, journal);
    expect(done).toMatchObject({ alreadyPosted: true, txHash: null });
    expect(await journal.get(postRootKey(epoch2, root2))).toEqual(pending);
    expect(await chain.provider.getTransactionCount(settler.address, 'latest')).toBe(before);
    expect(await sys.distributor.lastEpoch()).toBe(2n);
  });
});
