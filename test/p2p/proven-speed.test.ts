// Proven speed from real work against a real coordinator: a capacity probe is capped, so on a fast
// GPU it mostly times the network; a verified job (here: held on probation and checked against the
// coordinator's reference) shows the real speed on the coordinator's clock. An honest provider whose
// verified jobs prove more than the probation figure is credited above it and then takes a job whose
// deadline needs that speed; a liar answering fast but wrong gets no credit at all.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRequest } from '@gpumesh/scheduler';
import { ProviderViewService } from '../../apps/coordinator/src/p2p/provider-view.service.js';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { matmulSpec } from '../helpers/specs.js';
import { pollUntil } from '../helpers/poll.js';
import { isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';

/** Credited until measured: 1 MFLOP/s, far below what the fake agent's plain-JS matmul does. */
const PROBATION_GFLOPS = 0.001;
/** Both advertise this (a claim: the scheduler credits at most what was proven). */
const ADVERTISED_GFLOPS = 10;
/** A 200 × 800 × 200 matmul: 64 MFLOP (64 work units), tens of ms in plain JS. */
const SIDE = 200;
const WORK_UNITS = 2 * SIDE * 4 * SIDE * SIDE * 1e-6;
/** The tight job's deadline: it needs WORK_UNITS / 5 s = 0.0128 GFLOP/s, 12.8 × the probation figure. */
const TIGHT_DEADLINE_SECONDS = 5;

interface ProviderRow {
  measuredGflops: number | null;
}

function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  return pollUntil(what, probe, timeoutMs);
}

describe('proven speed from verified jobs', () => {
  let c: TestCoordinator;
  let db: pg.Client;
  const agents: FakeAgent[] = [];

  const submit = async (deadlineSeconds: number): Promise<string> => {
    const res = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: { ...matmulSpec(SIDE, 4 * SIDE, SIDE, '1'), deadlineSeconds },
    });
    expect(res.status).toBe(201);
    return res.body.id;
  };
  const finished = (id: string): Promise<{ state: string; provider: string | null }> =>
    waitFor(
      `job ${id} finished`,
      async () => {
        const res = await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${id}`, { key: c.devKey });
        if (!isTerminal(res.body.state)) return undefined;
        const ran = await db.query<{ providerId: string }>(
          `SELECT "providerId" FROM "JobAttempt" WHERE "jobId" = $1 AND state = 'SUCCEEDED'`,
          [id],
        );
        return { state: res.body.state, provider: ran.rows[0]?.providerId ?? null };
      },
      120_000,
    );
  const measured = async (peerId: string): Promise<number | null> => {
    const rows = await db.query<ProviderRow>(`SELECT "measuredGflops" FROM "Provider" WHERE "peerId" = $1`, [
      peerId,
    ]);
    return rows.rows[0]?.measuredGflops ?? null;
  };
  const request = (deadlineSeconds: number): JobRequest => ({
    jobId: `probe-${deadlineSeconds}`,
    accountId: 'x',
    priority: 'normal',
    workUnits: BigInt(Math.ceil(WORK_UNITS)),
    requirements: {},
    maxPricePerUnit: 1n,
    redundancy: 1,
    deadlineAt: Date.now() + deadlineSeconds * 1000,
  });

  beforeAll(async () => {
    c = await startTestCoordinator({
      // Only real jobs measure here: no probes, no canaries.
      CAPACITY_PROBES: 'false',
      PROBATION_CANARY_RATE: '0',
      CAPACITY_PROBATION_GFLOPS: String(PROBATION_GFLOPS),
      CAPACITY_CREDIT_OVERHEAD_MS: '5',
      CAPACITY_CREDIT_MIN_COMPUTE_MS: '5',
      DISPATCH_BACKOFF_MS: '50',
      CAPACITY_WAIT_MS: '300',
    });
    db = new pg.Client({ connectionString: c.databaseUrl });
    await db.connect();
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await db?.end();
    await c?.close();
  });

  it('credits an honest provider with what its verified jobs proved, and a liar with nothing', async () => {
    const view = c.running.app.get(ProviderViewService);
    // The liar first, alone: it answers at once, but wrongly; the reference check catches it.
    const liar = await startFakeAgent(c.url, {
      gflops: ADVERTISED_GFLOPS,
      pricePerUnit: '1',
      behaviour: 'wrong',
    });
    agents.push(liar);
    await waitFor('the liar listed', async () => (view.provider(liar.peerId) ? true : undefined));
    const first = await submit(120);
    await waitFor(
      "the liar's wrong answer refused",
      async () => {
        const rows = await db.query(
          `SELECT 1 FROM "JobAttempt" WHERE "jobId" = $1 AND "providerId" = $2 AND state IN ('FAILED', 'SUCCEEDED')`,
          [first, liar.peerId],
        );
        return rows.rowCount ? true : undefined;
      },
      120_000,
    );

    const honest = await startFakeAgent(c.url, { gflops: ADVERTISED_GFLOPS, pricePerUnit: '1' });
    agents.push(honest);
    // The fake agent computes on this process's event loop, which the coordinator shares: its ~45 ms
    // matmul would hold back the coordinator's handling of the acceptance until the result is there,
    // and the timing would show only the network. 60 ms of work off the loop first (a timer) makes
    // the acceptance land when it is sent, as with a real agent process.
    honest.setRunDelay(60);
    await waitFor('the honest provider listed', async () =>
      view.provider(honest.peerId) ? true : undefined,
    );
    // Unmeasured, it is credited the probation figure: a job needing 12.8 × that cannot go to it.
    expect(await measured(honest.peerId)).toBeNull();
    const before = view.scheduler.select(request(TIGHT_DEADLINE_SECONDS), Date.now(), { explore: false });
    expect(before.placements.map((p) => p.peerId)).not.toContain(honest.peerId);

    // Jobs with a loose deadline it can take; on probation, each result is checked before delivery.
    expect((await finished(first)).state).toBe('COMPLETED');
    for (let i = 0; i < 2; i++) {
      const done = await finished(await submit(120));
      expect(done).toEqual({ state: 'COMPLETED', provider: honest.peerId });
    }
    const credited = await waitFor('the honest provider credited', async () => {
      const g = await measured(honest.peerId);
      return g !== null ? g : undefined;
    });
    const liarFigure = await measured(liar.peerId);
    console.info(
      JSON.stringify({
        probationGflops: PROBATION_GFLOPS,
        workUnits: WORK_UNITS,
        honestCreditedGflops: credited,
        liarCreditedGflops: liarFigure,
        tightJobNeedsGflops: WORK_UNITS / (TIGHT_DEADLINE_SECONDS * 1000),
      }),
    );
    expect(credited).toBeGreaterThan(WORK_UNITS / (TIGHT_DEADLINE_SECONDS * 1000));
    expect(liarFigure).toBeNull(); // fast but wrong proves nothing

    // Now the tight job fits the honest provider: placed on it, and done within its deadline.
    const after = view.scheduler.select(request(TIGHT_DEADLINE_SECONDS), Date.now(), { explore: false });
    expect(after.placements.map((p) => p.peerId)).toContain(honest.peerId);
    const tight = await finished(await submit(TIGHT_DEADLINE_SECONDS));
    expect(tight).toEqual({ state: 'COMPLETED', provider: honest.peerId });
    expect(await measured(liar.peerId)).toBeNull();
  }, 300_000);
});
