// A canary mirroring a redundant job is placed on the providers that agreed on that job: two
// colluders that returned one shared wrong output for a real job meet its known-answer copy
// together, even when ordinary placement would send the copy to a cheaper honest pair, and are
// caught: both banned, the real job's held credits reversed once (not once per colluder) and its
// result corrected once.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTensor, hashSpec } from '@gpumesh/protocol';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { CollusionRing, startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { ProviderViewService, toJobRequest } from '../../apps/coordinator/src/p2p/provider-view.service.js';
import { CanaryService } from '../../apps/coordinator/src/verification/canary.service.js';
import { VerificationRepository } from '../../apps/coordinator/src/verification/verification.repository.js';
import { VerifierService } from '../../apps/coordinator/src/verification/verifier.service.js';
import { isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';

let c: TestCoordinator;
let db: pg.Client;
const agents: FakeAgent[] = [];

async function rows<T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
  return (await db.query<T>(text, params)).rows;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function finalState(jobId: string): Promise<string> {
  return waitFor(`job ${jobId} to finish`, async () => {
    const [row] = await rows<{ state: string }>('SELECT state::text FROM "Job" WHERE id = $1', [jobId]);
    return row && isTerminal(row.state) ? row.state : undefined;
  });
}

async function providersOnline(peers: string[]): Promise<void> {
  await waitFor(`providers ${peers.join(', ')} online`, async () => {
    const list = await api<{ peerId: string; status: string }[]>(c.url, 'GET', '/v1/providers');
    const online = new Set(list.body.filter((p) => p.status === 'ONLINE').map((p) => p.peerId));
    return peers.every((p) => online.has(p)) ? true : undefined;
  });
}

/** Peers whose attempt at the job succeeded (were paid, or held a credit, for it). */
async function succeededOn(jobId: string): Promise<string[]> {
  const attempts = await rows<{ providerId: string }>(
    `SELECT "providerId" FROM "JobAttempt" WHERE "jobId" = $1 AND state = 'SUCCEEDED'`,
    [jobId],
  );
  return attempts.map((a) => a.providerId).sort();
}

/** A provider's net credit (held and earned) for one job. */
async function creditFor(peerId: string, jobId: string): Promise<bigint> {
  const [row] = await rows<{ net: string | null }>(
    `SELECT SUM(amount)::text AS net FROM "LedgerEntry" WHERE account = ANY($1::text[]) AND "jobId" = $2`,
    [[`provider:${peerId}:held`, `provider:${peerId}:earned`], jobId],
  );
  return BigInt(row?.net ?? '0');
}

beforeAll(async () => {
  c = await startTestCoordinator({
    VERIFICATION_HOLD_SECONDS: '3600',
    REFERENCE_WORK_BUDGET: '5000',
    DISPATCH_BACKOFF_MS: '50',
  });
  db = new pg.Client({ connectionString: c.databaseUrl });
  await db.connect();
  // Redundant(2) with no random canaries: the test makes the one canary itself.
  const policy = await api(c.url, 'PUT', '/v1/account/verification', {
    key: c.devKey,
    body: { mode: 'redundant', k: 2, canaryRate: 0 },
  });
  expect(policy.status).toBe(200);
}, 60_000);

afterAll(async () => {
  for (const agent of agents) await agent.stop().catch(() => undefined);
  await db?.end().catch(() => undefined);
  await c?.close();
});

describe('a canary mirroring a redundant job', () => {
  it('is placed on the pair that ran the real job, so a colluding pair that agreed on a wrong result is caught', async () => {
    // Only the colluders are online for the real job: it is placed on both, and they agree on one
    // shared wrong output, which redundancy alone cannot tell from a right one.
    const ring = new CollusionRing();
    const colluders = await Promise.all(
      ['ring-a', 'ring-b'].map((operatorId) =>
        startFakeAgent(c.url, {
          operatorId,
          behaviour: 'copy',
          ring,
          pricePerUnit: '3',
          advertEveryMs: 1_000,
        }),
      ),
    );
    agents.push(...colluders);
    const ringPeers = colluders.map((a) => a.peerId).sort();
    await providersOnline(ringPeers);
    const a = Float32Array.from({ length: 64 }, (_, i) => ((i * 7) % 13) / 13 - 0.5);
    const b = Float32Array.from({ length: 64 }, (_, i) => ((i * 5) % 11) / 11 - 0.5);
    const submitted = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: {
        version: 1,
        kind: 'matmul',
        inputs: [encodeTensor('a', 'float32', [8, 8], a), encodeTensor('b', 'float32', [8, 8], b)],
        requirements: {},
        maxPricePerUnit: '5',
        deadlineSeconds: 120,
      },
    });
    expect(submitted.status).toBe(201);
    const jobId = submitted.body.id;
    expect(await finalState(jobId)).toBe('COMPLETED');
    expect(await succeededOn(jobId)).toEqual(ringPeers);
    const job = await c.running.app.get(VerificationRepository).findJob(jobId);
    if (!job) throw new Error('the real job is gone');
    expect(ring.cheatedJobs.has(job.specHash)).toBe(true);
    for (const peer of ringPeers) expect(await creditFor(peer, jobId)).toBeGreaterThan(0n);

    // A cheaper honest pair comes online: ordinary placement would now send a copy of the job there.
    const honest = await Promise.all(
      ['honest-a', 'honest-b'].map((operatorId) =>
        startFakeAgent(c.url, { operatorId, pricePerUnit: '1', advertEveryMs: 1_000 }),
      ),
    );
    agents.push(...honest);
    const honestPeers = honest.map((h) => h.peerId).sort();
    await providersOnline(honestPeers);
    const view = c.running.app.get(ProviderViewService);
    const ordinary = view.scheduler.select(toJobRequest(job, []), Date.now(), { explore: false });
    expect(ordinary.placements.map((p) => p.peerId).sort()).toEqual(honestPeers);

    // What dispatch asks for when it follows the real job with a canary (maybeFollowWithCanary
    // passes the peers it placed the job on); the job is over, so their agreement is known at once.
    const canary = await c.running.app.get(CanaryService).mirror(job, job.redundancy, ringPeers);
    if (!canary) throw new Error('no canary was made');
    // Same shapes, fresh values: to the colluders an ordinary job they happen to be paired on.
    expect(canary.specHash).not.toBe(job.specHash);
    expect(await finalState(canary.id)).toBe('FAILED');
    const canaryAttempts = await rows<{ providerId: string }>(
      'SELECT "providerId" FROM "JobAttempt" WHERE "jobId" = $1',
      [canary.id],
    );
    expect(canaryAttempts.map((r) => r.providerId).sort()).toEqual(ringPeers);
    expect(ring.cheatedJobs.has(canary.specHash)).toBe(true);
    for (const agent of colluders)
      expect(agent.offeredSpecs.some((offered) => hashSpec(offered) === canary.specHash)).toBe(true);
    for (const h of honest) expect(h.offers).toBe(0);

    // Both convicted by the known answer; the real job's credits are reversed and its result fixed.
    await waitFor('both colluders banned', async () => {
      const banned = await rows<{ peerId: string }>(
        `SELECT "peerId" FROM "Provider" WHERE status = 'BANNED' AND "peerId" = ANY($1::text[])`,
        [ringPeers],
      );
      return banned.length === 2 ? true : undefined;
    });
    await waitFor('the real job credits reversed', async () => {
      const credits = await Promise.all(ringPeers.map((peer) => creditFor(peer, jobId)));
      return credits.every((credit) => credit === 0n) ? true : undefined;
    });
    await c.running.app.get(VerifierService).settled();
    const corrected = await rows<{ n: string }>(
      `SELECT COUNT(*)::text AS n FROM "JobEvent" WHERE "jobId" = $1 AND type = 'job.corrected'`,
      [jobId],
    );
    expect(corrected[0].n).toBe('1');

    // A reversal run again (a retried re-verification, a restart half-way) refunds nothing twice.
    const balance = async (): Promise<string> => {
      const [row] = await rows<{ total: string }>(
        `SELECT COALESCE(SUM(amount), 0)::text AS total FROM "LedgerEntry" WHERE "jobId" = $1 AND account LIKE 'acct:%:available'`,
        [jobId],
      );
      return row.total;
    };
    const before = await balance();
    const repo = c.running.app.get(VerificationRepository);
    for (const peer of ringPeers) {
      expect(await repo.reverse({ peerId: peer, jobId, amount: 0n }, job)).toBe(0n);
      // Nor does a vesting sweep that picked the credit up before the ban pay it out.
      expect(await repo.vest({ peerId: peer, jobId, amount: 0n })).toBe(false);
      expect(await creditFor(peer, jobId)).toBe(0n);
    }
    expect(await balance()).toBe(before);
  }, 90_000);
});
