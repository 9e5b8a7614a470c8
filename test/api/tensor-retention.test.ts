// Tensor retention against a real coordinator (PostgreSQL, Redis, libp2p, its tensor directory): a
// developer deletes its own tensors (404 for anyone else's, 409 while a job that has not finished
// names one), lists them with their expiry, and the retention sweep deletes unused uploads and old
// outputs by ref (whose job then answers 410 for them), never what a running job names, and files
// no row names once idle for an hour. Time passing is the only thing faked: rows and files are
// backdated in the database and on disk.
import { createHash, randomBytes } from 'node:crypto';
import { stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNpy, NPY_MEDIA_TYPE } from '@gpumesh/protocol';
import { GpumeshClient } from '@gpumesh/sdk';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { fundedDeveloper, type TestDeveloper } from '../helpers/accounts.js';
import { pollUntil, query } from '../helpers/poll.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { TensorRetentionService } from '../../apps/coordinator/src/tensors/tensor-retention.service.js';
import { TensorsRepository } from '../../apps/coordinator/src/tensors/tensors.repository.js';
import { TensorsService } from '../../apps/coordinator/src/tensors/tensors.service.js';

interface TensorBody {
  ref: string;
  dtype: string;
  shape: number[];
  bytes: number;
  createdAt: string;
  expiresAt: string | null;
  jobId: string | null;
}
interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

function floats(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => (((i * 7919 + seed * 104729) % 1000) - 500) / 250);
}

function npyOf(values: Float32Array, shape: number[]): Uint8Array {
  return encodeNpy('float32', shape, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

async function upload(c: TestCoordinator, key: string, body: Uint8Array): Promise<TensorBody> {
  const res = await fetch(`${c.url}/v1/tensors`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': NPY_MEDIA_TYPE },
    body,
  });
  expect([200, 201]).toContain(res.status);
  return (await res.json()) as TensorBody;
}

function matmulByRef(a: string, b: string): Record<string, unknown> {
  return {
    kind: 'matmul',
    version: 1,
    maxPricePerUnit: '10',
    inputs: [
      { name: 'a', ref: a },
      { name: 'b', ref: b },
    ],
  };
}

const shaOf = (ref: string): string => ref.slice('sha256:'.length);

describe('tensor retention: DELETE and GET /v1/tensors, the expiry sweep, 410 for expired outputs (real PostgreSQL, Redis, libp2p)', () => {
  let c: TestCoordinator;
  let other: TestDeveloper;
  let agent: FakeAgent | undefined;
  let dir: string;
  const exists = (ref: string): Promise<boolean> =>
    stat(join(dir, shaOf(ref))).then(
      () => true,
      () => false,
    );
  const sweep = (): ReturnType<TensorRetentionService['sweep']> =>
    c.running.app.get(TensorRetentionService).sweep();
  const jobState = async (id: string): Promise<string> =>
    (await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${id}`, { key: c.devKey })).body.state;

  beforeAll(async () => {
    c = await startTestCoordinator({ UNPLACEABLE_GRACE_SECONDS: '0', OFFER_ACCEPT_TIMEOUT_MS: '3000' });
    other = await fundedDeveloper(c, 10n ** 12n);
    dir = join(c.config.DATA_DIR, 'tensors');
  });
  afterAll(async () => {
    await agent?.stop();
    await c?.close();
  });

  it('deletes only your own tensors (404 like GET for anyone else), and none a job that has not finished names (409)', async () => {
    const mine = await upload(c, c.devKey, npyOf(floats(4, 11), [2, 2]));
    const unknown = `sha256:${'0'.repeat(64)}`;

    // Another account's ref: the answer GET gives it, and the one for a ref nobody has.
    const notYours = await api<ErrorBody>(c.url, 'DELETE', `/v1/tensors/${mine.ref}`, { key: other.key });
    const getNotYours = await api<ErrorBody>(c.url, 'GET', `/v1/tensors/${mine.ref}`, {
      key: other.key,
      headers: { accept: 'application/json' },
    });
    const nobody = await api<ErrorBody>(c.url, 'DELETE', `/v1/tensors/${unknown}`, { key: other.key });
    expect(notYours.status).toBe(404);
    expect(notYours.body).toEqual(getNotYours.body);
    expect(notYours.body.error).toEqual({
      code: 'TENSOR_NOT_FOUND',
      message: `no tensor ${mine.ref} of this account`,
    });
    expect(nobody.body.error).toEqual({
      code: 'TENSOR_NOT_FOUND',
      message: `no tensor ${unknown} of this account`,
    });
    expect(await exists(mine.ref)).toBe(true);

    // A queued job names it (no provider is connected yet): 409 naming the job.
    const job = await api<{ id: string; state: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulByRef(mine.ref, mine.ref),
    });
    expect(job.status).toBe(201);
    expect(job.body.state).toBe('QUEUED');
    const inUse = await api<ErrorBody>(c.url, 'DELETE', `/v1/tensors/${mine.ref}`, { key: c.devKey });
    expect(inUse.status).toBe(409);
    expect(inUse.body.error.code).toBe('TENSOR_IN_USE');
    expect(inUse.body.error.message).toContain(job.body.id);
    expect(inUse.body.error.details).toEqual({ jobIds: [job.body.id] });
    expect(await exists(mine.ref)).toBe(true);

    // Once the job has ended it goes: row and file; the ref is then unknown everywhere.
    expect((await api(c.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, { key: c.devKey })).status).toBe(200);
    const deleted = await api(c.url, 'DELETE', `/v1/tensors/${mine.ref}`, { key: c.devKey });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ ref: mine.ref, deleted: true });
    expect(await exists(mine.ref)).toBe(false);
    expect((await api(c.url, 'GET', `/v1/tensors/${mine.ref}`, { key: c.devKey })).status).toBe(404);
    expect((await api(c.url, 'DELETE', `/v1/tensors/${mine.ref}`, { key: c.devKey })).status).toBe(404);
    const again = await api<ErrorBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulByRef(mine.ref, mine.ref),
    });
    expect(again.status).toBe(400);
    expect(again.body.error.message).toContain('inputs[0].ref');

    // Bytes two accounts uploaded: one deleting its tensor leaves the other's whole.
    const sharedBody = npyOf(floats(4, 12), [2, 2]);
    const shared = await upload(c, c.devKey, sharedBody);
    await upload(c, other.key, sharedBody);
    expect((await api(c.url, 'DELETE', `/v1/tensors/${shared.ref}`, { key: c.devKey })).status).toBe(200);
    expect(await exists(shared.ref)).toBe(true);
    const theirs = await fetch(`${c.url}/v1/tensors/${shared.ref}`, {
      headers: { authorization: `Bearer ${other.key}` },
    });
    expect(theirs.status).toBe(200);
    expect(Buffer.from(await theirs.arrayBuffer()).equals(Buffer.from(sharedBody))).toBe(true);
  });

  it('lists your tensors newest first, paged, each with when it expires', async () => {
    await upload(c, other.key, npyOf(floats(6, 13), [2, 3]));
    await upload(c, other.key, npyOf(floats(6, 14), [3, 2]));
    const first = await api<{ items: TensorBody[]; nextCursor: string | null }>(
      c.url,
      'GET',
      '/v1/tensors?limit=2',
      { key: other.key },
    );
    expect(first.status).toBe(200);
    expect(first.body.items.map((t) => t.shape)).toEqual([
      [3, 2],
      [2, 3],
    ]);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await api<{ items: TensorBody[]; nextCursor: string | null }>(
      c.url,
      'GET',
      `/v1/tensors?limit=2&cursor=${first.body.nextCursor}`,
      { key: other.key },
    );
    expect(second.body.items).toHaveLength(1); // the shared upload of the test before
    expect(second.body.nextCursor).toBeNull();
    for (const t of [...first.body.items, ...second.body.items]) {
      expect(t).toMatchObject({ dtype: 'float32', jobId: null, bytes: 4 * t.shape[0] * t.shape[1] });
      // an upload is kept TENSOR_RETENTION_DAYS (7) after it was last uploaded or used
      const keptMs = Date.parse(t.expiresAt ?? '') - Date.parse(t.createdAt);
      expect(Math.abs(keptMs - 7 * DAY_MS)).toBeLessThan(60_000);
    }
    // another account sees none of them
    const mine = await api<{ items: TensorBody[] }>(c.url, 'GET', '/v1/tensors?limit=200', { key: c.devKey });
    const theirs = new Set([...first.body.items, ...second.body.items].map((t) => t.ref));
    expect(mine.body.items.filter((t) => theirs.has(t.ref))).toEqual([]);
    const bad = await api(c.url, 'GET', '/v1/tensors?cursor=bm90LWEtY3Vyc29y', { key: other.key });
    expect(bad.status).toBe(400);
    // the SDK pages and deletes the same way
    const sdk = new GpumeshClient({ baseUrl: c.url, apiKey: other.key });
    const page = await sdk.tensors({ limit: 2 });
    expect(page.items.map((t) => t.ref)).toEqual(first.body.items.map((t) => t.ref));
    expect(await sdk.deleteTensor(page.items[0].ref)).toEqual({ ref: page.items[0].ref, deleted: true });
    expect((await sdk.tensors({ limit: 200 })).items).toHaveLength(2);
  });

  it('expires unused uploads and old outputs by ref (410 for the output), keeping what a running job names', async () => {
    agent = await startFakeAgent(c.url, { pricePerUnit: '1', outputsByRef: true });
    await pollUntil(
      'a provider',
      async () => ((await api<unknown[]>(c.url, 'GET', '/v1/providers')).body.length >= 1 ? true : undefined),
      20_000,
    );
    const a = await upload(c, c.devKey, npyOf(floats(12, 21), [3, 4]));
    const b = await upload(c, c.devKey, npyOf(floats(8, 22), [4, 2]));
    const done = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulByRef(a.ref, b.ref),
    });
    await pollUntil(
      'the job completed',
      async () => {
        const state = await jobState(done.body.id);
        if (['FAILED', 'EXPIRED', 'CANCELLED'].includes(state)) throw new Error(state);
        return state === 'COMPLETED' ? true : undefined;
      },
      30_000,
    );
    const result = await api<{ result: { outputs: { name: string; ref?: string }[] } }>(
      c.url,
      'GET',
      `/v1/jobs/${done.body.id}/result`,
      { key: c.devKey },
    );
    const outputRef = result.body.result.outputs[0].ref as string;
    expect(outputRef).toMatch(/^sha256:[0-9a-f]{64}$/);
    // the output is the account's, with its job and OUTPUT_RETENTION_DAYS (30) to live
    const listed = await api<{ items: TensorBody[] }>(c.url, 'GET', '/v1/tensors', { key: c.devKey });
    const output = listed.body.items.find((t) => t.ref === outputRef);
    expect(output).toMatchObject({ jobId: done.body.id, shape: [3, 2] });
    expect(Math.abs(Date.parse(output?.expiresAt ?? '') - Date.now() - 30 * DAY_MS)).toBeLessThan(60_000);
    expect((await fetch(`${c.url}/v1/jobs/${done.body.id}/outputs/c`, bearer(c.devKey))).status).toBe(200);

    // A job that stays running names `kept`; `unused` and `fresh` are named by nothing.
    const kept = await upload(c, c.devKey, npyOf(floats(4, 23), [2, 2]));
    const unused = await upload(c, c.devKey, npyOf(floats(4, 24), [2, 2]));
    const fresh = await upload(c, c.devKey, npyOf(floats(4, 25), [2, 2]));
    agent.setBehaviour('hang');
    const running = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulByRef(kept.ref, kept.ref),
    });
    await pollUntil(
      'the job running',
      async () => ((await jobState(running.body.id)) === 'RUNNING' ? true : undefined),
      20_000,
    );

    // Eight days without use for two uploads, 31 days since the first job finished.
    await query(
      c.databaseUrl,
      `UPDATE "Tensor" SET "lastUsedAt" = now() - interval '8 days' WHERE sha256 = ANY($1::text[])`,
      [[shaOf(kept.ref), shaOf(unused.ref)]],
    );
    await query(c.databaseUrl, `UPDATE "Job" SET "finishedAt" = now() - interval '31 days' WHERE id = $1`, [
      done.body.id,
    ]);
    await query(
      c.databaseUrl,
      `UPDATE "Tensor" SET "lastUsedAt" = now() - interval '31 days' WHERE "jobId" = $1`,
      [done.body.id],
    );

    // This sweep logs to a logger of the test's own: one info line with what it deleted.
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _encoding, done): void {
          lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
          done();
        },
      }),
    );
    const retention = new TensorRetentionService(
      c.running.app.get(TensorsService),
      c.running.app.get(TensorsRepository),
      logger,
    );
    const report = await retention.sweep();
    expect(report).toMatchObject({ uploads: 1, outputs: 1, files: 2, rowBytes: 16 + 24, fileBytes: 16 + 24 });
    expect(lines).toEqual([
      expect.objectContaining({
        level: 30,
        msg: 'tensor retention sweep',
        uploads: 1,
        outputs: 1,
        fileBytes: 40,
      }),
    ]);
    expect(await exists(unused.ref)).toBe(false);
    expect(await exists(outputRef)).toBe(false);
    for (const ref of [kept.ref, fresh.ref, a.ref, b.ref]) expect(await exists(ref)).toBe(true);
    expect((await api(c.url, 'GET', `/v1/tensors/${unused.ref}`, { key: c.devKey })).status).toBe(404);
    const keptRow = await api<TensorBody>(c.url, 'GET', `/v1/tensors/${kept.ref}`, {
      key: c.devKey,
      headers: { accept: 'application/json' },
    });
    expect(keptRow.status).toBe(200);
    expect(Date.parse(keptRow.body.expiresAt ?? '')).toBeLessThan(Date.now()); // past, yet kept

    // The job and its result stay; its expired output answers 410 naming the policy, as .npy or JSON.
    for (const accept of [NPY_MEDIA_TYPE, 'application/json']) {
      const gone = await api<ErrorBody>(c.url, 'GET', `/v1/jobs/${done.body.id}/outputs/c`, {
        key: c.devKey,
        headers: { accept },
      });
      expect(gone.status).toBe(410);
      expect(gone.body.error.code).toBe('OUTPUT_EXPIRED');
      expect(gone.body.error.message).toContain('30 days (OUTPUT_RETENTION_DAYS)');
    }
    expect(await jobState(done.body.id)).toBe('COMPLETED');
    expect((await api(c.url, 'GET', `/v1/jobs/${done.body.id}/result`, { key: c.devKey })).status).toBe(200);

    // Once the running job has ended, its input goes with the next sweep.
    expect((await api(c.url, 'POST', `/v1/jobs/${running.body.id}/cancel`, { key: c.devKey })).status).toBe(
      200,
    );
    expect(await sweep()).toMatchObject({ uploads: 1, outputs: 0, files: 1 });
    expect(await exists(kept.ref)).toBe(false);
    expect(await exists(fresh.ref)).toBe(true);
    agent.setBehaviour('honest');
  }, 90_000);

  it('deletes files no row names once idle for an hour (a crash between row and file), keeps newer and named ones, and gives a completed job its unowned outputs back', async () => {
    const past = new Date(Date.now() - 2 * HOUR_MS);
    // A crash after the row was deleted, before its file: the row is gone, the file stays.
    const crashed = await upload(c, c.devKey, npyOf(floats(4, 31), [2, 2]));
    await query(c.databaseUrl, `DELETE FROM "Tensor" WHERE sha256 = $1`, [shaOf(crashed.ref)]);
    await utimes(join(dir, shaOf(crashed.ref)), past, past);
    // Bytes nobody names, written just now: maybe an upload between its file and its row.
    const recentBytes = randomBytes(64);
    const recent = `sha256:${createHash('sha256').update(recentBytes).digest('hex')}`;
    await writeFile(join(dir, shaOf(recent)), recentBytes);
    // A named tensor, untouched for two hours, and a temporary an upload left two hours ago.
    const named = await upload(c, c.devKey, npyOf(floats(4, 32), [2, 2]));
    await utimes(join(dir, shaOf(named.ref)), past, past);
    const temp = join(dir, 'abandoned-upload.tmp');
    await writeFile(temp, 'partial');
    await utimes(temp, past, past);

    // A completed job whose output row could not be written (the database failed right after it).
    const a = await upload(c, c.devKey, npyOf(floats(12, 33), [3, 4]));
    const b = await upload(c, c.devKey, npyOf(floats(8, 34), [4, 2]));
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulByRef(a.ref, b.ref),
    });
    await pollUntil(
      'the job completed',
      async () => ((await jobState(job.body.id)) === 'COMPLETED' ? true : undefined),
      30_000,
    );
    const [row] = await query<{ sha256: string }>(
      c.databaseUrl,
      `DELETE FROM "Tensor" WHERE "jobId" = $1 RETURNING sha256`,
      [job.body.id],
    );
    await utimes(join(dir, row.sha256), past, past);

    const report = await sweep();
    expect(report).toMatchObject({
      uploads: 0,
      outputs: 0,
      orphans: 1,
      files: 1,
      readopted: 1,
      temporaries: 1,
    });
    expect(await exists(crashed.ref)).toBe(false);
    await expect(stat(temp)).rejects.toThrow();
    for (const ref of [recent, named.ref, `sha256:${row.sha256}`]) expect(await exists(ref)).toBe(true);
    expect((await fetch(`${c.url}/v1/jobs/${job.body.id}/outputs/c`, bearer(c.devKey))).status).toBe(200);
    const listed = await api<{ items: TensorBody[] }>(c.url, 'GET', '/v1/tensors', { key: c.devKey });
    expect(listed.body.items.find((t) => t.ref === `sha256:${row.sha256}`)?.jobId).toBe(job.body.id);
  }, 60_000);

  it('fails at once (INPUT_DELETED) a job stored just after a DELETE of its input had checked for jobs', async () => {
    const mine = await upload(c, c.devKey, npyOf(floats(4, 41), [2, 2]));
    const before = (
      await api<{ id: string; reserved: string }>(c.url, 'GET', '/v1/account', { key: c.devKey })
    ).body;
    // The submission's insert waits on the account's balance row, held here: it has resolved (and
    // marked used) its input, its job row is not written yet, when the DELETE runs.
    const blocker = new pg.Client({ connectionString: c.databaseUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT balance FROM "LedgerBalance" WHERE account = $1 FOR UPDATE`, [
        `acct:${before.id}:available`,
      ]);
      const submitted = api<{ id: string; state: string; error: { code: string; message: string } | null }>(
        c.url,
        'POST',
        '/v1/jobs',
        { key: c.devKey, body: matmulByRef(mine.ref, mine.ref) },
      );
      await pollUntil(
        'the submission waiting for the balance row',
        async () => {
          const waiting = await query(
            c.databaseUrl,
            `SELECT 1 FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%"LedgerBalance"%'`,
          );
          return waiting.length > 0 ? true : undefined;
        },
        10_000,
      );
      const deleted = await api(c.url, 'DELETE', `/v1/tensors/${mine.ref}`, { key: c.devKey });
      expect(deleted.status).toBe(200);
      expect(await exists(mine.ref)).toBe(false);
      await blocker.query('ROLLBACK');
      const job = await submitted;
      expect(job.status).toBe(201);
      expect(job.body.state).toBe('FAILED');
      expect(job.body.error?.code).toBe('INPUT_DELETED');
      expect(job.body.error?.message).toContain(mine.ref);
      // its reservation went back
      const after = (await api<{ reserved: string }>(c.url, 'GET', '/v1/account', { key: c.devKey })).body;
      expect(after.reserved).toBe(before.reserved);
    } finally {
      await blocker.end();
    }
  }, 30_000);
});

function bearer(key: string): RequestInit {
  return { headers: { authorization: `Bearer ${key}` } };
}
