import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { decodeTensor, parseJobSpec, type TensorWire } from '@gpumesh/protocol';
import { evidenceHash, type EvidenceBundle } from '@gpumesh/verification';
import { api, startTestCoordinator, TEST_REDIS_URL, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import { pollUntil, query } from '../helpers/poll.js';
import { referenceMatmul, startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { createLogger } from '../../apps/coordinator/src/logging/logger.js';
import { startCoordinator } from '../../apps/coordinator/src/bootstrap.js';
import { QueueName } from '../../apps/coordinator/src/queue/queue.constants.js';

interface JobBody {
  id: string;
  state: string;
  cost: string;
  workUnits: string;
}

function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  return pollUntil(what, probe, timeoutMs);
}

const eventTypes = async (c: TestCoordinator, jobId: string): Promise<string[]> =>
  (
    await query<{ type: string }>(
      c.databaseUrl,
      'SELECT type FROM "JobEvent" WHERE "jobId" = $1 ORDER BY id',
      [jobId],
    )
  ).map((r) => r.type);

async function waitForProviders(c: TestCoordinator, n: number): Promise<void> {
  await waitFor(`${n} providers`, async () => {
    const res = await api<unknown[]>(c.url, 'GET', '/v1/providers');
    return res.body.length >= n ? true : undefined;
  });
}

async function waitForState(c: TestCoordinator, jobId: string, states: string[]): Promise<JobBody> {
  return waitFor(`job ${jobId} to reach ${states.join('|')}`, async () => {
    const res = await api<JobBody>(c.url, 'GET', `/v1/jobs/${jobId}`, { key: c.devKey });
    return states.includes(res.body.state) ? res.body : undefined;
  });
}

describe('dispatch without providers: retries, dead letter, deadline expiry', () => {
  let c: TestCoordinator;
  beforeAll(async () => {
    c = await startTestCoordinator({ DISPATCH_ATTEMPTS: '2', DISPATCH_BACKOFF_MS: '50' });
  });
  afterAll(async () => {
    await c?.close();
  });

  it('dead-letters a job no provider can take, after its retries, and explains why', async () => {
    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2, '1'),
    });
    await waitFor('dead letter', async () =>
      (await eventTypes(c, job.body.id)).includes('dispatch.dead_lettered') ? true : undefined,
    );
    const dlq = new Queue(QueueName.DeadLetter, {
      connection: { url: TEST_REDIS_URL },
      prefix: c.config.QUEUE_PREFIX,
    });
    try {
      const jobs = await dlq.getJobs(['waiting', 'completed', 'failed', 'delayed']);
      const entry = jobs.find((j) => (j.data as { jobId: string }).jobId === job.body.id);
      expect((entry?.data as { reason: string }).reason).toContain('no provider');
    } finally {
      await dlq.close();
    }
    const state = await api<JobBody>(c.url, 'GET', `/v1/jobs/${job.body.id}`, { key: c.devKey });
    expect(state.body.state).toBe('QUEUED'); // stays queued (and reserved) for UNPLACEABLE_GRACE_SECONDS (60 s)
  });

  it('expires a job at its deadline and releases its reservation', async () => {
    const before = await api<{ balance: string }>(c.url, 'GET', '/v1/account', { key: c.devKey });
    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: { ...matmulSpec(2, 2, 2, '1000'), deadlineSeconds: 1 },
    });
    expect(job.status).toBe(201);
    await waitForState(c, job.body.id, ['EXPIRED']);
    const after = await api<{ balance: string }>(c.url, 'GET', '/v1/account', { key: c.devKey });
    expect(after.body.balance).toBe(before.body.balance);
  });
});

describe('dispatch over libp2p to providers (real PostgreSQL, Redis and libp2p nodes)', () => {
  let c: TestCoordinator;
  const agents: FakeAgent[] = [];
  beforeAll(async () => {
    // No canaries here: the disagreement test wants its cheater caught by the tie-break, not a canary.
    c = await startTestCoordinator({
      DISPATCH_BACKOFF_MS: '50',
      OFFER_ACCEPT_TIMEOUT_MS: '3000',
      CANARY_RATE: '0',
      PROBATION_CANARY_RATE: '0',
    });
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop();
  });
  afterAll(async () => {
    await c?.close();
  });

  it('runs a job on a provider, returns the verified result, and pays the provider from the reservation', async () => {
    agents.push(await startFakeAgent(c.url, { pricePerUnit: '2' }));
    await waitForProviders(c, 1);
    const before = await api<{ balance: string; reserved: string }>(c.url, 'GET', '/v1/account', {
      key: c.devKey,
    });
    const spec = matmulSpec(3, 4, 2, '10');
    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', { key: c.devKey, body: spec });
    expect(job.status).toBe(201);
    await waitForState(c, job.body.id, ['COMPLETED']);

    const result = await api<{ result: { outputs: TensorWire[] } }>(
      c.url,
      'GET',
      `/v1/jobs/${job.body.id}/result`,
      {
        key: c.devKey,
      },
    );
    expect(result.status).toBe(200);
    const expected = decodeTensor(referenceMatmul(parseJobSpec(spec))[0]).values;
    expect(Array.from(decodeTensor(result.body.result.outputs[0]).values)).toEqual(Array.from(expected));

    const types = await eventTypes(c, job.body.id);
    expect(types).toEqual(
      expect.arrayContaining([
        'job.submitted',
        'job.dispatched',
        'job.running',
        'attempt.succeeded',
        'job.verifying',
        'job.completed',
      ]),
    );
    const after = await api<{ balance: string; reserved: string }>(c.url, 'GET', '/v1/account', {
      key: c.devKey,
    });
    const paid = 2n * BigInt(job.body.workUnits); // the provider's price, not the job's maximum
    expect(BigInt(before.body.balance) - BigInt(after.body.balance)).toBe(paid);
    expect(after.body.reserved).toBe(before.body.reserved);
    const earned = await query<{ balance: string }>(
      c.databaseUrl,
      'SELECT balance::text FROM "LedgerBalance" WHERE account = $1',
      [`provider:${agents[0].peerId}:earned`],
    );
    const fee = (paid * BigInt(c.config.PLATFORM_FEE_BPS)) / 10_000n;
    expect(earned[0]?.balance).toBe((paid - fee).toString());
    const total = await query<{ total: string }>(
      c.databaseUrl,
      'SELECT COALESCE(SUM(amount),0)::text AS total FROM "LedgerEntry"',
    );
    expect(total[0].total).toBe('0');
  });

  it('records a quick result with its acceptance in one commit, and a slower job as running first', async () => {
    const history = (jobId: string) =>
      query<{ type: string; from: string | null; to: string | null; xid: string }>(
        c.databaseUrl,
        `SELECT type, "fromState"::text AS from, "toState"::text AS to, xmin::text AS xid
           FROM "JobEvent" WHERE "jobId" = $1 ORDER BY id`,
        [jobId],
      );
    const attemptOf = async (jobId: string) =>
      (
        await query<{ state: string; started: Date | null }>(
          c.databaseUrl,
          'SELECT state::text AS state, "startedAt" AS started FROM "JobAttempt" WHERE "jobId" = $1',
          [jobId],
        )
      )[0];

    // Quick: the result arrives within RUNNING_RECORD_DELAY_MS of the acceptance.
    const quick = await startFakeAgent(c.url, { operatorId: 'op-quick' });
    agents.push(quick);
    await waitForProviders(c, 1);
    const fast = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2, '5'),
    });
    await waitForState(c, fast.body.id, ['COMPLETED']);
    const fastEvents = await history(fast.body.id);
    const moves = fastEvents.filter((e) => e.to !== null).map((e) => `${e.from}>${e.to}`);
    expect(moves).toEqual([
      'null>QUEUED',
      'QUEUED>DISPATCHED',
      'DISPATCHED>RUNNING',
      'RUNNING>VERIFYING',
      'VERIFYING>COMPLETED',
    ]);
    const running = fastEvents.find((e) => e.type === 'job.running');
    const completed = fastEvents.find((e) => e.type === 'job.completed');
    expect(running?.xid).toBe(completed?.xid); // one commit
    const fastAttempt = await attemptOf(fast.body.id);
    expect(fastAttempt.state).toBe('SUCCEEDED');
    expect(fastAttempt.started).not.toBeNull();

    // Slower: the job is seen RUNNING while the provider works, then completes.
    quick.setRunDelay(1_500);
    const slow = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2, '5'),
    });
    await waitForState(c, slow.body.id, ['RUNNING']);
    await waitForState(c, slow.body.id, ['COMPLETED']);
    const slowEvents = await history(slow.body.id);
    const slowRunning = slowEvents.find((e) => e.type === 'job.running');
    const slowCompleted = slowEvents.find((e) => e.type === 'job.completed');
    expect(slowRunning?.from).toBe('DISPATCHED');
    expect(slowRunning?.xid).not.toBe(slowCompleted?.xid);
    expect((await attemptOf(slow.body.id)).state).toBe('SUCCEEDED');
  });

  it('dry-runs a job: where it would run, and every reason no provider matches with the cheapest fix', async () => {
    agents.push(await startFakeAgent(c.url, { pricePerUnit: '3', operatorId: 'op-dry' }));
    await waitForProviders(c, 1);
    await new Promise((r) => setTimeout(r, 2_100)); // the what-if index is rebuilt every 2 s
    const ok = await api<{ placeable: boolean; cost: string; candidates: { peerId: string }[] }>(
      c.url,
      'POST',
      '/v1/jobs/dry-run',
      {
        key: c.devKey,
        body: matmulSpec(2, 2, 2, '5'),
      },
    );
    expect(ok.status).toBe(200);
    expect(ok.body.placeable).toBe(true);
    expect(ok.body.cost).toBe('5');
    expect(ok.body.candidates.map((p) => p.peerId)).toEqual([agents[0].peerId]); // stopped agents went offline
    const tooCheap = await api<{
      placeable: boolean;
      explanation: { excluded: Record<string, number>; cheapest?: { kind: string }; message: string };
    }>(c.url, 'POST', '/v1/jobs/dry-run', {
      key: c.devKey,
      body: { ...matmulSpec(2, 2, 2, '1'), requirements: { minVramMiB: 1024 } },
    });
    expect(tooCheap.body.placeable).toBe(false);
    expect(tooCheap.body.explanation.excluded.price).toBeGreaterThanOrEqual(1);
    expect(tooCheap.body.explanation.excluded.vram).toBeGreaterThanOrEqual(1); // all reasons, not the first
    expect(tooCheap.body.explanation.message.length).toBeGreaterThan(0);
    const bad = await api<{ error: { code: string } }>(c.url, 'POST', '/v1/jobs/dry-run', {
      key: c.devKey,
      body: { kind: 'x' },
    });
    expect(bad.status).toBe(400);
  });

  it('places the job elsewhere when a provider rejects it, and never offers it to that provider again', async () => {
    // The rejecter is the only provider when the job is submitted, so the first offer must go to it.
    const rejecter = await startFakeAgent(c.url, {
      pricePerUnit: '1',
      behaviour: 'reject',
      operatorId: 'op-r',
    });
    agents.push(rejecter);
    await waitForProviders(c, 1);
    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2, '5'),
    });
    await waitFor('the rejecter to be offered the job', async () => (rejecter.offers > 0 ? true : undefined));
    const honest = await startFakeAgent(c.url, { pricePerUnit: '3', operatorId: 'op-h' });
    agents.push(honest);
    await waitForState(c, job.body.id, ['COMPLETED']);
    const attempts = await query<{ providerId: string; state: string; error: string | null }>(
      c.databaseUrl,
      'SELECT "providerId", state::text, error FROM "JobAttempt" WHERE "jobId" = $1 ORDER BY attempt',
      [job.body.id],
    );
    expect(rejecter.offers).toBe(1);
    expect(attempts[0]).toEqual({ providerId: rejecter.peerId, state: 'FAILED', error: 'rejected: busy' });
    expect(attempts.filter((a) => a.providerId === rejecter.peerId)).toHaveLength(1);
    expect(attempts[attempts.length - 1]).toMatchObject({ providerId: honest.peerId, state: 'SUCCEEDED' });
  });

  it('offers a job again to a provider that was only full (NO_CAPACITY), not to one that refused it', async () => {
    const only = await startFakeAgent(c.url, { pricePerUnit: '1', behaviour: 'full', operatorId: 'op-f' });
    agents.push(only);
    await waitForProviders(c, 1);
    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2, '5'),
    });
    await waitFor('a capacity rejection', async () => (only.offers > 0 ? true : undefined));
    only.setBehaviour('honest');
    await waitForState(c, job.body.id, ['COMPLETED']);
    const attempts = await query<{ state: string; error: string | null }>(
      c.databaseUrl,
      'SELECT state::text, error FROM "JobAttempt" WHERE "jobId" = $1 ORDER BY attempt',
      [job.body.id],
    );
    expect(attempts[0]).toMatchObject({
      state: 'FAILED',
      error: expect.stringMatching(/^rejected: NO_CAPACITY/),
    });
    expect(attempts[attempts.length - 1].state).toBe('SUCCEEDED');
  });

  it('breaks a disagreement with the coordinator reference: the cheater is banned with evidence, only the honest result is paid', async () => {
    const honest = await startFakeAgent(c.url, { operatorId: 'op-a', pricePerUnit: '2' });
    const cheat = await startFakeAgent(c.url, { operatorId: 'op-b', behaviour: 'wrong', pricePerUnit: '2' });
    agents.push(honest, cheat);
    await waitForProviders(c, 2);
    const before = await api<{ balance: string }>(c.url, 'GET', '/v1/account', { key: c.devKey });
    const spec = matmulSpec(2, 2, 2, '5');
    const job = await api<JobBody & { verification: { mode: string; k: number; cost: { total: string } } }>(
      c.url,
      'POST',
      '/v1/jobs',
      {
        key: c.devKey,
        body: { ...spec, redundancy: 1, verification: { mode: 'redundant', k: 2, canaryRate: 0 } },
      },
    );
    expect(job.status).toBe(201);
    expect(job.body.verification).toMatchObject({ mode: 'redundant', k: 2, source: 'request' });
    expect(job.body.cost).toBe(job.body.verification.cost.total);
    const done = await waitForState(c, job.body.id, ['FAILED', 'COMPLETED']);
    expect(done.state).toBe('COMPLETED');
    const result = await api<{ result: { outputs: TensorWire[] } }>(
      c.url,
      'GET',
      `/v1/jobs/${job.body.id}/result`,
      {
        key: c.devKey,
      },
    );
    const expected = decodeTensor(referenceMatmul(parseJobSpec(spec))[0]).values;
    expect(Array.from(decodeTensor(result.body.result.outputs[0]).values)).toEqual(Array.from(expected));
    // Only the honest provider's work was charged (2 per unit); the cheater earned nothing.
    const after = await api<{ balance: string }>(c.url, 'GET', '/v1/account', { key: c.devKey });
    expect(BigInt(before.body.balance) - BigInt(after.body.balance)).toBe(2n * BigInt(job.body.workUnits));
    const cheatEarned = await query<{ n: string }>(
      c.databaseUrl,
      `SELECT COUNT(*)::text AS n FROM "LedgerEntry" WHERE account LIKE $1 AND amount > 0`,
      [`provider:${cheat.peerId}:%`],
    );
    expect(cheatEarned[0].n).toBe('0');
    const banned = await query<{ status: string; banReason: string }>(
      c.databaseUrl,
      'SELECT status::text AS status, "banReason" FROM "Provider" WHERE "peerId" = $1',
      [cheat.peerId],
    );
    expect(banned[0]).toMatchObject({ status: 'BANNED' });
    expect(banned[0].banReason).toContain('lost_tiebreak');
    const evidence = await query<{ bundleHash: string; state: string; evidenceHash: string }>(
      c.databaseUrl,
      `SELECT e."bundleHash", s.state::text AS state, s."evidenceHash" FROM "Evidence" e
       JOIN "SlashProposal" s ON s."evidenceId" = e.id WHERE e."peerId" = $1`,
      [cheat.peerId],
    );
    expect(evidence).toHaveLength(1);
    expect(evidence[0].state).toBe('PROPOSED');
    expect(evidence[0].evidenceHash).toBe(evidence[0].bundleHash);
    // The slash compensates the developer whose job the cheater ran, weighted by the job's cost.
    const compensated = await query<{
      beneficiaries: { account: string; weight: string }[];
      address: string;
      cost: string;
    }>(
      c.databaseUrl,
      `SELECT s.beneficiaries, a.address, j.cost::text AS cost FROM "SlashProposal" s
       JOIN "Evidence" e ON e.id = s."evidenceId" JOIN "Job" j ON j.id = e."jobId"
       JOIN "Account" a ON a.id = j."accountId" WHERE e."peerId" = $1`,
      [cheat.peerId],
    );
    const beneficiary = compensated[0].beneficiaries.find((b) => b.account === compensated[0].address);
    expect(beneficiary).toBeDefined();
    expect(BigInt(beneficiary!.weight)).toBeGreaterThanOrEqual(BigInt(compensated[0].cost));
    // The evidence is public, redacted (no job inputs or outputs) under the same evidence hash; the
    // job's owner reads it whole.
    type Published = { hash: string; bundle: string; access: string; slash: { state: string } | null };
    const published = await api<Published>(c.url, 'GET', `/v1/evidence/${evidence[0].bundleHash}`);
    expect(published.status).toBe(200);
    expect(published.body.access).toBe('redacted');
    const redacted = JSON.parse(published.body.bundle) as EvidenceBundle;
    expect(redacted.disclosed).toBeUndefined();
    expect(evidenceHash(redacted)).toBe(evidence[0].bundleHash);
    expect(published.body.slash?.state).toBe('PROPOSED');
    const whole = await api<Published>(c.url, 'GET', `/v1/evidence/${evidence[0].bundleHash}`, {
      key: c.devKey,
    });
    expect(whole.body.access).toBe('full');
    const full = JSON.parse(whole.body.bundle) as EvidenceBundle;
    expect(full.disclosed?.inputs?.length).toBeGreaterThan(0);
    expect(evidenceHash(full)).toBe(evidence[0].bundleHash);
    const honestEvents = await query<{ kind: string }>(
      c.databaseUrl,
      'SELECT kind FROM "ReputationEvent" WHERE "peerId" = $1',
      [honest.peerId],
    );
    await waitFor('the honest reward', async () =>
      (
        await query<{ kind: string }>(
          c.databaseUrl,
          'SELECT kind FROM "ReputationEvent" WHERE "peerId" = $1',
          [honest.peerId],
        )
      ).some((e) => e.kind === 'won_tiebreak')
        ? true
        : undefined,
    );
    expect(honestEvents.every((e) => e.kind !== 'lost_tiebreak')).toBe(true);
    // The offers carried no policy: a redundant job looks like a plain one on the wire.
    expect(honest.offeredSpecs.length).toBeGreaterThan(0);
    expect(honest.offeredSpecs.every((s) => s.redundancy === 1 && !('verification' in s))).toBe(true);
  });

  it('sets an account default policy and prices what verification adds, in the job and the dry run', async () => {
    const bad = await api(c.url, 'PUT', '/v1/account/verification', {
      key: c.devKey,
      body: { mode: 'redundant', k: 9 },
    });
    expect(bad.status).toBe(400);
    const put = await api<{ effective: { mode: string; k: number; canaryRate: number } }>(
      c.url,
      'PUT',
      '/v1/account/verification',
      { key: c.devKey, body: { mode: 'redundant', k: 3, canaryRate: 0.1 } },
    );
    expect(put.status).toBe(200);
    expect(put.body.effective).toEqual({ mode: 'redundant', k: 3, canaryRate: 0.1 });
    const dry = await api<{
      cost: string;
      costBreakdown: { work: string; redundancy: string; canary: string };
    }>(c.url, 'POST', '/v1/jobs/dry-run', { key: c.devKey, body: matmulSpec(2, 2, 2, '100') });
    expect(dry.status).toBe(200);
    const work = BigInt(dry.body.costBreakdown.work);
    expect(BigInt(dry.body.costBreakdown.redundancy)).toBe(2n * work);
    expect(BigInt(dry.body.costBreakdown.canary)).toBe((3n * work + 9n) / 10n);
    expect(BigInt(dry.body.cost)).toBe(3n * work); // canaries are funded from the platform fee
    const conflicting = await api(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: { ...matmulSpec(2, 2, 2, '5'), redundancy: 2, verification: { mode: 'none' } },
    });
    expect(conflicting.status).toBe(400);
    const cleared = await api<{ account: unknown }>(c.url, 'PUT', '/v1/account/verification', {
      key: c.devKey,
      body: null,
    });
    expect(cleared.body.account).toBeNull();
  });
});

describe('API and worker as separate processes of one codebase', () => {
  it('a job submitted to an api-only coordinator runs through a worker-only one', async () => {
    const apiOnly = await startTestCoordinator({ ROLE: 'api' });
    const worker = await startCoordinator(
      { ...apiOnly.config, ROLE: 'worker', DEV_BOOTSTRAP: false, PORT: 0 },
      createLogger('silent'),
    );
    const agent = await startFakeAgent(apiOnly.url);
    try {
      await waitForProviders(apiOnly, 1);
      const job = await api<JobBody>(apiOnly.url, 'POST', '/v1/jobs', {
        key: apiOnly.devKey,
        body: matmulSpec(2, 2, 2, '1'),
      });
      await waitForState(apiOnly, job.body.id, ['COMPLETED']);
      expect((await fetch(`${worker.url}/v1/jobs`)).status).toBe(404); // the worker serves no API routes
    } finally {
      await agent.stop();
      await worker.close();
      await apiOnly.close();
    }
  });
});
