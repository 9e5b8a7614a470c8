// A provider that says a job's input cannot run (an input fault) on a job another provider then
// completes with a verified result made a claim the result disproved: it is recorded once, told on
// the job, counted in the admin view and /metrics, and costs the provider reputation (more for each
// claim in a row) and puts it on probation. A claim a second operator confirms (the job FAILED
// INPUT_REJECTED) costs nothing. Real PostgreSQL, Redis and libp2p; the agents are fake only in how
// they compute.
import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { fundedDeveloper, type TestDeveloper } from '../helpers/accounts.js';
import { matmulSpec } from '../helpers/specs.js';
import { pollUntil, query } from '../helpers/poll.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { DispatchService } from '../../apps/coordinator/src/dispatch/dispatch.service.js';
import {
  DisprovedClaims,
  UNCHARGED_CLAIM_GRACE_MS,
} from '../../apps/coordinator/src/dispatch/disproved-claims.service.js';
import { TrustTierService } from '../../apps/coordinator/src/verification/tiers.service.js';
import { MaintenanceProcessor } from '../../apps/coordinator/src/workers/maintenance.processor.js';
import {
  MAINTENANCE_EVERY_MS,
  QueueJobName,
  QueueName,
} from '../../apps/coordinator/src/queue/queue.constants.js';
import { NEUTRAL_REPUTATION } from '../../apps/coordinator/src/reputation/reputation.js';

interface JobBody {
  id: string;
  state: string;
  error: { code: string; message: string } | null;
}

interface ClaimRow {
  attemptId: string;
  jobId: string;
  peerId: string;
  claim: string;
  delta: number;
}

interface PenaltyRow {
  jobId: string;
  delta: number;
  score: number;
  detail: { attempt: number; claim: string };
}

interface AdminProviderBody {
  reputation: number;
  disprovedInputFaults: number;
  reputationHistory: { kind: string; delta: number; jobId: string | null }[];
}

const CREDITS = 50_000_000n;
/**
 * The liar is far cheaper than the honest provider, so placement offers it each job first whatever
 * their scores' drift (a full provider is not excluded from a job, so the cheaper one must win).
 */
const LIAR_PRICE = '1';
const HONEST_PRICE = '60';
const MAX_PRICE = '100';

describe('disproved input-fault claims', () => {
  let c: TestCoordinator;
  let dev: TestDeveloper;
  const agents: FakeAgent[] = [];

  beforeAll(async () => {
    c = await startTestCoordinator({
      DISPATCH_BACKOFF_MS: '50',
      CAPACITY_WAIT_MS: '200',
      OFFER_ACCEPT_TIMEOUT_MS: '3000',
    });
    dev = await fundedDeveloper(c, CREDITS);
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const a of agents.splice(0)) await a.stop();
  });
  afterAll(async () => {
    await c?.close();
  });

  const startAgent = async (options: Parameters<typeof startFakeAgent>[1]): Promise<FakeAgent> => {
    const agent = await startFakeAgent(c.url, options);
    agents.push(agent);
    await pollUntil(
      `${agents.length} providers`,
      async () =>
        (await api<unknown[]>(c.url, 'GET', '/v1/providers')).body.length >= agents.length ? true : undefined,
      10_000,
    );
    return agent;
  };

  const submit = async (): Promise<JobBody> => {
    const res = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: dev.key,
      body: matmulSpec(2, 2, 2, MAX_PRICE),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };

  const finished = (id: string): Promise<JobBody> =>
    pollUntil(
      `job ${id} to finish`,
      async () => {
        const res = await api<JobBody>(c.url, 'GET', `/v1/jobs/${id}`, { key: dev.key });
        return ['COMPLETED', 'FAILED', 'EXPIRED', 'CANCELLED'].includes(res.body.state)
          ? res.body
          : undefined;
      },
      20_000,
    );

  /**
   * A job the liar is offered first (the honest provider is full until then) and says is BAD_INPUT,
   * then the honest provider of another operator completes.
   */
  const refusedThenCompleted = async (liar: FakeAgent, honest: FakeAgent): Promise<JobBody> => {
    honest.setBehaviour('full');
    const offered = liar.offers;
    const job = await submit();
    await pollUntil(
      'the liar to be offered the job',
      async () => (liar.offers > offered ? true : undefined),
      10_000,
    );
    honest.setBehaviour('honest');
    const done = await finished(job.id);
    expect(done.state, JSON.stringify(done.error)).toBe('COMPLETED');
    return done;
  };

  const claimsOf = (peerId: string): Promise<ClaimRow[]> =>
    query<ClaimRow>(
      c.databaseUrl,
      `SELECT "attemptId"::text AS "attemptId", "jobId"::text AS "jobId", "peerId", claim, delta
         FROM "DisprovedClaim" WHERE "peerId" = $1 ORDER BY "createdAt"`,
      [peerId],
    );

  /** The provider's claims once `n` are recorded (charged after the completion's commit). */
  const charged = (peerId: string, n: number): Promise<ClaimRow[]> =>
    pollUntil(
      `${n} disproved claims of ${peerId}`,
      async () => {
        const rows = await claimsOf(peerId);
        return rows.length >= n ? rows : undefined;
      },
      10_000,
    );

  const penaltiesOf = (peerId: string): Promise<PenaltyRow[]> =>
    query<PenaltyRow>(
      c.databaseUrl,
      `SELECT "jobId"::text AS "jobId", delta, score, detail FROM "ReputationEvent"
        WHERE "peerId" = $1 AND kind = 'disproved_input_fault' ORDER BY id`,
      [peerId],
    );

  /** The types of the job's events, in order, as the developer's event stream replays them. */
  const eventTypes = async (jobId: string): Promise<{ type: string; data: Record<string, unknown> }[]> => {
    const res = await fetch(`${c.url}/v1/jobs/${jobId}/events`, {
      headers: { authorization: `Bearer ${dev.key}`, accept: 'text/event-stream' },
    });
    return (await res.text())
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice(6)) as { type: string; data: Record<string, unknown> });
  };

  const disprovedMetric = async (): Promise<number> => {
    const text = await (await fetch(`${c.url}/metrics`)).text();
    const line = text
      .split('\n')
      .find((l) => l.startsWith('gpumesh_input_fault_claims_disproved_total{code="BAD_INPUT"}'));
    return line ? Number(line.split(' ').pop()) : 0;
  };

  const adminProvider = async (peerId: string): Promise<AdminProviderBody> =>
    (await api<AdminProviderBody>(c.url, 'GET', `/v1/admin/providers/${peerId}`, { key: c.adminKey })).body;

  /**
   * `refusedThenCompleted` with the worker stopping between the completion's commit and the charge:
   * the claim's event is on the job, its charge nowhere.
   */
  const completedWithChargeStopped = async (liar: FakeAgent, honest: FakeAgent): Promise<JobBody> => {
    const claimsService = c.running.app.get(DisprovedClaims);
    vi.spyOn(claimsService, 'charge').mockResolvedValueOnce(0);
    const job = await refusedThenCompleted(liar, honest);
    await pollUntil(
      'the stopped charge',
      async () => (vi.mocked(claimsService.charge).mock.calls.length > 0 ? true : undefined),
      10_000,
    );
    vi.mocked(claimsService.charge).mockRestore();
    expect(await claimsOf(liar.peerId)).toEqual([]);
    expect((await eventTypes(job.id)).filter((e) => e.type === 'attempt.claim_disproved')).toHaveLength(1);
    return job;
  };

  it('records a claim a verified result disproved once, tells the job, and lowers the liar more each time', async () => {
    const liar = await startAgent({ behaviour: 'bad-input', pricePerUnit: LIAR_PRICE });
    const honest = await startAgent({ behaviour: 'full', pricePerUnit: HONEST_PRICE });
    const metricBefore = await disprovedMetric();

    const first = await refusedThenCompleted(liar, honest);
    const [result] = await query<{ verified: boolean }>(
      c.databaseUrl,
      `SELECT (result->'verification'->>'verified')::bool AS verified FROM "Job" WHERE id = $1`,
      [first.id],
    );
    expect(result.verified).toBe(true); // the honest provider is on probation: its result was checked

    // The claim: recorded once, with the penalty it cost.
    const claims = await charged(liar.peerId, 1);
    expect(claims).toHaveLength(1);
    expect(claims[0]).toMatchObject({ jobId: first.id, peerId: liar.peerId });
    expect(claims[0].claim).toMatch(/^BAD_INPUT: /);
    const penalties = await penaltiesOf(liar.peerId);
    expect(penalties).toHaveLength(1);
    expect(penalties[0].delta).toBeLessThan(0);
    expect(penalties[0].detail.claim).toBe(claims[0].claim);
    expect(claims[0].delta).toBeCloseTo(penalties[0].delta, 10);
    expect(await claimsOf(honest.peerId)).toEqual([]);

    // The developer sees it on the job, before the completion.
    const events = await eventTypes(first.id);
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === 'attempt.claim_disproved')).toHaveLength(1);
    expect(types.indexOf('attempt.claim_disproved')).toBeLessThan(types.indexOf('job.completed'));
    expect(events.find((e) => e.type === 'attempt.claim_disproved')?.data).toMatchObject({
      provider: liar.peerId,
      ranBy: [honest.peerId],
    });

    // Admins see the count and the lowered score; placement's live score and the tier follow.
    const admin = await adminProvider(liar.peerId);
    expect(admin.disprovedInputFaults).toBe(1);
    expect(admin.reputation).toBeLessThan(NEUTRAL_REPUTATION);
    expect(admin.reputationHistory.map((e) => e.kind)).toContain('disproved_input_fault');
    expect((await adminProvider(honest.peerId)).disprovedInputFaults).toBe(0);
    expect((await c.running.app.get(TrustTierService).tier(liar.peerId)).reason).toMatch(/^penalised at/);
    expect(await disprovedMetric()).toBe(metricBefore + 1);

    // Verified again, or its dispatch re-delivered: the claim is not counted twice.
    const claimsService = c.running.app.get(DisprovedClaims);
    expect(await claimsService.charge(first.id, await claimsService.disprovedBy(first.id, true))).toBe(0);
    expect(await c.running.app.get(DispatchService).dispatch(first.id)).toBe('skipped');
    expect(await claimsOf(liar.peerId)).toHaveLength(1);
    expect(await penaltiesOf(liar.peerId)).toHaveLength(1);
    expect(await disprovedMetric()).toBe(metricBefore + 1);

    // A second claim in a row costs more than the first.
    const second = await refusedThenCompleted(liar, honest);
    await charged(liar.peerId, 2);
    const both = await penaltiesOf(liar.peerId);
    expect(both.map((p) => p.jobId)).toEqual([first.id, second.id]);
    expect(both[1].delta).toBeLessThan(both[0].delta);
    expect(both[1].score).toBeLessThan(both[0].score);
    expect((await adminProvider(liar.peerId)).disprovedInputFaults).toBe(2);
    expect(await disprovedMetric()).toBe(metricBefore + 2);
  });

  it('charges a claim once when the worker stopped before charging it and the dispatch is re-delivered, twice at once', async () => {
    const liar = await startAgent({ behaviour: 'bad-input', pricePerUnit: LIAR_PRICE });
    const honest = await startAgent({ behaviour: 'full', pricePerUnit: HONEST_PRICE });
    // The worker stops between the completion's commit and the charge: nothing is charged.
    const job = await completedWithChargeStopped(liar, honest);

    // BullMQ re-delivers the stalled dispatch, here twice at once.
    const dispatch = c.running.app.get(DispatchService);
    expect(await Promise.all([dispatch.dispatch(job.id), dispatch.dispatch(job.id)])).toEqual([
      'skipped',
      'skipped',
    ]);
    expect(await claimsOf(liar.peerId)).toHaveLength(1);
    expect(await penaltiesOf(liar.peerId)).toHaveLength(1);
    expect((await eventTypes(job.id)).filter((e) => e.type === 'attempt.claim_disproved')).toHaveLength(1);
  });

  it('charges a claim the worker stopped before charging, with no re-delivery, once from the maintenance sweep', async () => {
    const liar = await startAgent({ behaviour: 'bad-input', pricePerUnit: LIAR_PRICE });
    const honest = await startAgent({ behaviour: 'full', pricePerUnit: HONEST_PRICE });
    const maintenance = c.running.app.get(MaintenanceProcessor);
    const metricBefore = await disprovedMetric();
    // The worker schedules the sweep (and ran it once at its start).
    const schedulers = await c.running.app
      .get<Queue>(getQueueToken(QueueName.Maintenance))
      .getJobSchedulers();
    expect(schedulers.find((s) => s.key === QueueJobName.ChargeDisprovedClaims)?.every).toBe(
      MAINTENANCE_EVERY_MS[QueueJobName.ChargeDisprovedClaims],
    );
    // The worker stops between the completion's commit and the charge, and its dispatch is not
    // re-delivered (it completed): the claim's event is on the job, its charge nowhere.
    const job = await completedWithChargeStopped(liar, honest);

    // Within the grace the sweep leaves the claim to the completion that is (maybe) still charging it.
    expect(await maintenance.chargeDisprovedClaims(new Date())).toBe(0);
    expect(await claimsOf(liar.peerId)).toEqual([]);

    // Past the grace: charged once, however many sweeps run (two workers at once, then another), and
    // the claims the earlier tests charged are not charged again.
    const later = new Date(Date.now() + UNCHARGED_CLAIM_GRACE_MS + 1_000);
    const [a, b] = await Promise.all([
      maintenance.chargeDisprovedClaims(later),
      maintenance.chargeDisprovedClaims(later),
    ]);
    expect(a + b).toBe(1);
    expect(await maintenance.chargeDisprovedClaims(later)).toBe(0);
    const claims = await claimsOf(liar.peerId);
    expect(claims).toHaveLength(1);
    expect(claims[0]).toMatchObject({ jobId: job.id, peerId: liar.peerId });
    expect(claims[0].claim).toMatch(/^BAD_INPUT: /);
    const penalties = await penaltiesOf(liar.peerId);
    expect(penalties).toHaveLength(1);
    expect(penalties[0].delta).toBeLessThan(0);
    expect(claims[0].delta).toBeCloseTo(penalties[0].delta, 10);
    expect(await claimsOf(honest.peerId)).toEqual([]);
    expect(await disprovedMetric()).toBe(metricBefore + 1);
    expect((await c.running.app.get(TrustTierService).tier(liar.peerId)).reason).toMatch(/^penalised at/);

    // A dispatch re-delivered after the sweep charges nothing more.
    expect(await c.running.app.get(DispatchService).dispatch(job.id)).toBe('skipped');
    expect(await penaltiesOf(liar.peerId)).toHaveLength(1);
  });

  it('does not charge claims a second operator confirmed (the job FAILED INPUT_REJECTED)', async () => {
    const a = await startAgent({ behaviour: 'bad-input' });
    const b = await startAgent({ behaviour: 'bad-input' });
    const job = await submit();
    const done = await finished(job.id);
    expect(done.state).toBe('FAILED');
    expect(done.error?.code).toBe('INPUT_REJECTED');
    expect(await c.running.app.get(DispatchService).dispatch(job.id)).toBe('skipped');
    for (const agent of [a, b]) {
      expect(await claimsOf(agent.peerId)).toEqual([]);
      expect(await penaltiesOf(agent.peerId)).toEqual([]);
      const admin = await adminProvider(agent.peerId);
      expect(admin.disprovedInputFaults).toBe(0);
      expect(admin.reputation).toBe(NEUTRAL_REPUTATION);
    }
    expect((await eventTypes(job.id)).map((e) => e.type)).not.toContain('attempt.claim_disproved');
  });
});
