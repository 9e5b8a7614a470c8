// Provider agents cache the job inputs by ref they fetch (apps/provider-agent/src/daemon/tensor-cache.ts):
// a second job on the same tensors does not fetch them from the coordinator again, jobs that need a
// tensor at the same time share one fetch, the cache outlives an agent restart, and a corrupted entry
// is fetched again instead of used. A real coordinator process (PostgreSQL, Redis, libp2p) counts what
// it streams (gpumesh_p2p_tensors_served_total); one real agent process runs every job.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeTensor, type TensorWire } from '@gpumesh/protocol';
import type { TensorCacheStats } from '../../apps/provider-agent/src/daemon/tensor-cache.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { api } from '../helpers/coordinator.js';
import {
  AGENT_MAIN,
  assertBuilt,
  initAgent,
  runProcess,
  startDevCoordinator,
  startProcess,
  type Started,
} from '../helpers/processes.js';
import { pollUntil } from '../helpers/poll.js';
import { isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';

const PASSPHRASE = 'e2e-test-passphrase';
const [M, K, N] = [32, 4096, 32];
/** Bytes of each input: a is M×K, b and c are K×N float32 (512 KiB each). */
const INPUT_BYTES = M * K * 4;

interface JobBody {
  id: string;
  state: string;
  error: { code: string; message: string } | null;
}

function fill(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (((i * 7919 + seed * 104_729) % 2001) - 1000) / 1000;
  return out;
}

/** float64 reference of the M×K by K×N product. */
function product(a: Float32Array, b: Float32Array): Float64Array {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let p = 0; p < K; p++) {
      const x = a[i * K + p];
      for (let j = 0; j < N; j++) out[i * N + j] += x * b[p * N + j];
    }
  return out;
}

function relativeL2(actual: Float32Array, expected: Float64Array): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < actual.length; i++) {
    diff += (actual[i] - expected[i]) ** 2;
    norm += expected[i] ** 2;
  }
  return Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-12);
}

describe('e2e: a provider agent caches the tensors it fetches by ref', () => {
  let db: TestDatabase;
  let dir: string;
  let dataDir: string;
  let coordinator: Started;
  let agent: Started | undefined;
  let url: string;
  let key: string;
  const env = { ...process.env, GPUMESH_AGENT_PASSPHRASE: PASSPHRASE };
  const a = fill(M * K, 1);
  const b = fill(K * N, 2);
  const c = fill(K * N, 3);
  const refs: Record<'a' | 'b' | 'c', string> = { a: '', b: '', c: '' };

  const upload = async (values: Float32Array, shape: number[]): Promise<string> => {
    const res = await fetch(`${url}/v1/tensors?dtype=float32&shape=${shape.join(',')}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { ref: string }).ref;
  };

  const submit = async (left: string, right: string): Promise<string> => {
    const job = await api<JobBody>(url, 'POST', '/v1/jobs', {
      key,
      body: {
        kind: 'matmul',
        version: 1,
        maxPricePerUnit: '5',
        inputs: [
          { name: 'a', ref: left },
          { name: 'b', ref: right },
        ],
      },
    });
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    return job.body.id;
  };

  /** The job's product, once it completed, checked against the float64 reference of a × `right`. */
  const expectProduct = async (id: string, right: Float32Array): Promise<void> => {
    const job = await pollUntil(
      `job ${id}`,
      async () => {
        const res = await api<JobBody>(url, 'GET', `/v1/jobs/${id}`, { key });
        return isTerminal(res.body.state) ? res.body : undefined;
      },
      90_000,
    );
    expect(job.state, JSON.stringify(job.error)).toBe('COMPLETED');
    const res = await api<{ result: { outputs: TensorWire[] } }>(url, 'GET', `/v1/jobs/${id}/result`, {
      key,
    });
    const out = res.body.result.outputs[0];
    expect(out.shape).toEqual([M, N]);
    const values = decodeTensor(out).values as Float32Array;
    expect(relativeL2(values, product(a, right))).toBeLessThan(1e-4);
  };

  /** What the coordinator streamed to providers so far: tensors and bytes. */
  const served = async (): Promise<{ tensors: number; bytes: number }> => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const value = (name: string): number => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return {
      tensors: value('gpumesh_p2p_tensors_served_total'),
      bytes: value('gpumesh_p2p_tensor_served_bytes_total'),
    };
  };

  /** The agent's cache figures from `gpumesh-agent status --json`, once `ready` holds of them. */
  const cacheStats = (ready: (s: TensorCacheStats) => boolean): Promise<TensorCacheStats> => {
    let last: TensorCacheStats | undefined;
    return pollUntil(
      'the agent status',
      async () => {
        const out = await runProcess(AGENT_MAIN, ['status', '--data-dir', dataDir, '--json'], env);
        last = (JSON.parse(out) as { tensorCache: TensorCacheStats }).tensorCache;
        return ready(last) ? last : undefined;
      },
      15_000,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; last: ${JSON.stringify(last)}`);
    });
  };

  const startAgent = async (): Promise<Started> =>
    startProcess(
      AGENT_MAIN,
      ['start', '--data-dir', dataDir, '--log-level', 'debug'],
      env,
      /gpumesh-agent ready: peer (\S+)/,
    );

  beforeAll(async () => {
    assertBuilt();
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'gpumesh-e2e-tcache-'));
    ({ coordinator, url, key } = await startDevCoordinator({
      dataDir: join(dir, 'coordinator'),
      databaseUrl: db.url,
      queuePrefix: `e2etc${randomBytes(4).toString('hex')}`,
      // the agent is new (on probation): its results are held until the coordinator's reference agrees
      env: { REFERENCE_WORK_BUDGET: '200000' },
    }));
    dataDir = join(dir, 'agent');
    // room for the three inputs and a little more, set the way an owner would
    await initAgent(url, dataDir, env, ['--tensor-cache', '2MiB']);
    agent = await startAgent();
    await pollUntil(
      'the provider',
      async () => ((await api<unknown[]>(url, 'GET', '/v1/providers')).body.length > 0 ? true : undefined),
      60_000,
    );
    [refs.a, refs.b, refs.c] = await Promise.all([upload(a, [M, K]), upload(b, [K, N]), upload(c, [K, N])]);
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await coordinator?.stop();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('fetches the inputs for the first job and serves the second job on them from its cache', async () => {
    await expectProduct(await submit(refs.a, refs.b), b);
    expect(await served()).toEqual({ tensors: 2, bytes: 2 * INPUT_BYTES });
    await expectProduct(await submit(refs.a, refs.b), b);
    // nothing more streamed: both inputs came from the agent's disk
    expect(await served()).toEqual({ tensors: 2, bytes: 2 * INPUT_BYTES });

    expect(await cacheStats((s) => s.hits === 2)).toMatchObject({
      budgetBytes: 2 * 1024 * 1024,
      entries: 2,
      bytes: 2 * INPUT_BYTES,
      misses: 2,
      hits: 2,
      bytesSaved: 2 * INPUT_BYTES,
    });
    expect(agent?.output()).toContain('tensor cache hit');
  }, 120_000);

  it('fetches a new tensor once for jobs that need it at the same time', async () => {
    const jobs = await Promise.all([submit(refs.a, refs.c), submit(refs.a, refs.c), submit(refs.a, refs.c)]);
    for (const id of jobs) await expectProduct(id, c);
    // c once (shared between the jobs in flight, or from the cache for the later ones), a never
    expect(await served()).toEqual({ tensors: 3, bytes: 3 * INPUT_BYTES });
    const stats = await cacheStats((s) => s.hits + s.sharedFetches + s.misses === 2 + 2 + 6);
    expect(stats).toMatchObject({ misses: 3, entries: 3, bytes: 3 * INPUT_BYTES });
    expect(stats.hits + stats.sharedFetches).toBe(2 + 5);
  }, 120_000);

  it('keeps its cache over a restart and fetches a corrupted entry again instead of using it', async () => {
    await agent?.stop();
    // one flipped bit in b's bytes on disk
    const path = join(dataDir, 'tensors', refs.b.slice('sha256:'.length));
    const bytes = await readFile(path);
    bytes[4321] ^= 0x01;
    await writeFile(path, bytes);
    agent = await startAgent();

    await expectProduct(await submit(refs.a, refs.b), b);
    // b streamed again, a from the disk the agent kept
    expect(await served()).toEqual({ tensors: 4, bytes: 4 * INPUT_BYTES });
    expect(await cacheStats((s) => s.misses === 1)).toMatchObject({
      hits: 1,
      misses: 1,
      dropped: 1,
      entries: 3,
    });
    expect(agent.output()).toContain('corrupt tensor cache entry dropped');
  }, 120_000);
});
