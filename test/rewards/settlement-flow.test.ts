import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Wallet, ZeroHash } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  attachComputeToken,
  attachJobEscrow,
  auditEpoch,
  claimRewards,
  closeEpoch,
  cumulativeFromEpochFile,
  EpochCreditBook,
  epochFileHash,
  EpochProofs,
  FileTxJournal,
  fundEpochFromEscrow,
  latestClaimableEpoch,
  MemoryTxJournal,
  ONE_TOKEN,
  postEpochRoot,
  postRootKey,
  RewardsError,
  scanEscrowEvents,
  serializeEpochFile,
  type EscrowEventCursor,
  type EpochFile,
} from '@gpumesh/rewards';

import { runAuditCli } from '../../apps/cli/src/audit.js';
import { deploySystem, increaseTime, startChain, type Chain, type System } from '../contracts/chain.js';

const WINDOW = 600;

describe('deposit → jobs → epoch → root → claim on anvil', () => {
  let chain: Chain;
  let sys: System;
  let dir: string;
  let developers: string[];
  let providers: string[];
  const files: EpochFile[] = [];

  beforeAll(async () => {
    chain = await startChain();
    developers = chain.addresses.slice(1, 3);
    providers = chain.addresses.slice(3, 7);
    sys = await deploySystem(chain, {
      challengeWindowSeconds: WINDOW,
      unbondingDelaySeconds: WINDOW,
      mint: developers.map((to) => ({ to, amount: 100n * ONE_TOKEN })),
    });
    dir = await mkdtemp(join(tmpdir(), 'gpumesh-settlement-'));
  });

  afterAll(async () => {
    await chain?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs two epochs and the balances add up to the base unit', async () => {
    // Developers deposit; the watcher credits their off-chain balances.
    for (const [i, dev] of developers.entries()) {
      const w = chain.wallets[1 + i];
      await (
        await attachComputeToken(sys.addresses.token, w).approve(sys.addresses.escrow, 50n * ONE_TOKEN)
      ).wait();
      await (await attachJobEscrow(sys.addresses.escrow, w).deposit(50n * ONE_TOKEN)).wait();
      // The developer bounds what the settler may ever debit (here: its whole deposit).
      await (await attachJobEscrow(sys.addresses.escrow, w).setSpendingCap(50n * ONE_TOKEN)).wait();
      expect(dev).toBeTruthy();
    }
    const balances = new Map<string, bigint>();
    const cursor: EscrowEventCursor = { blockNumber: sys.addresses.deployBlock, logIndex: -1 };
    await scanEscrowEvents({
      provider: chain.provider,
      escrow: sys.addresses.escrow,
      cursor,
      confirmations: 1,
      onEvent: async (d) => {
        if (d.kind !== 'deposit') return;
        balances.set(d.account, (balances.get(d.account) ?? 0n) + d.amount);
      },
    });
    expect([...balances.values()]).toEqual([50n * ONE_TOKEN, 50n * ONE_TOKEN]);

    // Jobs: each pays its provider an odd number of micro-tokens.
    const journal = new FileTxJournal(join(dir, 'journal'));
    let previous = new Map();
    for (const epoch of [1, 2]) {
      const book = new EpochCreditBook();
      for (let j = 0; j < 200; j++) {
        const provider = providers[(j * 7 + epoch) % providers.length];
        const developer = developers[j % developers.length];
        book.credit(provider, developer, BigInt(1_000 + ((j * 7919 + epoch) % 99_991)), `e${epoch}-job-${j}`);
      }
      const file = closeEpoch(previous, book.credits(), {
        epoch,
        ...sys.domain,
        escrow: sys.addresses.escrow,
        debits: book.debits(),
      });
      files.push(file);
      await writeFile(join(dir, `epoch-${epoch}.json`), serializeEpochFile(file));
      const posted = await postEpochRoot({
        distributor: sys.distributor,
        signer: chain.wallets[0],
        journal,
        epoch,
        root: file.root,
        fileHash: epochFileHash(file),
        total: BigInt(file.total),
        fundingRoot: file.funding!.root,
      });
      expect(posted.alreadyPosted).toBe(false);
      // Posting again is a no-op.
      const again = await postEpochRoot({
        distributor: sys.distributor,
        signer: chain.wallets[0],
        journal,
        epoch,
        root: file.root,
        fileHash: epochFileHash(file),
        total: BigInt(file.total),
        fundingRoot: file.funding!.root,
      });
      expect(again).toMatchObject({ alreadyPosted: true, txHash: posted.txHash });
      await increaseTime(chain, WINDOW);
      // Anyone funds the final epoch from its file: here a developer, not the settler.
      const funded = await fundEpochFromEscrow({
        distributor: sys.addresses.distributor,
        signer: chain.wallets[1],
        file,
      });
      expect(funded).toMatchObject({ epoch, funded: BigInt(file.total), fullyFunded: true });
      for (const d of file.debits) balances.set(d.account, balances.get(d.account)! - BigInt(d.amount));
      previous = cumulativeFromEpochFile(file);
    }
    expect(await latestClaimableEpoch(sys.distributor)).toBe(2);

    // Each provider claims once, from the latest epoch, and gets everything it earned.
    const proofs = new EpochProofs(files[1]);
    for (const [i, provider] of providers.entries()) {
      const ticket = proofs.ticket(provider)!;
      const result = await claimRewards({
        distributor: sys.addresses.distributor,
        signer: chain.wallets[3 + i],
        ticket,
      });
      expect(result.paid).toBe(ticket.cumulativeAmount);
      const again = await claimRewards({
        distributor: sys.addresses.distributor,
        signer: chain.wallets[3 + i],
        ticket,
      });
      expect(again.paid).toBe(0n);
    }
    let paid = 0n;
    for (const p of providers) paid += await sys.token.balanceOf(p);
    const spent = files.reduce((s, f) => s + BigInt(f.total), 0n);
    expect(paid).toBe(spent);
    expect(await sys.token.balanceOf(sys.addresses.distributor)).toBe(0n);
    for (const d of developers) {
      expect(await sys.escrow.balanceOf(d)).toBe(balances.get(d.toLowerCase()));
    }
    expect(await sys.token.balanceOf(sys.addresses.escrow)).toBe(100n * ONE_TOKEN - spent);
  });

  it('audits the epoch files against the chain, and a tampered file fails', async () => {
    for (const file of files) {
      const [root, fileHash] = await sys.distributor.epochRoot(file.epoch);
      expect(auditEpoch(file, root, fileHash).problems).toEqual([]);
    }
    const [root2, hash2] = await sys.distributor.epochRoot(2);
    expect(auditEpoch(files[1], root2, hash2, { previous: files[0] }).ok).toBe(true);

    const leaves = files[1].leaves.map((l, i) =>
      i === 0
        ? {
            ...l,
            cumulativeAmount: (BigInt(l.cumulativeAmount) + 1n).toString(),
            epochAmount: (BigInt(l.epochAmount) + 1n).toString(),
          }
        : l,
    );
    const tampered = { ...files[1], leaves };
    const report = auditEpoch(tampered, root2, hash2);
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.code)).toEqual(
      expect.arrayContaining([
        'TOTAL_MISMATCH',
        'ROOT_MISMATCH',
        'CHAIN_ROOT_MISMATCH',
        'CHAIN_FILE_HASH_MISMATCH',
      ]),
    );

    // The CLI: exit 0 on the published file, 1 on the tampered one.
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
    const args = ['--rpc', chain.anvil.rpcUrl, '--distributor', sys.addresses.distributor];
    expect(
      await runAuditCli([join(dir, 'epoch-2.json'), ...args, '--previous', join(dir, 'epoch-1.json')], io),
    ).toBe(0);
    await writeFile(join(dir, 'tampered.json'), JSON.stringify(tampered, null, 2));
    expect(await runAuditCli([join(dir, 'tampered.json'), ...args], io)).toBe(1);
    expect(lines.join('\n')).toContain('CHAIN_ROOT_MISMATCH');
  });

  it('resumes a root whose transaction was signed and journaled but never broadcast, and refuses gaps', async () => {
    const file = closeEpoch(
      cumulativeFromEpochFile(files[1]),
      [{ provider: providers[0], receipts: [{ id: 'e3', amount: 5n }] }],
      { epoch: 3, ...sys.domain },
    );
    const journal = new MemoryTxJournal();
    const settler = new Wallet(chain.anvil.accounts[0].privateKey, chain.provider);
    // A crash right after journaling: sign and record, do not broadcast.
    const request = await sys.distributor.postRoot.populateTransaction(
      3,
      file.root,
      epochFileHash(file),
      BigInt(file.total),
      ZeroHash,
    );
    const nonce = await chain.provider.getTransactionCount(settler.address, 'pending');
    const fees = { maxFeePerGas: 10n ** 10n, maxPriorityFeePerGas: 10n ** 9n };
    const raw = await settler.signTransaction(
      await settler.populateTransaction({ ...request, nonce, gasLimit: 200_000, ...fees }),
    );
    const { Transaction } = await import('ethers');
    const txHash = Transaction.from(raw).hash!;
    await journal.put({
      key: postRootKey(3, file.root),
      from: settler.address,
      nonce,
      to: request.to,
      data: request.data,
      attempts: [
        {
          txHash,
          rawTransaction: raw,
          maxFeePerGas: fees.maxFeePerGas.toString(),
          maxPriorityFeePerGas: fees.maxPriorityFeePerGas.toString(),
          sentAt: new Date().toISOString(),
        },
      ],
    });
    await expect(
      postEpochRoot({
        distributor: sys.distributor,
        signer: settler,
        journal,
        epoch: 4,
        root: file.root,
        fileHash: epochFileHash(file),
        total: 5n,
        fundingRoot: ZeroHash,
      }),
    ).rejects.toMatchObject({ code: 'EPOCH_GAP' });
    const posted = await postEpochRoot({
      distributor: sys.distributor,
      signer: settler,
      journal,
      epoch: 3,
      root: file.root,
      fileHash: epochFileHash(file),
      total: 5n,
      fundingRoot: ZeroHash,
    });
    expect(posted).toMatchObject({ txHash, alreadyPosted: false });
    expect(await sys.distributor.lastEpoch()).toBe(3n);
    const conflict = postEpochRoot({
      distributor: sys.distributor,
      signer: settler,
      journal,
      epoch: 3,
      root: files[0].root,
      fileHash: epochFileHash(file),
      total: 5n,
      fundingRoot: ZeroHash,
    });
    await expect(conflict).rejects.toBeInstanceOf(RewardsError);
    await expect(conflict).rejects.toMatchObject({ code: 'ROOT_CONFLICT' });
  });
});
