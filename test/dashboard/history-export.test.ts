// The dashboard's stored history (per-minute rollups, 7 days), the CSV exports of jobs, ledger and
// epochs, and the overview's fee figures, against a real coordinator (PostgreSQL, Redis, a provider).
import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StatsHistoryService } from '../../apps/coordinator/src/admin/stats-history.service.js';
import { EXPORT_BATCH } from '../../apps/coordinator/src/admin/export.repository.js';
import { loadConfig } from '../../apps/coordinator/src/config/config.js';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { pollUntil, query } from '../helpers/poll.js';
import { matmulSpec } from '../helpers/specs.js';

const MINUTE = 60_000;

/** RFC 4180 parsing, written apart from the server's writer: quoted fields, doubled quotes, CRLF. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += 1;
    } else field += ch;
  }
  if (field !== '' || row.length > 0) throw new Error('CSV does not end with CRLF');
  return rows;
}

async function csv(
  c: TestCoordinator,
  path: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${c.url}${path}`, { headers: { authorization: `Bearer ${c.adminKey}`, ...headers } });
}

describe('dashboard history, CSV exports and fee figures', () => {
  let c: TestCoordinator;
  let agent: FakeAgent;

  beforeAll(async () => {
    c = await startTestCoordinator();
    agent = await startFakeAgent(c.url, { operatorId: 'op-history', pricePerUnit: '400' });
  });
  afterAll(async () => {
    await agent?.stop().catch(() => undefined);
    await c?.close();
  });

  it('shows the fees charged and the canary share of them apart', async () => {
    await pollUntil(
      'a provider',
      async () => ((await api<unknown[]>(c.url, 'GET', '/v1/providers')).body.length > 0 ? true : undefined),
      20_000,
    );
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: { ...matmulSpec(8, 8, 8, '400'), verification: { mode: 'none', canaryRate: 0.2 } },
    });
    expect(job.status).toBe(201);
    await pollUntil(
      'the job completed',
      async () => {
        const res = await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${job.body.id}`, { key: c.devKey });
        return res.body.state === 'COMPLETED' ? true : undefined;
      },
      20_000,
    );
    const [row] = await query<{ fee: string; canary: string }>(
      c.databaseUrl,
      `SELECT (SELECT SUM(amount) FROM "LedgerEntry" WHERE "jobId" = $1 AND kind = 'settle'
                AND "accountKind" IN ('fees', 'held-fee'))::text AS fee,
              (SELECT verification->>'canaryFee' FROM "Job" WHERE id = $1) AS canary`,
      [job.body.id],
    );
    expect(BigInt(row.fee)).toBeGreaterThan(0n);
    expect(BigInt(row.canary)).toBeGreaterThan(0n);
    // The job's canary rate may also have spawned a canary copy of it (paid by the platform, its
    // fee counted, its own canary fee not): the overview must match the ledger and the jobs as a whole.
    await pollUntil(
      'the overview counting the job',
      async () => {
        const [all] = await query<{ fee: string | null; canary: string | null }>(
          c.databaseUrl,
          `SELECT (SELECT SUM(amount) FROM "LedgerEntry" WHERE kind = 'settle'
                    AND "accountKind" IN ('fees', 'held-fee'))::text AS fee,
                  (SELECT SUM((verification->>'canaryFee')::numeric) FROM "Job"
                    WHERE state = 'COMPLETED' AND NOT canary)::text AS canary`,
        );
        const o = await api<{ feesChargedThisEpoch: string; canaryShareThisEpoch: string }>(
          c.url,
          'GET',
          '/v1/admin/overview',
          { key: c.adminKey },
        );
        return BigInt(o.body.feesChargedThisEpoch) >= BigInt(row.fee) &&
          o.body.feesChargedThisEpoch === all.fee &&
          o.body.canaryShareThisEpoch === all.canary
          ? true
          : undefined;
      },
      10_000,
    );
  });

  it('writes a row per minute, prunes past the retention, and serves 30 min, 24 h and 7 days', async () => {
    // the scheduler of the once-a-minute rollup is in place
    const queue = c.running.app.get<Queue>(getQueueToken('stats'));
    expect((await queue.getJobSchedulers()).map((s) => s.key)).toContain('stats-rollup');
    // From here the test writes the minutes itself: the scheduler stopped, the startup backfill
    // finished (on a loaded machine it may run after the first test's job; a finished job is removed,
    // 'unknown'), and the table emptied.
    await queue.removeJobScheduler('stats-rollup');
    await pollUntil(
      'the startup backfill done',
      async () =>
        ['completed', 'failed', 'unknown'].includes(await queue.getJobState('stats-backfill'))
          ? true
          : undefined,
      30_000,
    );
    await query(c.databaseUrl, 'DELETE FROM "StatsRollup"');

    const now = Date.now();
    const minuteAgo = (n: number): Date => new Date(Math.floor(now / MINUTE) * MINUTE - n * MINUTE);
    const seed = async (at: Date, queueDepth: number, submitted: number): Promise<void> => {
      await query(
        c.databaseUrl,
        `INSERT INTO "StatsRollup" (minute, "providersOnline", slots, "freeSlots", "queueDepth", "activeJobs",
           submitted, completed, failed) VALUES ($1, 2, 8, 6, $2, 1, $3, $3, 0)`,
        [at, queueDepth, submitted],
      );
    };
    await seed(minuteAgo(10), 4, 3);
    await seed(minuteAgo(11), 2, 5);
    await seed(minuteAgo(3 * 60), 7, 11);
    await seed(minuteAgo(3 * 24 * 60), 1, 13);
    await seed(minuteAgo(9 * 24 * 60), 1, 17); // past the 8-day retention

    const written = await c.running.app.get(StatsHistoryService).rollUp(new Date(now));
    expect(written.minute.getTime()).toBe(minuteAgo(1).getTime());
    expect(written.pruned).toBe(1);
    const rows = await query<{ minute: Date; providersOnline: number; submitted: number; completed: number }>(
      c.databaseUrl,
      `SELECT minute, "providersOnline", submitted, completed FROM "StatsRollup" ORDER BY minute`,
    );
    expect(rows.length).toBe(5);
    expect(rows.at(-1)?.providersOnline).toBe(1); // the provider of this test, sampled

    type History = {
      bucketSeconds: number;
      points: { at: string; minutes: number; queueDepth: number; queueDepthMax: number; submitted: number }[];
    };
    const get = (range: string) =>
      api<History>(c.url, 'GET', `/v1/admin/history?range=${range}`, { key: c.adminKey });
    const short = await get('30m');
    expect(short.status).toBe(200);
    expect(short.body.bucketSeconds).toBe(60);
    const at = (d: Date): string => d.toISOString();
    expect(short.body.points.find((p) => p.at === at(minuteAgo(10)))).toMatchObject({
      queueDepth: 4,
      submitted: 3,
    });
    expect(short.body.points.some((p) => p.at === at(minuteAgo(3 * 60)))).toBe(false);

    const day = await get('24h');
    expect(day.body.bucketSeconds).toBe(300);
    expect(day.body.points.some((p) => p.submitted === 11)).toBe(true);
    expect(day.body.points.some((p) => p.submitted === 13)).toBe(false);
    // minutes 10 and 11 ago share a 5-minute bucket unless a boundary falls between them
    const pair = day.body.points.filter((p) => p.submitted === 8);
    if (pair.length === 1) expect(pair[0]).toMatchObject({ minutes: 2, queueDepth: 3, queueDepthMax: 4 });

    const week = await get('7d');
    expect(week.body.bucketSeconds).toBe(3600);
    expect(week.body.points.some((p) => p.submitted === 13)).toBe(true);
    expect(week.body.points.some((p) => p.submitted === 17)).toBe(false);
    expect(week.body.points.map((p) => p.at)).toEqual([...week.body.points.map((p) => p.at)].sort());

    expect((await get('1y')).status).toBe(400);
    expect((await api(c.url, 'GET', '/v1/admin/history', { key: c.devKey })).status).toBe(403);
  });

  it('exports every job as CSV, streamed in batches, escaped, with the filters of time, state and provider', async () => {
    const [account] = await query<{ id: string }>(
      c.databaseUrl,
      `SELECT "accountId" AS id FROM "Job" LIMIT 1`,
    );
    // more jobs than a batch, all at one instant: the keyset must still give each exactly once
    const many = EXPORT_BATCH + 150;
    await query(
      c.databaseUrl,
      `INSERT INTO "Job" (id, "accountId", kind, state, spec, "specHash", "workUnits", "pricePerUnit", cost,
         "deadlineAt", "createdAt", "finishedAt", "updatedAt", error)
       SELECT gen_random_uuid(), $1, 'matmul', 'FAILED', '{}', 'h', 1, 1, 1, now(),
              timestamp '2026-01-02 03:04:05', timestamp '2026-01-02 03:05:00', now(), NULL
       FROM generate_series(1, $2)`,
      [account.id, many],
    );
    const nasty = '=HYPERLINK("x"), then\r\na second line';
    await query(
      c.databaseUrl,
      `UPDATE "Job" SET error = $1 WHERE id = (SELECT id FROM "Job" WHERE "createdAt" = timestamp '2026-01-02 03:04:05' ORDER BY id LIMIT 1)`,
      [nasty],
    );

    const res = await csv(c, '/v1/admin/export/jobs?format=csv');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toMatch(
      /^attachment; filename="gpumesh-jobs-[\dTZ-]+\.csv"$/,
    );
    const rows = parseCsv(await res.text());
    const [header, ...body] = rows;
    expect(header.slice(0, 3)).toEqual(['id', 'state', 'kind']);
    expect(body.every((r) => r.length === header.length)).toBe(true);
    const [{ n }] = await query<{ n: number }>(c.databaseUrl, `SELECT count(*)::int AS n FROM "Job"`);
    expect(body.length).toBe(n);
    expect(new Set(body.map((r) => r[0])).size).toBe(n);
    // the cell comes back whole, defused for spreadsheets
    expect(body.map((r) => r[header.indexOf('error')])).toContain(`'${nasty}`);

    const window = await csv(
      c,
      '/v1/admin/export/jobs?since=2026-01-02T03:04:05.000Z&until=2026-01-02T03:04:06.000Z',
      { accept: 'text/csv' },
    );
    expect(parseCsv(await window.text()).length).toBe(many + 1);
    const nothing = await csv(c, '/v1/admin/export/jobs?since=2030-01-01T00:00:00.000Z');
    expect(parseCsv(await nothing.text())).toEqual([header]);
    // the filters of the jobs list: state, provider
    const failed = parseCsv(await (await csv(c, '/v1/admin/export/jobs?state=FAILED,EXPIRED')).text());
    expect(failed.length).toBe(many + 1);
    // every job that completed ran on the one provider (the first test's job, and a canary copy of
    // it when its canary rate drew one)
    const ran = parseCsv(await (await csv(c, `/v1/admin/export/jobs?providerId=${agent.peerId}`)).text());
    const [{ completed }] = await query<{ completed: number }>(
      c.databaseUrl,
      `SELECT count(*)::int AS completed FROM "Job" WHERE state = 'COMPLETED'`,
    );
    expect(completed).toBeGreaterThanOrEqual(1);
    expect(ran.slice(1).map((r) => r[header.indexOf('state')])).toEqual(Array(completed).fill('COMPLETED'));
  });

  it('exports the ledger and the epochs, also to Accept: text/csv on the lists; refuses unknown tables, formats and non-admins', async () => {
    const ledger = parseCsv(await (await csv(c, '/v1/admin/export/ledger')).text());
    const [{ n, total }] = await query<{ n: number; total: string }>(
      c.databaseUrl,
      `SELECT count(*)::int AS n, COALESCE(SUM(amount), 0)::text AS total FROM "LedgerEntry"`,
    );
    expect(n).toBeGreaterThan(0);
    expect(ledger.length).toBe(n + 1);
    const amount = ledger[0].indexOf('amount');
    expect(ledger.slice(1).reduce((sum, r) => sum + BigInt(r[amount]), 0n)).toBe(BigInt(total));

    const epochs = parseCsv(await (await csv(c, '/v1/admin/export/epochs')).text());
    const [{ e }] = await query<{ e: number }>(c.databaseUrl, `SELECT count(*)::int AS e FROM "Epoch"`);
    expect(epochs[0].slice(0, 3)).toEqual(['id', 'state', 'started_at']);
    expect(epochs.length).toBe(e + 1);

    // the list routes answer the same CSV to Accept: text/csv (and JSON otherwise)
    const listed = await csv(c, '/v1/admin/epochs', { accept: 'text/csv' });
    expect(listed.status).toBe(200);
    expect(listed.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(listed.headers.get('content-disposition')).toMatch(/^attachment; filename="gpumesh-epochs-/);
    expect(parseCsv(await listed.text())).toEqual(epochs);
    const json = await csv(c, '/v1/admin/epochs', { accept: 'application/json, text/csv;q=0.5' });
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    expect(((await json.json()) as unknown[]).length).toBe(e);
    const failedJobs = '/v1/admin/jobs?state=FAILED,EXPIRED&limit=1';
    const jobsCsv = parseCsv(await (await csv(c, failedJobs, { accept: 'text/csv' })).text());
    expect(jobsCsv).toEqual(
      parseCsv(await (await csv(c, '/v1/admin/export/jobs?state=FAILED,EXPIRED')).text()),
    );
    expect(jobsCsv.length).toBeGreaterThan(2); // every match, not a page of one
    const page = (await (await csv(c, failedJobs)).json()) as { items: unknown[] };
    expect(page.items.length).toBe(1);
    expect((await csv(c, '/v1/admin/jobs?state=DONE', { accept: 'text/csv' })).status).toBe(400);

    expect((await csv(c, '/v1/admin/export/accounts')).status).toBe(400);
    expect((await csv(c, '/v1/admin/export/jobs?format=xml')).status).toBe(400);
    expect((await csv(c, '/v1/admin/export/ledger?state=FAILED')).status).toBe(400);
    expect((await csv(c, '/v1/admin/export/jobs?state=DONE')).status).toBe(400);
    expect((await fetch(`${c.url}/v1/admin/export/jobs`)).status).toBe(401);
    const dev = await fetch(`${c.url}/v1/admin/export/ledger`, {
      headers: { authorization: `Bearer ${c.devKey}` },
    });
    expect(dev.status).toBe(403);
  });

  it('rebuilds the minutes missing from the history from the stored jobs, and keeps what the rollup wrote', async () => {
    const history = c.running.app.get(StatsHistoryService);
    const now = Date.now();
    const minuteAgo = (n: number, plusMs = 0): Date =>
      new Date(Math.floor(now / MINUTE) * MINUTE - n * MINUTE + plusMs);
    // an upgrade to a version with history: no rows, but jobs of the last half hour in the tables
    // (the jobs of the tests above are younger than these two, or older than the retention window)
    await query(c.databaseUrl, `DELETE FROM "StatsRollup"`);
    const [account] = await query<{ id: string }>(
      c.databaseUrl,
      `SELECT "accountId" AS id FROM "Job" LIMIT 1`,
    );
    const job = async (state: string, createdAt: Date, finishedAt: Date): Promise<string> => {
      const [row] = await query<{ id: string }>(
        c.databaseUrl,
        `INSERT INTO "Job" (id, "accountId", kind, state, spec, "specHash", "workUnits", "pricePerUnit", cost,
           "deadlineAt", "createdAt", "finishedAt", "updatedAt")
         VALUES (gen_random_uuid(), $1, 'matmul', $2, '{}', 'h', 1, 1, 1, now(), $3, $4, now()) RETURNING id`,
        [account.id, state, createdAt, finishedAt],
      );
      return row.id;
    };
    const move = async (jobId: string, from: string | null, to: string, at: Date): Promise<void> => {
      await query(
        c.databaseUrl,
        `INSERT INTO "JobEvent" ("jobId", type, "fromState", "toState", "createdAt") VALUES ($1, 'state', $2, $3, $4)`,
        [jobId, from, to, at],
      );
    };
    // one completes: queued 30 min ago, dispatched at 28, running at 27, completed at 20
    const done = await job('COMPLETED', minuteAgo(30, 5_000), minuteAgo(20, 10_000));
    await move(done, null, 'QUEUED', minuteAgo(30, 5_000));
    await move(done, 'QUEUED', 'DISPATCHED', minuteAgo(28, 1_000));
    await move(done, 'DISPATCHED', 'RUNNING', minuteAgo(27, 1_000));
    await move(done, 'RUNNING', 'VERIFYING', minuteAgo(21, 1_000));
    await move(done, 'VERIFYING', 'COMPLETED', minuteAgo(20, 10_000));
    // one waits from 29 and fails at 22
    const failed = await job('FAILED', minuteAgo(29, 2_000), minuteAgo(22, 3_000));
    await move(failed, null, 'QUEUED', minuteAgo(29, 2_000));
    await move(failed, 'QUEUED', 'FAILED', minuteAgo(22, 3_000));
    // a minute the rollup did write stays as it was
    await query(
      c.databaseUrl,
      `INSERT INTO "StatsRollup" (minute, "providersOnline", slots, "freeSlots", "queueDepth", "activeJobs",
         submitted, completed, failed) VALUES ($1, 3, 12, 9, 0, 0, 0, 0, 0)`,
      [minuteAgo(5)],
    );

    const written = await history.backfill(new Date(now));
    type Row = {
      minute: Date;
      providersOnline: number | null;
      queueDepth: number;
      activeJobs: number;
      submitted: number;
      completed: number;
      failed: number;
    };
    const rows = await query<Row>(
      c.databaseUrl,
      `SELECT minute, "providersOnline", "queueDepth", "activeJobs", submitted, completed, failed
       FROM "StatsRollup" WHERE minute >= $1 ORDER BY minute`,
      [minuteAgo(30)],
    );
    // every finished minute from the first job's on, one row each (the live rollup may have written
    // the last one meanwhile: it is kept, as minute 5's is)
    expect(rows.map((r) => r.minute.getTime())).toEqual(
      Array.from({ length: 30 }, (_, i) => minuteAgo(30 - i).getTime()),
    );
    expect(written).toBeGreaterThanOrEqual(28);
    const at = (n: number): Row | undefined =>
      rows.find((r) => r.minute.getTime() === minuteAgo(n).getTime());
    expect(at(30)).toMatchObject({ providersOnline: null, submitted: 1, queueDepth: 1, activeJobs: 0 });
    expect(at(29)).toMatchObject({ submitted: 1, queueDepth: 2, activeJobs: 0 });
    expect(at(28)).toMatchObject({ submitted: 0, queueDepth: 1, activeJobs: 1 });
    expect(at(25)).toMatchObject({ queueDepth: 1, activeJobs: 1, completed: 0, failed: 0 });
    expect(at(22)).toMatchObject({ queueDepth: 0, activeJobs: 1, failed: 1 });
    expect(at(21)).toMatchObject({ queueDepth: 0, activeJobs: 1 });
    expect(at(20)).toMatchObject({ queueDepth: 0, activeJobs: 0, completed: 1 });
    expect(at(5)?.providersOnline).toBe(3);
    // the jobs summed over the rebuilt minutes are the jobs
    expect(rows.filter((r) => r.minute < minuteAgo(19)).reduce((n, r) => n + r.submitted, 0)).toBe(2);
    // again: nothing is missing any more
    expect(await history.backfill(new Date(now))).toBe(0);

    // the history shows the rebuilt minutes, with no provider figures for them
    const short = await api<{ points: { at: string; providersOnline: number | null; queueDepth: number }[] }>(
      c.url,
      'GET',
      '/v1/admin/history?range=30m',
      { key: c.adminKey },
    );
    const point = short.body.points.find((p) => p.at === minuteAgo(29).toISOString());
    expect(point).toMatchObject({ providersOnline: null, queueDepth: 2 });
  });

  it('keeps the history for HISTORY_RETENTION_DAYS, at least the 7 days the dashboard shows', () => {
    expect(loadConfig({}).HISTORY_RETENTION_DAYS).toBe(8);
    expect(loadConfig({ HISTORY_RETENTION_DAYS: '30' }).HISTORY_RETENTION_DAYS).toBe(30);
    expect(() => loadConfig({ HISTORY_RETENTION_DAYS: '6' })).toThrow(/HISTORY_RETENTION_DAYS/);
    expect(() => loadConfig({ HISTORY_RETENTION_DAYS: 'a week' })).toThrow(/HISTORY_RETENTION_DAYS/);
  });
});
