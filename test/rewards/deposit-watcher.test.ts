import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  attachComputeToken,
  attachJobEscrow,
  scanEscrowEvents,
  watchEscrowEvents,
  type EscrowEventCursor,
  type EscrowDeposit,
} from '@gpumesh/rewards';

import { deploySystem, mine, startChain, type Chain, type System } from '../contracts/chain.js';

describe('deposit watcher on anvil', () => {
  let chain: Chain;
  let sys: System;

  beforeAll(async () => {
    chain = await startChain();
    sys = await deploySystem(chain, { mint: [{ to: chain.addresses[1], amount: 10n ** 9n }] });
    await (
      await attachComputeToken(sys.addresses.token, chain.wallets[1]).approve(sys.addresses.escrow, 10n ** 9n)
    ).wait();
  });

  afterAll(async () => {
    await chain?.stop();
  });

  it('credits after N confirmations, ignores a reorged deposit, and delivers exactly once across restarts', async () => {
    const escrow = attachJobEscrow(sys.addresses.escrow, chain.wallets[1]);
    // A "database": credits and the cursor, committed together.
    const db = {
      credits: new Map<string, EscrowDeposit>(),
      cursor: { blockNumber: sys.addresses.deployBlock, logIndex: -1 } as EscrowEventCursor,
    };
    const scan = (): Promise<EscrowEventCursor> =>
      scanEscrowEvents({
        provider: chain.provider,
        escrow: sys.addresses.escrow,
        cursor: db.cursor,
        confirmations: 3,
        onEvent: async (d) => {
          if (d.kind !== 'deposit') return;
          if (db.credits.has(d.id)) throw new Error(`delivered twice: ${d.id}`);
          db.credits.set(d.id, d);
          db.cursor = d.cursor;
        },
        onCursor: async (c) => {
          db.cursor = c;
        },
      });

    // A deposit that a reorg removes before it is deep enough.
    const snapshot = (await chain.provider.send('evm_snapshot', [])) as string;
    await (await escrow.deposit(111n)).wait();
    await mine(chain, 1);
    await scan();
    expect(db.credits.size).toBe(0);
    await chain.provider.send('evm_revert', [snapshot]);
    chain.wallets[1].reset();
    await mine(chain, 5);
    await scan();
    expect(db.credits.size).toBe(0);

    await (await escrow.deposit(222n)).wait();
    await (await escrow.deposit(333n)).wait();
    await scan();
    expect(db.credits.size).toBe(0);
    await mine(chain, 2);
    await scan();
    expect([...db.credits.values()].map((d) => [d.account, d.amount])).toEqual([
      [chain.addresses[1].toLowerCase(), 222n],
      [chain.addresses[1].toLowerCase(), 333n],
    ]);
    // Restart from the persisted cursor: nothing is delivered again.
    await mine(chain, 3);
    await scan();
    expect(db.credits.size).toBe(2);

    // The polling watcher picks up a new deposit from the same cursor.
    const seen: bigint[] = [];
    const watcher = watchEscrowEvents({
      provider: chain.provider,
      escrow: sys.addresses.escrow,
      fromBlock: 0,
      cursor: db.cursor,
      confirmations: 2,
      pollIntervalMs: 50,
      onEvent: async (d) => {
        if (d.kind !== 'deposit') return;
        seen.push(d.amount);
      },
    });
    await (await escrow.deposit(444n)).wait();
    await mine(chain, 2);
    const deadline = Date.now() + 5_000;
    while (seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await watcher.stop();
    expect(seen).toEqual([444n]);
  });

  it('counts failed passes in a row and reports the recovery once the chain answers again', async () => {
    // The chain's RPC "goes down": every call fails until `down` is cleared.
    let down = true;
    const flaky = new Proxy(chain.provider, {
      get(target, key) {
        const value: unknown = Reflect.get(target, key, target);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (down) return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:8545'));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const failures: number[] = [];
    const recovered: number[] = [];
    const watcher = watchEscrowEvents({
      provider: flaky,
      escrow: sys.addresses.escrow,
      fromBlock: await chain.provider.getBlockNumber(),
      confirmations: 1,
      pollIntervalMs: 20,
      onEvent: async () => undefined,
      onError: (_err, inARow) => {
        failures.push(inARow);
        if (inARow === 3) down = false;
      },
      onRecovered: (n) => recovered.push(n),
    });
    const deadline = Date.now() + 5_000;
    while (recovered.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await watcher.stop();
    expect(failures).toEqual([1, 2, 3]);
    expect(recovered).toEqual([3]);
  });

  it('stops when the chain reorganises below the cursor', async () => {
    await (await attachJobEscrow(sys.addresses.escrow, chain.wallets[1]).deposit(5n)).wait();
    const head = await chain.provider.getBlockNumber();
    const block = await chain.provider.getBlock(head);
    const cursor: EscrowEventCursor = { blockNumber: head, logIndex: 0, blockHash: block!.hash! };
    const forged = { ...cursor, blockHash: `0x${'11'.repeat(32)}` };
    await expect(
      scanEscrowEvents({
        provider: chain.provider,
        escrow: sys.addresses.escrow,
        cursor: forged,
        confirmations: 1,
        onEvent: async () => undefined,
      }),
    ).rejects.toMatchObject({ code: 'REORG_TOO_DEEP' });
  });
});
