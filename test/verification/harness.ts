// Adversarial verification harness: a real coordinator (PostgreSQL, Redis, libp2p) with honest fake
// agents (half accumulate in float32, like a different backend) and cheating ones (wrong values,
// noise, zeros, stale replays, a colluding pair that shares one wrong output whenever both are
// offered the same job and is honest otherwise, at the lowest price so placement pairs them often).
// It submits matmul jobs under redundant(k) + canaries and reports: paid wrong results, jobs until
// each cheater was banned, honest providers penalised, detection rate and verification overhead.
import pg from 'pg';
import { encodeTensor, decodeTensor, parseJobSpec, type TensorWire } from '@gpumesh/protocol';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import {
  CollusionRing,
  referenceMatmul,
  startFakeAgent,
  type FakeAgent,
  type FakeBehaviour,
} from '../helpers/fake-agent.js';
import { VerifierService } from '../../apps/coordinator/src/verification/verifier.service.js';
import { compareResults } from '../../apps/coordinator/src/verification/compare.js';
import { TERMINAL_STATES, isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';

export interface HarnessOptions {
  honest: number;
  /** Cheating behaviours, one agent each; `copy` agents form one collusion ring. */
  adversaries: FakeBehaviour[];
  jobs: number;
  concurrency: number;
  policy: { mode: 'none' | 'redundant'; k?: number; canaryRate: number };
  log?: (line: string) => void;
}

export interface CheaterFigure {
  peerId: string;
  behaviour: FakeBehaviour;
  /** Attempts it was offered in all. */
  attempts: number;
  /** Wrong results it returned. */
  cheats: number;
  banned: boolean;
  /** Attempts offered to it up to its ban (null: never banned). */
  attemptsUntilBan: number | null;
  /** Wrong results it returned up to its ban. */
  cheatsUntilBan: number | null;
}

export interface HarnessReport {
  agents: { honest: number; adversarial: number; adversarialShare: number };
  jobs: { submitted: number; completed: number; failed: number; other: number; canaries: number };
  seconds: number;
  wrongResultsReturned: number;
  /** Wrong results whose provider still holds (or was paid) a credit for them: must be 0. */
  paidWrongResults: number;
  /** Completed developer jobs whose delivered result is wrong at the end: must be 0. */
  wrongResultsDelivered: number;
  correctedResults: number;
  /** Wrong results that earned nothing, over all wrong results. */
  detectionRate: number;
  cheatersBanned: number;
  cheatersWhoCheated: number;
  cheaters: CheaterFigure[];
  /** Honest providers with a verification penalty, a ban or a reversed credit: must be 0. */
  honestPenalised: number;
  /** Operational reputation penalties of honest providers (lost attempts, slow), for information. */
  honestOperationalPenalties: number;
  overhead: {
    /** Provider results computed per completed developer job, minus 1 (the job's own run). */
    extraProviderWorkPerJob: number;
    redundantRunsPerJob: number;
    tieBreaksPerJob: number;
    canaryRunsPerJob: number;
    coordinatorRecomputes: number;
  };
}

const SHAPES: [number, number, number][] = [
  [8, 8, 8],
  [12, 16, 10],
  [4, 32, 6],
  [16, 8, 16],
];

function randomSpec(i: number): Record<string, unknown> {
  const [m, k, n] = SHAPES[i % SHAPES.length];
  const a = Float32Array.from({ length: m * k }, () => Math.random() * 2 - 1);
  const b = Float32Array.from({ length: k * n }, () => Math.random() * 2 - 1);
  return {
    version: 1,
    kind: 'matmul',
    inputs: [encodeTensor('a', 'float32', [m, k], a), encodeTensor('b', 'float32', [k, n], b)],
    requirements: {},
    maxPricePerUnit: '5',
    deadlineSeconds: 120,
  };
}

async function sql<T extends pg.QueryResultRow>(
  client: pg.Client,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  return (await client.query<T>(text, params)).rows;
}

export async function runVerificationHarness(options: HarnessOptions): Promise<HarnessReport> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const c: TestCoordinator = await startTestCoordinator({
    VERIFICATION_HOLD_SECONDS: '3600',
    // The platform's canary defaults (test coordinators turn canaries off unless asked).
    CANARY_RATE: '0.05',
    PROBATION_CANARY_RATE: '0.25',
    DISPATCH_BACKOFF_MS: '50',
    DISPATCH_ATTEMPTS: '20',
    OFFER_ACCEPT_TIMEOUT_MS: '5000',
    WORKER_CONCURRENCY: String(Math.max(16, options.concurrency * 2)),
    REFERENCE_WORK_BUDGET: '5000',
  });
  const db = new pg.Client({ connectionString: c.databaseUrl });
  await db.connect();
  const agents: { agent: FakeAgent; behaviour: FakeBehaviour }[] = [];
  const cheats = new Map<string, Set<string>>(); // peerId → offer ids (attempt wire ids) it cheated on
  const ring = new CollusionRing();
  try {
    const policy = await api(c.url, 'PUT', '/v1/account/verification', {
      key: c.devKey,
      body: options.policy,
    });
    if (policy.status !== 200)
      throw new Error(`PUT /v1/account/verification: ${JSON.stringify(policy.body)}`);
    const behaviours: FakeBehaviour[] = [
      ...Array.from({ length: options.honest }, () => 'honest' as const),
      ...options.adversaries,
    ];
    for (const [i, behaviour] of behaviours.entries()) {
      const id = `op-${i}`;
      const agent = await startFakeAgent(c.url, {
        operatorId: id,
        behaviour,
        // Colluders undercut everyone so placement pairs them as often as it can.
        pricePerUnit: behaviour === 'copy' ? '1' : String(2 + (i % 3)),
        float: behaviour === 'honest' && i % 2 === 1 ? 'f32' : 'f64',
        ring: behaviour === 'copy' ? ring : undefined,
        slots: 4,
        advertEveryMs: 2_000,
        onCheat: (offerId) => {
          const set = cheats.get(agent.peerId) ?? new Set<string>();
          set.add(offerId);
          cheats.set(agent.peerId, set);
        },
      });
      agents.push({ agent, behaviour });
    }
    const until = Date.now() + 30_000;
    for (;;) {
      const res = await api<unknown[]>(c.url, 'GET', '/v1/providers');
      if (res.body.length >= behaviours.length) break;
      if (Date.now() > until)
        throw new Error(`only ${res.body.length} of ${behaviours.length} providers appeared`);
      await new Promise((r) => setTimeout(r, 100));
    }
    log(`harness: ${behaviours.length} agents up; submitting ${options.jobs} jobs`);

    // Submit with bounded concurrency; a job counts as done once it reaches a final state.
    const jobIds: string[] = [];
    const specs = new Map<string, Record<string, unknown>>();
    let next = 0;
    const pending = new Set<string>();
    const finished = new Map<string, string>();
    let lastLog = Date.now();
    while (finished.size < options.jobs) {
      const refill = Math.min(options.jobs - next, options.concurrency - pending.size);
      await Promise.all(
        Array.from({ length: refill }, async () => {
          const spec = randomSpec(next++);
          const res = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', { key: c.devKey, body: spec });
          if (res.status !== 201) throw new Error(`submit: ${res.status} ${JSON.stringify(res.body)}`);
          jobIds.push(res.body.id);
          specs.set(res.body.id, spec);
          pending.add(res.body.id);
        }),
      );
      await new Promise((r) => setTimeout(r, 100));
      const rows = await sql<{ id: string; state: string }>(
        db,
        'SELECT id::text, state::text FROM "Job" WHERE id = ANY($1::uuid[])',
        [[...pending]],
      );
      for (const r of rows) {
        if (isTerminal(r.state)) {
          pending.delete(r.id);
          finished.set(r.id, r.state);
        }
      }
      if (Date.now() - lastLog > 5_000) {
        lastLog = Date.now();
        const states = await sql<{ state: string; canary: boolean; n: string }>(
          db,
          'SELECT state::text AS state, canary, COUNT(*)::text AS n FROM "Job" GROUP BY state, canary',
        );
        log(`harness: ${finished.size}/${options.jobs} done; ${JSON.stringify(states)}`);
      }
    }
    // Canaries still running, and re-verifications after bans, finish before the figures are read.
    const settleUntil = Date.now() + 30_000;
    while (Date.now() < settleUntil) {
      const open = await sql<{ n: string }>(
        db,
        `SELECT COUNT(*)::text AS n FROM "Job" WHERE state::text <> ALL($1::text[])`,
        [TERMINAL_STATES],
      );
      if (open[0].n === '0') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await c.running.app.get(VerifierService).settled();
    await new Promise((r) => setTimeout(r, 300)); // fire-and-forget reputation writes land

    // ---- figures ----
    const providers = await sql<{ peerId: string; status: string; bannedAt: Date | null }>(
      db,
      'SELECT "peerId", status::text AS status, "bannedAt" FROM "Provider"',
    );
    const byPeer = new Map(providers.map((p) => [p.peerId, p]));
    const credits = await sql<{ account: string; jobId: string; net: string }>(
      db,
      `SELECT account, "jobId"::text AS "jobId", SUM(amount)::text AS net FROM "LedgerEntry"
       WHERE (account LIKE 'provider:%:held' OR account LIKE 'provider:%:earned') AND "jobId" IS NOT NULL
       GROUP BY account, "jobId"`,
    );
    const netCredit = new Map<string, bigint>();
    for (const r of credits) {
      const peer = r.account.replace(/^provider:/, '').replace(/:(held|earned)$/, '');
      const key = `${peer}|${r.jobId}`;
      netCredit.set(key, (netCredit.get(key) ?? 0n) + BigInt(r.net));
    }
    // Agents see per-attempt offer ids; the attempt rows map them back to jobs.
    const offerRows = await sql<{ id: string; jobId: string }>(
      db,
      'SELECT id::text, "jobId"::text AS "jobId" FROM "JobAttempt"',
    );
    const jobOfOffer = new Map(offerRows.map((r) => [r.id, r.jobId]));
    let wrongReturned = 0;
    let paidWrong = 0;
    for (const [peer, offers] of cheats) {
      for (const offerId of offers) {
        const jobId = jobOfOffer.get(offerId);
        if (jobId === undefined) throw new Error(`offer ${offerId} matches no attempt row`);
        wrongReturned += 1;
        if ((netCredit.get(`${peer}|${jobId}`) ?? 0n) > 0n) paidWrong += 1;
      }
    }
    const attemptRows = await sql<{
      providerId: string;
      offeredAt: Date;
      state: string;
      canary: boolean;
      error: string | null;
    }>(
      db,
      `SELECT a."providerId", a."offeredAt", a.state::text AS state, j.canary, a.error
       FROM "JobAttempt" a JOIN "Job" j ON j.id = a."jobId" WHERE a."providerId" IS NOT NULL`,
    );
    const cheaters: CheaterFigure[] = [];
    for (const { agent, behaviour } of agents) {
      if (behaviour === 'honest') continue;
      const p = byPeer.get(agent.peerId);
      const mine = attemptRows.filter((a) => a.providerId === agent.peerId);
      const bannedAt = p?.bannedAt ?? null;
      const cheated = [...(cheats.get(agent.peerId) ?? [])];
      cheaters.push({
        peerId: agent.peerId,
        behaviour,
        attempts: mine.length,
        cheats: cheated.length,
        banned: p?.status === 'BANNED',
        attemptsUntilBan: bannedAt ? mine.filter((a) => a.offeredAt <= bannedAt).length : null,
        cheatsUntilBan: bannedAt ? cheated.length : null,
      });
    }
    const honestPeers = agents.filter((a) => a.behaviour === 'honest').map((a) => a.agent.peerId);
    const penalties = await sql<{ peerId: string; kind: string }>(
      db,
      `SELECT "peerId", kind FROM "ReputationEvent" WHERE delta < 0 AND "peerId" = ANY($1::text[])`,
      [honestPeers],
    );
    const reversals = await sql<{ account: string }>(
      db,
      `SELECT DISTINCT account FROM "LedgerEntry" WHERE kind = 'release' AND amount < 0 AND account LIKE 'provider:%:held'`,
    );
    const verificationKinds = ['failed_canary', 'lost_tiebreak', 'failed_reverification'];
    const penalised = new Set<string>();
    for (const peer of honestPeers) {
      if (byPeer.get(peer)?.status === 'BANNED') penalised.add(peer);
      if (reversals.some((r) => r.account === `provider:${peer}:held`)) penalised.add(peer);
    }
    for (const p of penalties) if (verificationKinds.includes(p.kind)) penalised.add(p.peerId);
    const operational = penalties.filter((p) => !verificationKinds.includes(p.kind)).length;

    // Delivered results, checked against the plain-JS float64 reference.
    const results = await sql<{ id: string; result: { outputs: TensorWire[] } | null }>(
      db,
      `SELECT id::text, result FROM "Job" WHERE id = ANY($1::uuid[]) AND state = 'COMPLETED'`,
      [jobIds],
    );
    let wrongDelivered = 0;
    for (const r of results) {
      const spec = parseJobSpec(specs.get(r.id));
      const expected = referenceMatmul(spec);
      const got = r.result?.outputs ?? [];
      if (!compareResults(got, expected, { spec }).agree) wrongDelivered += 1;
      else decodeTensor(got[0]); // well-formed
    }
    const corrected = await sql<{ n: string }>(
      db,
      `SELECT COUNT(*)::text AS n FROM "JobEvent" WHERE type = 'job.corrected'`,
    );
    const counts = await sql<{ state: string; canary: boolean; n: string }>(
      db,
      `SELECT state::text AS state, canary, COUNT(*)::text AS n FROM "Job" GROUP BY state, canary`,
    );
    const count = (state: string | null, canary: boolean): number =>
      counts
        .filter((r) => r.canary === canary && (state === null || r.state === state))
        .reduce((s, r) => s + Number(r.n), 0);
    const ran = (a: { state: string; error: string | null }): boolean =>
      a.state === 'SUCCEEDED' || (a.state === 'FAILED' && (a.error ?? '').startsWith('verification failed'));
    const realRuns = attemptRows.filter((a) => !a.canary && ran(a)).length;
    const canaryRuns = attemptRows.filter((a) => a.canary && ran(a)).length;
    const tieBreaks = await sql<{ n: string }>(
      db,
      `SELECT COUNT(*)::text AS n FROM "JobEvent" e JOIN "Job" j ON j.id = e."jobId"
       WHERE e.type = 'verification.tiebreak' AND NOT j.canary`,
    );
    const recomputes = await sql<{ n: string }>(
      db,
      `SELECT COUNT(*)::text AS n FROM "JobEvent" WHERE type = 'verification.disagreement'`,
    );
    const completed = count('COMPLETED', false);
    const k = options.policy.mode === 'redundant' ? (options.policy.k ?? 2) : 1;
    const perJob = (n: number): number => (completed > 0 ? Math.round((n / completed) * 1000) / 1000 : 0);
    const cheatersWhoCheated = cheaters.filter((x) => x.cheats > 0);
    return {
      agents: {
        honest: options.honest,
        adversarial: options.adversaries.length,
        adversarialShare: Math.round((options.adversaries.length / behaviours.length) * 1000) / 1000,
      },
      jobs: {
        submitted: options.jobs,
        completed,
        failed: count('FAILED', false),
        other: options.jobs - completed - count('FAILED', false),
        canaries: count(null, true),
      },
      seconds: Math.round((Date.now() - started) / 100) / 10,
      wrongResultsReturned: wrongReturned,
      paidWrongResults: paidWrong,
      wrongResultsDelivered: wrongDelivered,
      correctedResults: Number(corrected[0].n),
      detectionRate:
        wrongReturned > 0 ? Math.round(((wrongReturned - paidWrong) / wrongReturned) * 1000) / 1000 : 1,
      cheatersBanned: cheaters.filter((x) => x.banned).length,
      cheatersWhoCheated: cheatersWhoCheated.length,
      cheaters,
      honestPenalised: penalised.size,
      honestOperationalPenalties: operational,
      overhead: {
        extraProviderWorkPerJob: perJob(realRuns + canaryRuns - completed),
        redundantRunsPerJob: k - 1,
        tieBreaksPerJob: perJob(Number(tieBreaks[0].n)),
        canaryRunsPerJob: perJob(canaryRuns),
        coordinatorRecomputes: Number(recomputes[0].n),
      },
    };
  } finally {
    for (const { agent } of agents) await agent.stop().catch(() => undefined);
    await db.end().catch(() => undefined);
    await c.close();
  }
}
