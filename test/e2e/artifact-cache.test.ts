// Provider agents keep the model artifacts they fetch within `artifactCacheBytes`
// (apps/provider-agent/src/daemon/artifact-cache.ts): a second job on a model is served from disk, a
// model that does not fit beside the kept one evicts it once its job ended, and `start
// --artifact-cache 0` empties the cache for that run without changing agent.json. A real coordinator
// process (PostgreSQL, Redis, libp2p) serves the models; one real agent process runs every job.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeTensor, encodeTensor, type TensorWire } from '@gpumesh/protocol';
import type { ArtifactCacheStats } from '../../apps/provider-agent/src/daemon/artifact-cache.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { saveLayers } from '../verification/models.js';
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
/** Room for one of the test's models (≈ 16 KiB of weights and its model.json each), not two. */
const BUDGET_BYTES = 24 * 1024;

interface JobBody {
  id: string;
  state: string;
  error: { code: string; message: string } | null;
}

/** A dense 4 → 512 → 3 model; `name` makes its topology, and so its hash, its own. */
function denseModel(name: string): tf.LayersModel {
  const model = tf.sequential({ name });
  model.add(tf.layers.dense({ inputShape: [4], units: 512, activation: 'relu', name: `${name}-hidden` }));
  model.add(tf.layers.dense({ units: 3, activation: 'softmax', name: `${name}-probs` }));
  return model;
}

describe('e2e: a provider agent keeps the models it fetches within its budget', () => {
  let db: TestDatabase;
  let dir: string;
  let dataDir: string;
  let coordinator: Started;
  let agent: Started | undefined;
  let url: string;
  let key: string;
  const env = { ...process.env, GPUMESH_AGENT_PASSPHRASE: PASSPHRASE };
  const models = { a: denseModel('model_a'), b: denseModel('model_b') };
  const hashes = { a: '', b: '' };
  const xs = Float32Array.from({ length: 6 * 4 }, (_, i) => Math.sin(i));

  const uploadModel = async (model: tf.LayersModel): Promise<string> => {
    const { modelJson, weights } = await saveLayers(model);
    const res = await api<{ hash: string }>(url, 'POST', '/v1/artifacts', {
      key,
      body: { format: 'layers', modelJson, weights: Buffer.from(weights).toString('base64') },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.hash;
  };

  /** Runs inference of `which` on `xs` and checks the result against tfjs in this process. */
  const infer = async (which: 'a' | 'b'): Promise<void> => {
    const job = await api<JobBody>(url, 'POST', '/v1/jobs', {
      key,
      body: {
        version: 1,
        kind: 'inference',
        inputs: [encodeTensor('features', 'float32', [6, 4], xs)],
        model: { hash: hashes[which], format: 'layers' },
        maxPricePerUnit: '5',
      },
    });
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    const done = await pollUntil(
      `job ${job.body.id}`,
      async () => {
        const res = await api<JobBody>(url, 'GET', `/v1/jobs/${job.body.id}`, { key });
        return isTerminal(res.body.state) ? res.body : undefined;
      },
      90_000,
    );
    expect(done.state, JSON.stringify(done.error)).toBe('COMPLETED');
    const res = await api<{ result: { outputs: TensorWire[] } }>(
      url,
      'GET',
      `/v1/jobs/${job.body.id}/result`,
      {
        key,
      },
    );
    const got = decodeTensor(res.body.result.outputs[0]).values as Float32Array;
    const expected = tf.tidy(() => (models[which].predict(tf.tensor2d(xs, [6, 4])) as tf.Tensor).dataSync());
    expect(got.length).toBe(expected.length);
    for (let i = 0; i < got.length; i++) expect(got[i]).toBeCloseTo(expected[i], 4);
  };

  /** The agent's artifact cache figures from `gpumesh-agent status --json`, once `ready` holds of them. */
  const cacheStats = (ready: (s: ArtifactCacheStats) => boolean): Promise<ArtifactCacheStats> => {
    let last: ArtifactCacheStats | undefined;
    return pollUntil(
      'the agent status',
      async () => {
        const out = await runProcess(AGENT_MAIN, ['status', '--data-dir', dataDir, '--json'], env);
        last = (JSON.parse(out) as { artifactCache: ArtifactCacheStats }).artifactCache;
        return ready(last) ? last : undefined;
      },
      15_000,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; last: ${JSON.stringify(last)}`);
    });
  };

  const kept = async (): Promise<string[]> => (await readdir(join(dataDir, 'artifacts'))).sort();

  const startAgent = (extra: string[] = []): Promise<Started> =>
    startProcess(
      AGENT_MAIN,
      ['start', '--data-dir', dataDir, '--log-level', 'debug', ...extra],
      env,
      /gpumesh-agent ready: peer (\S+)/,
    );

  const waitForProvider = (): Promise<true> =>
    pollUntil(
      'the provider',
      async () => ((await api<unknown[]>(url, 'GET', '/v1/providers')).body.length > 0 ? true : undefined),
      60_000,
    );

  beforeAll(async () => {
    assertBuilt();
    await tf.setBackend('cpu');
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'gpumesh-e2e-acache-'));
    ({ coordinator, url, key } = await startDevCoordinator({
      dataDir: join(dir, 'coordinator'),
      databaseUrl: db.url,
      queuePrefix: `e2eac${randomBytes(4).toString('hex')}`,
      // the agent is new (on probation): its results are held until the coordinator's reference agrees
      env: { REFERENCE_WORK_BUDGET: '200000' },
    }));
    dataDir = join(dir, 'agent');
    await initAgent(url, dataDir, env, ['--artifact-cache', `${BUDGET_BYTES / 1024}KiB`]);
    agent = await startAgent();
    await waitForProvider();
    [hashes.a, hashes.b] = await Promise.all([uploadModel(models.a), uploadModel(models.b)]);
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await coordinator?.stop();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the second job on a model from disk, and evicts it for another model once its jobs ended', async () => {
    const config = JSON.parse(await readFile(join(dataDir, 'agent.json'), 'utf8')) as {
      artifactCacheBytes: number;
    };
    expect(config.artifactCacheBytes).toBe(BUDGET_BYTES);

    await infer('a');
    await infer('a');
    const afterA = await cacheStats((s) => s.hits === 1);
    expect(afterA).toMatchObject({ budgetBytes: BUDGET_BYTES, misses: 1, hits: 1, entries: 1, evictions: 0 });
    expect(await kept()).toEqual([`${hashes.a}.bin`, `${hashes.a}.json`]);

    await infer('b');
    const afterB = await cacheStats((s) => s.misses === 2);
    expect(afterB).toMatchObject({ misses: 2, hits: 1, entries: 1, evictions: 1 });
    expect(afterB.bytes).toBeLessThanOrEqual(BUDGET_BYTES);
    expect(await kept()).toEqual([`${hashes.b}.bin`, `${hashes.b}.json`]);
    expect(agent?.output()).toContain('artifact cache eviction');

    const human = await runProcess(AGENT_MAIN, ['status', '--data-dir', dataDir], env);
    expect(human).toMatch(
      / {2}model cache {2}1 hit\(s\), 2 miss\(es\), .* 1 model\(s\), .* of 24\.0 KiB; 1 evicted/,
    );
  }, 180_000);

  it('keeps nothing for a run started with --artifact-cache 0, and leaves agent.json as it was', async () => {
    await agent?.stop();
    agent = await startAgent(['--artifact-cache', '0']);
    expect(await kept()).toEqual([]);
    await waitForProvider();
    await infer('b');
    expect(await cacheStats((s) => s.misses === 1)).toMatchObject({ budgetBytes: 0, entries: 0, hits: 0 });
    expect(await kept()).toEqual([]);
    const config = JSON.parse(await readFile(join(dataDir, 'agent.json'), 'utf8')) as {
      artifactCacheBytes: number;
    };
    expect(config.artifactCacheBytes).toBe(BUDGET_BYTES);
  }, 180_000);
});
