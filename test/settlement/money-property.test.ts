// The money invariants as a property of the real system: fast-check draws short random histories of
// deposits, spending caps, jobs, unlocks, cancels, withdrawals, settlement steps and coordinator crashes against a
// real anvil, PostgreSQL, Redis and coordinator; after each history the test drives settlement to
// quiescence and checks that off chain and on chain agree to the base unit, every final epoch is
// fully debited and funded, the ledger balances, tokens are conserved and nothing was minted, and no
// account was ever debited past the spending cap it signed (a job past it is refused, reserving nothing).
// The histories follow the protocol: a developer withdraws only after its unlock delay, and the
// coordinator settles within that delay (modelled by driving settlement to quiescence first).
//   MONEY_PROPERTY_RUNS (default 4) and MONEY_PROPERTY_SEED reproduce or extend a run.
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Wallet } from 'ethers';
import { SiweMessage } from 'siwe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANVIL_DEV_KEYS,
  ONE_TOKEN,
  signSpendingCap,
  spendingCapDomain,
  attachComputeToken,
  attachJobEscrow,
  attachRewardsDistributor,
  type ComputeTokenContract,
  type DeployedAddresses,
  type JobEscrowContract,
  type RewardsDistributorContract,
} from '@gpumesh/rewards';
import { api } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SettlementService } from '../../apps/coordinator/src/settlement/settlement.service.js';
import {
  balanceOf,
  deployForSettlement,
  epochs,
  increaseTime,
  query,
  settlementEnv,
  startOwnedCoordinator,
  startTestChain,
  waitFor,
  type OwnedCoordinator,
  type TestChain,
} from './support.js';
import { TERMINAL_STATES, isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';

const RUNS = Number(process.env.MONEY_PROPERTY_RUNS ?? 4);
const SEED = Number(process.env.MONEY_PROPERTY_SEED ?? Date.now() % 1_000_000_007);
const MAX_STEPS = 8;
/** Anvil accounts of the developers: 0 has the bootstrapped API key, the others sign in (SIWE). */
const DEVELOPERS = [0, 1, 2] as const;
const SETTLER = 9;
const PLATFORM = 7;
const CHALLENGE_WINDOW_S = 30;
/**
 * The first spending cap of developers 1 and 2, in base units: one job (a job reserves 10 at its max
 * price and is charged 3, the provider's price), not two. Developer 0 starts with a token.
 */
const FIRST_CAP = 12n;

type Dev = (typeof DEVELOPERS)[number];
type SettleAction = 'close' | 'post' | 'advance' | 'time';
/** What the coordinator is doing when it goes away: nothing, posting a root, funding, or running a job. */
type CrashPoint = 'idle' | 'post' | 'advance' | 'job';
type Step =
  | { kind: 'deposit'; dev: Dev; tokens: number; awaitCredit: boolean }
  /** The developer signs a cap `raise` base units higher: PUT to the coordinator, or set on chain. */
  | { kind: 'cap'; dev: Dev; raise: number; via: 'put' | 'chain' }
  | { kind: 'job'; dev: Dev; n: number }
  | { kind: 'unlock'; dev: Dev }
  | { kind: 'cancel'; dev: Dev }
  | { kind: 'withdraw'; dev: Dev; percent: number }
  | { kind: 'settle'; action: SettleAction }
  | { kind: 'crash'; during: CrashPoint; afterMs: number };

const devArb = fc.constantFrom(...DEVELOPERS);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('deposit' as const),
      dev: devArb,
      tokens: fc.integer({ min: 1, max: 5 }),
      awaitCredit: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('job' as const), dev: devArb, n: fc.constantFrom(8, 16, 24) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('cap' as const),
      dev: devArb,
      raise: fc.integer({ min: 0, max: 40 }),
      via: fc.constantFrom<'put' | 'chain'>('put', 'chain'),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('unlock' as const), dev: devArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), dev: devArb }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('withdraw' as const),
      dev: devArb,
      percent: fc.integer({ min: 1, max: 100 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('settle' as const),
      action: fc.constantFrom<SettleAction>('close', 'post', 'advance', 'time'),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('crash' as const),
      during: fc.constantFrom<CrashPoint>('idle', 'post', 'advance', 'job'),
      afterMs: fc.integer({ min: 0, max: 150 }),
    }),
  },
);

/** A history run first on every seed: a crash in each place an operation can be in flight. */
const CRASHES_IN_FLIGHT: Step[] = [
  { kind: 'deposit', dev: 0, tokens: 5, awaitCredit: true },
  { kind: 'job', dev: 0, n: 16 },
  { kind: 'crash', during: 'post', afterMs: 0 },
  { kind: 'job', dev: 0, n: 24 },
  { kind: 'crash', during: 'post', afterMs: 60 },
  { kind: 'crash', during: 'advance', afterMs: 0 },
  { kind: 'crash', during: 'job', afterMs: 100 },
  { kind: 'unlock', dev: 0 },
  { kind: 'withdraw', dev: 0, percent: 50 },
];

/** A history run first on every seed: jobs past the first cap are refused, then a higher cap admits them. */
const PAST_THE_CAP: Step[] = [
  { kind: 'deposit', dev: 2, tokens: 1, awaitCredit: true },
  { kind: 'job', dev: 2, n: 8 },
  { kind: 'job', dev: 2, n: 8 },
  { kind: 'cap', dev: 2, raise: 40, via: 'put' },
  { kind: 'job', dev: 2, n: 8 },
  { kind: 'settle', action: 'close' },
];

async function sumOf(url: string, sql: string): Promise<bigint> {
  return BigInt((await query<{ total: string }>(url, sql))[0].total);
}

/** A SIWE sign-in of anvil account `index`, then an API key for it. */
async function apiKeyOf(url: string, index: number): Promise<string> {
  const wallet = new Wallet(ANVIL_DEV_KEYS[index]);
  const nonce = await api<{ nonce: string; domain: string; chainId: number; uri: string }>(
    url,
    'GET',
    '/v1/auth/nonce',
  );
  const message = new SiweMessage({
    domain: nonce.body.domain,
    address: wallet.address,
    statement: 'Sign in to gpumesh',
    uri: nonce.body.uri,
    version: '1',
    chainId: nonce.body.chainId,
    nonce: nonce.body.nonce,
    issuedAt: new Date().toISOString(),
  }).prepareMessage();
  const signature = await wallet.signMessage(message);
  const session = await api<{ token: string }>(url, 'POST', '/v1/auth/siwe', {
    body: { message, signature },
  });
  if (session.status !== 200) throw new Error(`sign-in of account ${index}: ${session.status}`);
  const key = await api<{ secret: string }>(url, 'POST', '/v1/auth/api-keys', {
    key: session.body.token,
    body: { name: 'money-property' },
  });
  if (key.status !== 201) throw new Error(`API key of account ${index}: ${key.status}`);
  return key.body.secret;
}

describe('money invariants under random histories with crashes (property)', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let db: TestDatabase;
  let dataDir: string;
  let env: Record<string, string>;
  let c: OwnedCoordinator;
  let agent: FakeAgent | undefined;
  let settlement: SettlementService;
  let token: ComputeTokenContract;
  let distributor: RewardsDistributorContract;
  let supplyAfterDeploy: bigint;
  /** API keys by developer index (account 0's is the bootstrapped one, renewed on each start). */
  const keys = new Map<Dev, string>();
  /** What the histories did (printed at the end, so a run shows it exercised the system). */
  const seen: Record<string, number> = {};
  const count = (what: string): void => {
    seen[what] = (seen[what] ?? 0) + 1;
  };
  const addressOf = (dev: Dev): string => chain.anvil.accounts[dev].address.toLowerCase();
  const escrowOf = (dev: Dev): JobEscrowContract => attachJobEscrow(addresses.escrow, chain.wallets[dev]);

  async function startCoordinator(): Promise<void> {
    c = await startOwnedCoordinator(db.url, env);
    keys.set(0, c.devKey);
    settlement = c.running.app.get(SettlementService);
    const started = await startFakeAgent(c.url, { pricePerUnit: '3' });
    agent = started;
    await waitFor('the provider', async () => {
      const res = await api<unknown[]>(c.url, 'GET', '/v1/providers');
      return JSON.stringify(res.body).includes(started.peerId) ? true : undefined;
    });
  }

  /**
   * The coordinator and its agent go away `afterMs` into `during` (an operation left in flight ends
   * before the new one starts, as in a process that died); a new one starts on the same state.
   */
  async function crash(during: CrashPoint, afterMs: number, pending: Map<Dev, boolean>): Promise<void> {
    let inflight: Promise<string> = Promise.resolve('none');
    const outcome = (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => 'finished',
        () => 'interrupted',
      );
    if (during === 'post') {
      await settlement.closeNow(); // something to post, if anything was earned
      const next = await settlement.nextToPost();
      if (next !== null) inflight = outcome(settlement.post(next));
    } else if (during === 'advance') {
      await increaseTime(chain, CHALLENGE_WINDOW_S + 1);
      inflight = outcome(settlement.advance());
    } else if (during === 'job') {
      const dev = DEVELOPERS.find((d) => !pending.get(d)) ?? 0;
      agent?.setRunDelay(1_000);
      const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
        key: keys.get(dev),
        body: { ...matmulSpec(16, 16, 16, '10'), deadlineSeconds: 15 },
      });
      inflight = Promise.resolve(job.status === 201 ? 'submitted' : `refused ${job.status}`);
    }
    await new Promise((r) => setTimeout(r, afterMs));
    await agent?.stop();
    agent = undefined;
    await c.close();
    count(`crash:${during}:${await inflight}`);
    await startCoordinator();
  }

  async function offChain(dev: Dev): Promise<bigint> {
    const rows = await query<{ id: string }>(db.url, 'SELECT id FROM "Account" WHERE address = $1', [
      addressOf(dev),
    ]);
    if (rows.length === 0) return 0n;
    const id = rows[0].id;
    return (
      (await balanceOf(db.url, `acct:${id}:available`)) + (await balanceOf(db.url, `acct:${id}:reserved`))
    );
  }

  async function unlockSeen(dev: Dev, pending: boolean): Promise<void> {
    await waitFor(`account ${dev} unlock ${pending ? 'pending' : 'cleared'}`, async () => {
      const res = await api<{ escrowUnlockAt: string | null }>(c.url, 'GET', '/v1/account', {
        key: keys.get(dev),
      });
      return (res.body.escrowUnlockAt !== null) === pending ? true : undefined;
    });
  }

  /** No job open, no credit held, nothing reserved: every charge is in the ledger where an epoch takes it. */
  async function jobsSettled(): Promise<void> {
    await waitFor(
      'every job final and its charge vested',
      async () => {
        const open = await query<{ n: string }>(
          db.url,
          `SELECT count(*)::text AS n FROM "Job" WHERE state::text <> ALL($1::text[])`,
          [TERMINAL_STATES],
        );
        if (open[0].n !== '0') return undefined;
        const held = await sumOf(
          db.url,
          `SELECT COALESCE(SUM(balance),0)::text AS total FROM "LedgerBalance"
            WHERE account LIKE 'provider:%:held' OR account LIKE 'provider:%:held-fee' OR account LIKE 'acct:%:reserved'`,
        );
        return held === 0n ? true : undefined;
      },
      90_000,
    );
  }

  /** Closes, posts and advances (moving chain time past the challenge window) until every closed epoch is FINALIZED. */
  async function driveToQuiescence(): Promise<void> {
    await jobsSettled();
    for (let pass = 0; ; pass++) {
      const rows = (await epochs(db.url)).filter((e) => e.total !== null);
      if (
        (await balanceOf(db.url, 'system:fees')) === 0n &&
        rows.every((e) => e.state === 'FINALIZED') &&
        pass > 0
      )
        return;
      if (pass >= 6) throw new Error(`no quiescence: ${JSON.stringify(rows)}`);
      await settlement.closeNow();
      for (let next = await settlement.nextToPost(); next !== null; next = await settlement.nextToPost())
        await settlement.post(next);
      await increaseTime(chain, CHALLENGE_WINDOW_S + 1);
      await settlement.advance();
    }
  }

  /** The developer's highest cap so far (the coordinator's view, which follows the chain's). */
  async function capOf(dev: Dev): Promise<bigint> {
    const res = await api<{ spendingCap: { cap: string } | null }>(c.url, 'GET', '/v1/account', {
      key: keys.get(dev),
    });
    return BigInt(res.body.spendingCap?.cap ?? '0');
  }

  /** `dev` signs `cap` and gives it to the coordinator (PUT), or sets it on chain (the watcher follows). */
  async function signCap(dev: Dev, cap: bigint, via: 'put' | 'chain'): Promise<void> {
    if (via === 'chain') {
      if (cap > (await escrowOf(dev).spendingCapOf(addressOf(dev)))) {
        await (await escrowOf(dev).setSpendingCap(cap)).wait();
      }
      await waitFor(`the cap of ${dev} seen`, async () => ((await capOf(dev)) >= cap ? true : undefined));
      return;
    }
    const domain = spendingCapDomain(chain.anvil.chainId, addresses.escrow);
    const signed = await signSpendingCap(chain.wallets[dev], domain, cap);
    const res = await api(c.url, 'PUT', '/v1/account/spending-cap', {
      key: keys.get(dev),
      body: { cap: cap.toString(), signature: signed.signature },
    });
    expect(res.status).toBe(200);
  }

  async function apply(step: Step, pending: Map<Dev, boolean>): Promise<void> {
    switch (step.kind) {
      case 'cap': {
        const cap = (await capOf(step.dev)) + BigInt(step.raise);
        await signCap(step.dev, cap, step.via);
        count(`cap:${step.via}`);
        return;
      }
      case 'deposit': {
        const receipt = await (await escrowOf(step.dev).deposit(BigInt(step.tokens) * ONE_TOKEN)).wait();
        // Either the next step races the escrow watcher, or it starts once the deposit is credited:
        // its event row and the ledger credit commit together. (Not "the balance rose by the
        // deposit": a job left in flight by a crash may be charged while the test waits.)
        if (step.awaitCredit)
          await waitFor(`the deposit of ${step.dev} credited`, async () => {
            const rows = await query<{ n: string }>(
              db.url,
              `SELECT count(*)::text AS n FROM "EscrowEvent" WHERE "txHash" = $1 AND kind = 'deposit'`,
              [receipt?.hash],
            );
            return rows[0].n === '1' ? true : undefined;
          });
        return;
      }
      case 'job': {
        const job = await api<{ id: string; error?: { code: string } }>(c.url, 'POST', '/v1/jobs', {
          key: keys.get(step.dev),
          body: matmulSpec(step.n, step.n, step.n, '10'),
        });
        if (pending.get(step.dev)) {
          expect(job.status).toBe(409);
          expect(job.body.error?.code).toBe('ESCROW_UNLOCK_PENDING');
          count('jobRefusedUnlockPending');
          return;
        }
        if (job.status === 402 && job.body.error?.code === 'SPENDING_CAP_EXCEEDED') {
          count('jobRefusedSpendingCap'); // past the cap the developer signed
          return;
        }
        if (job.status === 402) {
          count('jobRefusedInsufficientBalance'); // not enough deposited yet
          return;
        }
        expect(job.status).toBe(201);
        await waitFor(`job ${job.body.id}`, async () => {
          const res = await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${job.body.id}`, {
            key: keys.get(step.dev),
          });
          if (res.body.state === 'COMPLETED') return true;
          if (isTerminal(res.body.state)) throw new Error(`job ${res.body.state}`);
          return undefined;
        });
        count('jobCompleted');
        return;
      }
      case 'unlock':
        // The protocol (and `gpumesh withdraw`): no second request while one is pending. A second
        // one in the same second as the first is estimated as a no-op write and runs out of gas.
        if (pending.get(step.dev)) return;
        await (await escrowOf(step.dev).requestUnlock()).wait();
        pending.set(step.dev, true);
        await unlockSeen(step.dev, true);
        return;
      case 'cancel':
        await (await escrowOf(step.dev).cancelUnlock()).wait();
        pending.set(step.dev, false);
        await unlockSeen(step.dev, false);
        return;
      case 'withdraw': {
        if (!pending.get(step.dev)) return; // the protocol: unlock first
        // The coordinator settles within the unlock delay: every charge before the unlock is debited.
        await driveToQuiescence();
        await increaseTime(chain, Number(await escrowOf(step.dev).unlockDelay()) + 1);
        const amount =
          ((await escrowOf(step.dev).balanceOf(addressOf(step.dev))) * BigInt(step.percent)) / 100n;
        if (amount === 0n) return;
        await (await escrowOf(step.dev).withdraw(amount)).wait();
        count('withdrawal');
        pending.set(step.dev, false); // a withdrawal spends the unlock
        await unlockSeen(step.dev, false);
        return;
      }
      case 'settle':
        if (step.action === 'close') await settlement.closeNow();
        else if (step.action === 'post') {
          const next = await settlement.nextToPost();
          if (next !== null) await settlement.post(next);
        } else if (step.action === 'advance') await settlement.advance();
        else await increaseTime(chain, CHALLENGE_WINDOW_S + 1);
        return;
      case 'crash':
        await crash(step.during, step.afterMs, pending);
        return;
    }
  }

  async function checkInvariants(): Promise<void> {
    const escrow = attachJobEscrow(addresses.escrow, chain.provider);
    // Off chain == on chain for every developer, once the watcher has applied every escrow event.
    const mismatch = async (): Promise<string | undefined> => {
      for (const dev of DEVELOPERS) {
        const off = await offChain(dev);
        const on = await escrow.balanceOf(addressOf(dev));
        if (off !== on) return `developer ${dev}: off chain ${off}, escrow ${on}`;
      }
      return undefined;
    };
    await waitFor(
      'off chain == on chain',
      async () => ((await mismatch()) === undefined ? true : undefined),
      15_000,
    ).catch(() => undefined);
    expect(await mismatch()).toBeUndefined();
    // Every closed epoch is FINALIZED, fully debited from the escrow and funded in the distributor.
    const rows = (await epochs(db.url)).filter((e) => e.total !== null);
    for (const e of rows) {
      expect(e.state, `epoch ${e.id}`).toBe('FINALIZED');
      expect(await escrow.debitedIn(e.id), `epoch ${e.id} debited`).toBe(BigInt(e.total!));
      expect(await distributor.fundedIn(e.id), `epoch ${e.id} funded`).toBe(BigInt(e.total!));
    }
    // The ledger balances.
    expect(await sumOf(db.url, 'SELECT COALESCE(SUM(amount),0)::text AS total FROM "LedgerEntry"')).toBe(0n);
    // Tokens: the escrow holds exactly its accounts' balances (no one else deposited), the
    // distributor what was funded less what was claimed, and nothing was minted after the deploy.
    let escrowed = 0n;
    for (const i of [...DEVELOPERS, PLATFORM])
      escrowed += await escrow.balanceOf(chain.anvil.accounts[i].address);
    expect(await token.balanceOf(addresses.escrow)).toBe(escrowed);
    let funded = 0n;
    const last = Number(await distributor.lastEpoch());
    for (let e = 1; e <= last; e++) funded += await distributor.fundedIn(e);
    expect(await token.balanceOf(addresses.distributor)).toBe(funded - (await distributor.totalClaimed()));
    expect(await token.totalSupply()).toBe(supplyAfterDeploy);
    // Spending caps: no account was debited past the cap it signed, and every debit funded an epoch.
    let spent = 0n;
    for (const i of [...DEVELOPERS, PLATFORM]) {
      const address = chain.anvil.accounts[i].address;
      const debited = await escrow.spentBy(address);
      expect(debited <= (await escrow.spendingCapOf(address)), `account ${i} within its cap`).toBe(true);
      spent += debited;
    }
    let debitedInEpochs = 0n;
    for (let e = 1; e <= last; e++) debitedInEpochs += await escrow.debitedIn(e);
    expect(spent).toBe(debitedInEpochs);
  }

  beforeAll(async () => {
    chain = await startTestChain(1);
    addresses = await deployForSettlement(chain, SETTLER, CHALLENGE_WINDOW_S);
    token = attachComputeToken(addresses.token, chain.wallets[0]);
    distributor = attachRewardsDistributor(addresses.distributor, chain.provider);
    supplyAfterDeploy = await token.totalSupply();
    // Developers 1 and 2 get tokens from account 0 (the only one minted to); all approve the escrow once.
    for (const dev of DEVELOPERS) {
      if (dev !== 0) await (await token.transfer(chain.anvil.accounts[dev].address, 100n * ONE_TOKEN)).wait();
      const own = attachComputeToken(addresses.token, chain.wallets[dev]);
      await (await own.approve(addresses.escrow, 1_000n * ONE_TOKEN)).wait();
    }
    db = await createTestDatabase();
    dataDir = await mkdtemp(join(tmpdir(), 'gpumesh-money-property-'));
    env = settlementEnv(chain, addresses, SETTLER, {
      SETTLEMENT_TICK_MS: '0',
      DEPOSIT_CONFIRMATIONS: '1',
      PLATFORM_ACCOUNT_ADDRESS: chain.anvil.accounts[PLATFORM].address,
      MIN_PROVIDER_STAKE: '0',
      // A restart is the same coordinator: same data directory, same queues.
      DATA_DIR: dataDir,
      QUEUE_PREFIX: `mp${randomBytes(6).toString('hex')}`,
    });
    await startCoordinator();
    for (const dev of DEVELOPERS) if (dev !== 0) keys.set(dev, await apiKeyOf(c.url, dev));
    // Each developer signs a first, small cap: some through the coordinator, one on chain.
    for (const dev of DEVELOPERS) {
      await signCap(dev, dev === 0 ? ONE_TOKEN : FIRST_CAP, dev === 1 ? 'chain' : 'put');
    }
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await c?.close();
    await db?.drop();
    await chain?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it(`holds after ${RUNS} random histories of up to ${MAX_STEPS} steps (seed ${SEED})`, async () => {
    const pending = new Map<Dev, boolean>(DEVELOPERS.map((d) => [d, false]));
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 3, maxLength: MAX_STEPS }), async (steps) => {
        // Histories run one after another on the same chain and database: the invariants are cumulative.
        for (const step of steps) {
          if (step.kind !== 'job' && step.kind !== 'withdraw' && step.kind !== 'crash') count(step.kind);
          await apply(step, pending);
        }
        await driveToQuiescence();
        await checkInvariants();
      }),
      // Shrinking would replay histories on state the failed one left behind: report, do not shrink.
      {
        numRuns: RUNS,
        seed: SEED,
        endOnFailure: true,
        verbose: true,
        examples: [[CRASHES_IN_FLIGHT], [PAST_THE_CAP]],
      },
    );
    const finalized = (await epochs(db.url)).filter((e) => e.state === 'FINALIZED').length;
    console.log(`money-property seed ${SEED}: ${JSON.stringify({ ...seen, epochsFinalized: finalized })}`);
    expect(finalized).toBeGreaterThan(0);
    expect(seen.jobRefusedSpendingCap ?? 0).toBeGreaterThan(0); // PAST_THE_CAP at least
  }, 600_000);
});
