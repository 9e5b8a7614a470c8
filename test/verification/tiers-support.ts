// Helpers of the trust-tier integration tests (tiers-*.test.ts): one real coordinator per test
// (PostgreSQL, Redis, libp2p) and fake agents. One file per coordinator that computes references:
// a second coordinator computing references in the same vitest fork made the fork exit.
import type { Server } from 'node:http';
import pg from 'pg';
import { afterEach, expect } from 'vitest';
import { parseJobSpec, type TensorWire } from '@gpumesh/protocol';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import {
  referenceMatmul,
  startFakeAgent,
  type FakeAgent,
  type FakeBehaviour,
} from '../helpers/fake-agent.js';
import { compareResults } from '../../apps/coordinator/src/verification/compare.js';
import { PROBATION_VERIFIED_RESULTS } from '../../apps/coordinator/src/verification/tiers.js';
import { VerifierService } from '../../apps/coordinator/src/verification/verifier.service.js';
import { isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';

/** The platform defaults of a production coordinator (test coordinators turn canaries off). */
const DEFAULTS = { CANARY_RATE: '0.05', PROBATION_CANARY_RATE: '0.25', DISPATCH_BACKOFF_MS: '50' };

export interface Ctx {
  c: TestCoordinator;
  db: pg.Client;
  agents: FakeAgent[];
  servers: Server[];
}
let ctx: Ctx | null = null;

export async function setup(env: Record<string, string> = {}): Promise<Ctx> {
  const c = await startTestCoordinator({ ...DEFAULTS, ...env });
  const db = new pg.Client({ connectionString: c.databaseUrl });
  await db.connect();
  ctx = { c, db, agents: [], servers: [] };
  return ctx;
}

export function stopAfterEach(): void {
  afterEach(async () => {
    if (!ctx) return;
    const { c, db, agents, servers } = ctx;
    ctx = null;
    for (const a of agents) await a.stop().catch(() => undefined);
    for (const s of servers) await new Promise((r) => s.close(r));
    await c.running.app.get(VerifierService).settled();
    await db.end().catch(() => undefined);
    await c.close();
  });
}

export async function rows<T extends pg.QueryResultRow>(
  t: Ctx,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  return (await t.db.query<T>(text, params)).rows;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function agent(
  t: Ctx,
  behaviour: FakeBehaviour,
  operatorId: string,
  pricePerUnit = '1',
): Promise<FakeAgent> {
  const a = await startFakeAgent(t.c.url, {
    behaviour,
    operatorId,
    pricePerUnit,
    slots: 4,
    advertEveryMs: 1_000,
  });
  t.agents.push(a);
  await waitFor(`provider ${a.peerId} online`, async () => {
    const list = await api<{ peerId: string; status: string }[]>(t.c.url, 'GET', '/v1/providers');
    return list.body.some((p) => p.peerId === a.peerId && p.status === 'ONLINE') ? true : undefined;
  });
  return a;
}

/** Records checked results for a provider, as if it had passed PROBATION_VERIFIED_RESULTS checks. */
export async function makeTrusted(t: Ctx, peerId: string): Promise<void> {
  await t.db.query(
    `INSERT INTO "ReputationEvent" ("peerId", kind, delta, score, "createdAt")
     SELECT $1, 'verified_pass', 0.02, 0.6, now() - interval '1 day' FROM generate_series(1, $2::int)`,
    [peerId, PROBATION_VERIFIED_RESULTS],
  );
}

export async function submit(t: Ctx, spec: Record<string, unknown>): Promise<string> {
  const res = await api<{ id: string }>(t.c.url, 'POST', '/v1/jobs', { key: t.c.devKey, body: spec });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

export interface JobView {
  state: string;
  cost: string;
  verification: {
    method: string | null;
    verified: boolean;
    corrected: boolean;
    required: boolean;
    cost: { work: string; check: string };
  };
}

export async function job(t: Ctx, id: string): Promise<JobView> {
  return (await api<JobView>(t.c.url, 'GET', `/v1/jobs/${id}`, { key: t.c.devKey })).body;
}

export async function finished(t: Ctx, id: string, timeoutMs = 30_000): Promise<JobView> {
  return waitFor(
    `job ${id} to finish`,
    async () => {
      const j = await job(t, id);
      return isTerminal(j.state) ? j : undefined;
    },
    timeoutMs,
  );
}

export async function resultOf(t: Ctx, id: string): Promise<TensorWire[]> {
  const res = await api<{ result: { outputs: TensorWire[] } }>(t.c.url, 'GET', `/v1/jobs/${id}/result`, {
    key: t.c.devKey,
  });
  expect(res.status).toBe(200);
  return res.body.result.outputs;
}

export function isRight(spec: Record<string, unknown>, outputs: TensorWire[]): boolean {
  const parsed = parseJobSpec(spec);
  return compareResults(outputs, referenceMatmul(parsed), { spec: parsed }).agree;
}

export async function eventTypes(t: Ctx, id: string): Promise<string[]> {
  const events = await rows<{ type: string }>(
    t,
    'SELECT type FROM "JobEvent" WHERE "jobId" = $1 ORDER BY id',
    [id],
  );
  return events.map((e) => e.type);
}
