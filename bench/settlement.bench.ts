// Settlement benchmark: the ledger's credit aggregation, the epoch close and Merkle build for
// 100,000 providers, and gas on a real anvil — posting a root, claiming (proofs from the 100,000-leaf
// tree), debiting escrows — amortised over an epoch of 1,000,000 paid jobs, beside paying each job
// with an ERC20 transfer measured in the same run. Also: the gas of `JobEscrow.debit` per account in
// batches of 1, 10 and 100 accounts, and the base units posted but left unfunded over the epochs it
// settles (read from the chain; must be 0). The watcher: its audit of the 100,000-provider file (goal
// ≤ 2 s), the time from a tampered root to its veto, and the coordinator-gone drill (its e2e test,
// run here: the share of posted epochs' value the providers recover with the coordinator gone).
//   npm run bench -- --only settlement
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import {
  JsonRpcProvider,
  NonceManager,
  Wallet,
  ZeroHash,
  randomBytes,
  type ContractTransactionResponse,
} from 'ethers';

import {
  attachComputeToken,
  attachJobEscrow,
  closeEpoch,
  cumulativeFromEpochFile,
  deployAll,
  EpochCreditBook,
  epochFileHash,
  EpochProofs,
  epochTree,
  EpochAuditor,
  EpochWatcher,
  fundingTree,
  keccak256Hex,
  serializeEpochFile,
  attachRewardsDistributor,
  toHex,
  signSpendingCap,
  spendingCapDomain,
  type EpochFile,
  type FundingBatch,
} from '@gpumesh/rewards';
import { startAnvil } from '@gpumesh/devchain';

const JOBS = 1_000_000;
const PROVIDERS = 100_000;
const DEVELOPERS = 10_000;
const CLAIM_SAMPLES = 16;
/** Batch sizes whose `JobEscrow.debit` gas is reported per account. */
const DEBIT_BATCH_SIZES = [1, 10, 100] as const;

function address(): string {
  return toHex(randomBytes(20));
}

async function gasOf(tx: Promise<ContractTransactionResponse>): Promise<bigint> {
  const receipt = await (await tx).wait();
  if (!receipt || receipt.status !== 1) throw new Error('transaction failed');
  return receipt.gasUsed;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** A watcher process's audits of an epoch file (bench/support/watcher-audit.ts). */
async function runWatcherAudit(
  task: Record<string, unknown>,
): Promise<{ firstMs: number; runsMs: number[] }> {
  const script = fileURLToPath(new URL('./support/watcher-audit.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(task)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0)
        reject(new Error(`the watcher audit process failed (exit ${code}): ${err.slice(-500)}`));
      else resolve(JSON.parse(out) as { firstMs: number; runsMs: number[] });
    });
  });
}

/**
 * The coordinator-gone drill, run as its e2e test runs it (real coordinator, agents, anvil; then the
 * coordinator and its database are gone for good): the share of what posted epochs owe that the
 * providers claim from peer-held files, and the unposted tail.
 */
async function runCoordinatorGoneDrill(): Promise<Record<string, unknown>> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const dir = await mkdtemp(join(tmpdir(), 'gpumesh-drill-'));
  const figures = join(dir, 'figures.json');
  try {
    const started = performance.now();
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn('npx', ['vitest', 'run', '--project', 'e2e', 'test/e2e/coordinator-gone.test.ts'], {
        cwd: root,
        env: { ...process.env, GPUMESH_DRILL_FIGURES: figures },
        stdio: 'ignore',
      });
      child.on('error', reject);
      child.on('exit', resolve);
    });
    if (code !== 0) return { error: `the drill's test failed (exit ${code})` };
    return {
      ...(JSON.parse(await readFile(figures, 'utf8')) as Record<string, unknown>),
      wallMs: Math.round(performance.now() - started),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function mean(values: readonly bigint[]): number {
  return Math.round(Number(values.reduce((s, v) => s + v, 0n)) / values.length);
}

export async function run(): Promise<Record<string, unknown>> {
  // The chain first: every leaf is bound to the distributor's chain id and address.
  const anvil = await startAnvil();
  const provider = new JsonRpcProvider(anvil.rpcUrl, undefined, {
    staticNetwork: true,
    cacheTimeout: -1,
    pollingInterval: 20,
  });
  try {
    const admin = new NonceManager(new Wallet(anvil.accounts[0].privateKey, provider));
    const payer = new NonceManager(new Wallet(anvil.accounts[1].privateKey, provider));
    const addresses = await deployAll(admin, {
      challengeWindowSeconds: 0,
      maxEpochSeconds: 3_600,
      fundingMarginSeconds: 0,
      unlockDelaySeconds: 3_600,
      unbondingDelaySeconds: 3_600,
      // Above the default cap (10^15): the payer holds 10^15 and the epochs are minted on top.
      tokenCap: 10n ** 18n,
      mint: [{ to: anvil.accounts[1].address, amount: 10n ** 15n }],
    });
    const token = attachComputeToken(addresses.token, admin);
    const distributor = attachRewardsDistributor(addresses.distributor, admin);
    const payerToken = attachComputeToken(addresses.token, payer);

    const domain = { chainId: anvil.chainId, distributor: addresses.distributor };
    // ----------------------------------------------------------------- ledger and epoch close
    const providers = Array.from({ length: PROVIDERS }, address);
    const developers = Array.from({ length: DEVELOPERS }, address);
    const receiptIds = Array.from({ length: JOBS }, (_, i) => `job-${i}`);
    const amounts = Array.from({ length: 1_000 }, (_, i) => BigInt(1_000 + i * 37));
    const book = new EpochCreditBook();
    let started = performance.now();
    for (let i = 0; i < JOBS; i++) {
      book.credit(
        providers[(i * 7_919) % PROVIDERS],
        developers[i % DEVELOPERS],
        amounts[i % 1_000],
        receiptIds[i],
      );
    }
    const creditMs = performance.now() - started;

    started = performance.now();
    const epoch1 = closeEpoch(new Map(), book.credits(), {
      epoch: 1,
      ...domain,
      escrow: addresses.escrow,
      debits: book.debits(),
    });
    const closeMs = performance.now() - started;
    started = performance.now();
    const tree = epochTree(epoch1);
    const merkleMs = performance.now() - started;
    // The same tree with OpenZeppelin's library (what an independent auditor would use), from the
    // dump's values: gpumesh keeps its own builder only because it is faster (and equal, merkle.spec.ts).
    const values = epoch1.tree!.values.map((v) => [...v.value]);
    started = performance.now();
    const ozRoot = StandardMerkleTree.of(values, [...epoch1.tree!.leafEncoding]).root;
    const merkleOpenZeppelinMs = performance.now() - started;
    if (ozRoot !== tree.root) throw new Error(`OpenZeppelin builds root ${ozRoot}, gpumesh ${tree.root}`);
    started = performance.now();
    const fileHash = epochFileHash(epoch1);
    const fileHashMs = performance.now() - started;

    // What `gpumesh watch` does with each posted root: audit the serialized file of PROVIDERS leaves
    // against the root and file hash (parse, arithmetic, receipts, the tree, the hash). Goal ≤ 2 s.
    // Measured in a process of its own, as a watcher runs (bench/support/watcher-audit.ts): on two
    // threads (EpochAuditor, its worker started once per watcher: the first audit is reported apart)
    // and, for the ratio, on one (auditEpoch), the two processes taking turns.
    const epoch1Text = serializeEpochFile(epoch1);
    const auditDir = await mkdtemp(join(tmpdir(), 'gpumesh-audit-'));
    const auditFile = join(auditDir, 'epoch-1.json');
    await writeFile(auditFile, epoch1Text);
    const watcherAudits = async (mode: 'two' | 'one'): Promise<{ firstMs: number; runsMs: number[] }> =>
      runWatcherAudit({ file: auditFile, root: tree.root, fileHash, domain, mode, runs: 3 });
    const twoThreads: { firstMs: number; runsMs: number[] }[] = [];
    const oneThread: { firstMs: number; runsMs: number[] }[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        twoThreads.push(await watcherAudits('two'));
        oneThread.push(await watcherAudits('one'));
      }
    } finally {
      await rm(auditDir, { recursive: true, force: true });
    }
    const watcherAuditRuns = twoThreads.flatMap((r) => r.runsMs);
    const watcherAuditOneThreadRuns = oneThread.flatMap((r) => r.runsMs);
    const watcherAuditFirstMs = median(twoThreads.map((r) => r.firstMs));
    // The same audit from the text in this process (what a caller holding a string gets).
    const inProcess = new EpochAuditor();
    const watcherAuditFromTextRuns: number[] = [];
    for (let i = 0; i < 3; i++) {
      const at = performance.now();
      const report = await inProcess.audit(epoch1Text, tree.root, fileHash, { domain });
      watcherAuditFromTextRuns.push(performance.now() - at);
      if (!report.ok)
        throw new Error(`the bench's own epoch file failed its audit: ${report.problems[0]?.message}`);
    }
    await inProcess.close();

    // Epoch 2: every provider earns a little more (for steady-state repeat claims).
    const book2 = new EpochCreditBook();
    for (let i = 0; i < PROVIDERS; i++)
      book2.credit(providers[i], developers[i % DEVELOPERS], 1_000n, `e2-${i}`);
    const epoch2 = closeEpoch(cumulativeFromEpochFile(epoch1), book2.credits(), {
      epoch: 2,
      ...domain,
      debits: book2.debits(),
    });

    // ----------------------------------------------------------------- gas on anvil
    // ERC20 transfer per job, to a fresh recipient and to one that already holds tokens.
    const recipient = address();
    const transferFresh = await gasOf(payerToken.transfer(recipient, 1_000n));
    const transferExisting = await gasOf(payerToken.transfer(recipient, 1_000n));

    const post1 = await gasOf(distributor.postRoot(1, epoch1.root, fileHash, BigInt(epoch1.total), ZeroHash));
    // The admin (the minter here) funds the epochs; the escrow's debits fund part of epoch 2 below.
    await (await token.mint(anvil.accounts[0].address, BigInt(epoch2.cumulativeTotal))).wait();
    await (await token.approve(addresses.distributor, BigInt(epoch2.cumulativeTotal))).wait();
    await provider.send('evm_mine', []);
    await (await distributor.fund(1, BigInt(epoch1.total))).wait();

    const sample = (file: EpochFile, proofs: EpochProofs, indices: readonly number[]): Promise<bigint[]> =>
      Promise.all([]).then(async () => {
        const out: bigint[] = [];
        for (const i of indices) {
          const t = proofs.ticket(file.leaves[i].account)!;
          out.push(
            await gasOf(distributor.claim(t.epoch, t.index, t.account, t.cumulativeAmount, [...t.proof])),
          );
        }
        return out;
      });
    const proofs1 = new EpochProofs(epoch1);
    const spread = Array.from({ length: CLAIM_SAMPLES }, (_, k) =>
      Math.floor(((k + 0.5) * PROVIDERS) / CLAIM_SAMPLES),
    );
    const neighbours = Array.from({ length: CLAIM_SAMPLES }, (_, k) => 40_000 + k);
    const firstCold = await sample(epoch1, proofs1, spread);
    const firstSharedWord = await sample(epoch1, proofs1, neighbours);

    // Debits: one batch over the nine other dev accounts, each with its own deposit (cold storage);
    // then batches of 1, 10 and 100 fresh accounts, each with its own deposit (funded through
    // depositFor; none debited before in this epoch) and signed spending cap. All of them are
    // committed with epoch 2's root (its funding root) and each funds part of epoch 2.
    const debitors = anvil.accounts.slice(1);
    for (const a of debitors) {
      const w = new NonceManager(new Wallet(a.privateKey, provider));
      if (a.address !== anvil.accounts[1].address) await (await token.mint(a.address, 1_000_000n)).wait();
      await (await attachComputeToken(addresses.token, w).approve(addresses.escrow, 1_000_000n)).wait();
      await (await attachJobEscrow(addresses.escrow, w).deposit(1_000_000n)).wait();
      await (await attachJobEscrow(addresses.escrow, w).setSpendingCap(1_000_000n)).wait();
    }
    const escrowAdmin = attachJobEscrow(addresses.escrow, admin);
    const chainId = Number((await provider.getNetwork()).chainId);
    const batches: FundingBatch[] = [
      { index: 0, accounts: debitors.map((a) => a.address), amounts: debitors.map(() => 1n) },
      { index: 1, accounts: [debitors[0].address], amounts: [1n] },
    ];
    for (const size of DEBIT_BATCH_SIZES) {
      const keys = Array.from({ length: size }, () => Wallet.createRandom());
      const accounts = keys.map((k) => k.address);
      // 2 each, 1 debited: the balance stays non-zero, as a developer's usually does.
      await (await token.mint(anvil.accounts[0].address, 2n * BigInt(size))).wait();
      await (await token.approve(addresses.escrow, 2n * BigInt(size))).wait();
      for (const a of accounts) await (await escrowAdmin.depositFor(a, 2n)).wait();
      // Each signs a spending cap (anyone submits it): the debit reads and writes its cap word.
      const capDomain = spendingCapDomain(chainId, addresses.escrow);
      for (const k of keys) {
        const signed = await signSpendingCap(k, capDomain, 2n);
        await (await escrowAdmin.authorize(k.address, 2n, signed.signature)).wait();
      }
      batches.push({ index: batches.length, accounts, amounts: accounts.map(() => 1n) });
    }
    const fundingTree2 = fundingTree({ chainId, escrow: addresses.escrow }, 2, batches)!;
    const post2 = await gasOf(
      distributor.postRoot(2, epoch2.root, epochFileHash(epoch2), BigInt(epoch2.total), fundingTree2.root),
    );
    await provider.send('evm_mine', []);
    const debitWith = (b: FundingBatch): Promise<bigint> =>
      gasOf(escrowAdmin.debit(2, b.index, b.accounts, b.amounts, fundingTree2.proof(b.index)));
    const debitBatch = await debitWith(batches[0]);
    const debitOne = await debitWith(batches[1]);
    // Gas of a debit batch per account at 1, 10 and 100 accounts.
    const debitPerAccount: Record<string, number> = {};
    const debitGas = new Map<number, bigint>();
    let debitedFor2 = BigInt(debitors.length + 1);
    for (const b of batches.slice(2)) {
      const size = b.accounts.length;
      const gas = await debitWith(b);
      debitPerAccount[`accounts${size}`] = Math.round(Number(gas) / size);
      debitGas.set(size, gas);
      debitedFor2 += BigInt(size);
    }
    await (await distributor.fund(2, BigInt(epoch2.total) - debitedFor2)).wait();
    const proofs2 = new EpochProofs(epoch2);
    const repeat = await sample(epoch2, proofs2, [...spread, ...neighbours]);

    // Unfunded base units over the epochs settled here, read from the chain (must be 0).
    let unfunded = 0n;
    for (const e of [1, 2]) unfunded += (await distributor.epochTotal(e)) - (await distributor.fundedIn(e));

    // Time from a tampered RootPosted to its veto: a watcher (as `npm start` runs one, polling every
    // 2 s, here with the guardian key) against a distributor with a one-hour challenge window; the
    // coordinator posts epoch 1's root with the file hash of a file that pays an attacker more.
    const watched = await deployAll(admin, {
      challengeWindowSeconds: 3_600,
      maxEpochSeconds: 3_600,
      fundingMarginSeconds: 0,
      unlockDelaySeconds: 7_200,
      unbondingDelaySeconds: 3_600,
    });
    const watchedDomain = { chainId: anvil.chainId, distributor: watched.distributor };
    const honest = closeEpoch(
      new Map(),
      providers.slice(0, 100).map((p, i) => ({ provider: p, receipts: [{ id: `w${i}`, amount: 1_000n }] })),
      { epoch: 1, ...watchedDomain },
    );
    const served = serializeEpochFile({
      ...honest,
      leaves: honest.leaves.map((l, i) => (i === 0 ? { ...l, cumulativeAmount: '1000000' } : l)),
    });
    const watchedDistributor = attachRewardsDistributor(watched.distributor, admin);
    const stopWatcher = new AbortController();
    const vetoed = new Promise<void>((resolve) => {
      const watcher = new EpochWatcher({
        distributor: watched.distributor,
        provider,
        guardian: admin,
        fetchFile: () => Promise.resolve(served),
        onEvent: (e) => {
          if (e.kind === 'wrong' && e.veto.sent) resolve();
        },
      });
      void watcher.run(stopWatcher.signal, 2_000);
    });
    await (
      await watchedDistributor.postRoot(1, honest.root, keccak256Hex(served), BigInt(honest.total), ZeroHash)
    ).wait();
    started = performance.now();
    await vetoed;
    const watcherVetoMs = performance.now() - started;
    stopWatcher.abort();
    if ((await watchedDistributor.lastEpoch()) !== 0n) throw new Error('the tampered root was not vetoed');

    // Marginal cost of one more developer in a batch.
    const debitPerDeveloper = Number(debitBatch - debitOne) / (debitors.length - 1);

    const claimSteady = mean(repeat);
    const claimFirst = mean([...firstCold, ...firstSharedWord]);
    const settlementGas = Number(post2) + Number(debitOne) + debitPerDeveloper * (DEVELOPERS - 1);
    const perJobSettlementOnly = settlementGas / JOBS;
    const perJobAllProvidersClaim = (settlementGas + claimSteady * PROVIDERS) / JOBS;
    const proofDepth = tree.depth;
    return {
      jobs: JOBS,
      providers: PROVIDERS,
      developers: DEVELOPERS,
      ledgerCreditsPerSecond: Math.round(JOBS / (creditMs / 1_000)),
      ledgerCreditMs: Math.round(creditMs),
      epochCloseMs: Math.round(closeMs),
      merkleBuildMs: Math.round(merkleMs),
      merkleBuildOpenZeppelinMs: Math.round(merkleOpenZeppelinMs),
      merkleSpeedupVsOpenZeppelin: Number((merkleOpenZeppelinMs / merkleMs).toFixed(1)),
      epochFileBytes: epoch1Text.length,
      epochFileHashMs: Math.round(fileHashMs),
      watcherAuditMs: Math.round(median(watcherAuditRuns)),
      watcherAuditRunsMs: watcherAuditRuns.map(Math.round),
      watcherAuditFirstMs: Math.round(watcherAuditFirstMs),
      watcherAuditOneThreadMs: Math.round(median(watcherAuditOneThreadRuns)),
      watcherAuditOneThreadRunsMs: watcherAuditOneThreadRuns.map(Math.round),
      watcherAuditSpeedup: Number((median(watcherAuditOneThreadRuns) / median(watcherAuditRuns)).toFixed(2)),
      watcherAuditFromTextMs: Math.round(median(watcherAuditFromTextRuns)),
      watcherVetoMs: Math.round(watcherVetoMs),
      coordinatorGoneDrill: await runCoordinatorGoneDrill(),
      proofDepth,
      gasPostRootFirst: Number(post1),
      gasPostRoot: Number(post2),
      gasClaimSteadyStateAvg: claimSteady,
      gasClaimSteadyStateMax: Number(repeat.reduce((m, g) => (g > m ? g : m), 0n)),
      gasClaimFirstColdWordAvg: mean(firstCold),
      gasClaimFirstSharedWordAvg: mean(firstSharedWord),
      gasClaimFirstAvg: claimFirst,
      gasEscrowDebitPerDeveloper: Math.round(debitPerDeveloper),
      gasEscrowDebitPerAccount: debitPerAccount,
      // One more account in a later batch of the epoch (gasEscrowDebitPerDeveloper comes from the
      // epoch's first batch, so it also spreads the first write of the epoch's debited and funded sums).
      gasEscrowDebitMarginalPerAccount: Math.round(Number(debitGas.get(100)! - debitGas.get(10)!) / 90),
      unfundedBaseUnits: unfunded.toString(),
      gasErc20TransferFreshRecipient: Number(transferFresh),
      gasErc20TransferExistingRecipient: Number(transferExisting),
      gasPerJobSettlementOnly: Number(perJobSettlementOnly.toFixed(2)),
      gasPerJobIfEveryProviderClaimsEachEpoch: Number(perJobAllProvidersClaim.toFixed(1)),
      gasPerJobErc20Transfer: Number(transferFresh),
      note:
        'steady-state claim: the provider has claimed before (its packed claimed word and token balance are non-zero); ' +
        'first claims pay the 20k of a fresh storage word (a quarter of them share one) and a fresh token balance',
    };
  } finally {
    provider.destroy();
    await anvil.stop();
  }
}
