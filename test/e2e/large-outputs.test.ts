// Outputs by ref (issue 21 part 2): outputs over the agent's inline threshold travel to the
// coordinator as binary chunks over the artifact protocol (`put-tensor`), land in its tensor store,
// and the result names them by ref. A real coordinator process (PostgreSQL, Redis, libp2p) and two
// real agent processes whose threshold is lowered to 4 KiB, so small matmuls exercise the path.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeNpy,
  decodeTensor,
  encodeTensor,
  parseJobSpec,
  tensorView,
  type TensorRef,
} from '@gpumesh/protocol';
import { GpumeshClient, decodeTensor as decodeSdkTensor, type JobSubmission } from '@gpumesh/sdk';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { api } from '../helpers/coordinator.js';
import { fundedDeveloper } from '../helpers/accounts.js';
import { matmulSpec } from '../helpers/specs.js';
import { referenceMatmul } from '../helpers/fake-agent.js';
import {
  AGENT_MAIN,
  assertBuilt,
  runProcess,
  startDevCoordinator,
  startProcess,
  type Started,
} from '../helpers/processes.js';
import { pollUntil, query } from '../helpers/poll.js';
import { runPython } from '../helpers/python.js';
import { isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';

const PASSPHRASE = 'e2e-test-passphrase';
/** The agents' inline threshold here: a 48×40 float32 product (7680 bytes) goes by ref. */
const INLINE_OUTPUT_MAX_BYTES = 4096;

interface JobBody {
  id: string;
  state: string;
  error: { code: string; message: string } | null;
}

interface ResultBody {
  jobId: string;
  resultHash: string;
  result: {
    outputs: (TensorRef | { name: string; data: string })[];
    verification?: { method?: string; verified?: boolean };
  };
}

/** ‖actual − expected‖₂ / ‖expected‖₂. */
function relativeL2(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < actual.length; i++) {
    diff += (actual[i] - expected[i]) ** 2;
    norm += expected[i] ** 2;
  }
  return Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-12);
}

describe('e2e: outputs over the inline threshold come back by ref', () => {
  let db: TestDatabase;
  let dir: string;
  let coordinator: Started;
  let url: string;
  let key: string;
  const agents: Started[] = [];

  const finished = (id: string): Promise<JobBody> =>
    pollUntil(
      `job ${id}`,
      async () => {
        const res = await api<JobBody>(url, 'GET', `/v1/jobs/${id}`, { key });
        return isTerminal(res.body.state) ? res.body : undefined;
      },
      90_000,
    );

  const startAgent = async (n: number): Promise<void> => {
    const dataDir = join(dir, `agent-${n}`);
    const env = { ...process.env, GPUMESH_AGENT_PASSPHRASE: PASSPHRASE };
    await runProcess(
      AGENT_MAIN,
      [
        'init',
        '--coordinator',
        url,
        '--data-dir',
        dataDir,
        '--light-kdf',
        '--slots',
        '1',
        '--backend',
        'wasm',
      ],
      env,
    );
    const configPath = join(dataDir, 'agent.json');
    const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
    await writeFile(configPath, JSON.stringify({ ...config, inlineOutputMaxBytes: INLINE_OUTPUT_MAX_BYTES }));
    agents.push(
      await startProcess(
        AGENT_MAIN,
        ['start', '--data-dir', dataDir, '--log-level', 'warn'],
        env,
        /gpumesh-agent ready: peer (\S+)/,
      ),
    );
  };

  beforeAll(async () => {
    assertBuilt();
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'gpumesh-e2e-outputs-'));
    ({ coordinator, url, key } = await startDevCoordinator({
      dataDir: join(dir, 'coordinator'),
      databaseUrl: db.url,
      queuePrefix: `e2eout${randomBytes(4).toString('hex')}`,
      // new agents are on probation: a single-copy result is held until the coordinator's
      // reference (within this budget) agrees with the output it reads back from its store
      env: { REFERENCE_WORK_BUDGET: '200000' },
    }));
    await Promise.all([startAgent(1), startAgent(2)]);
    await pollUntil(
      'two providers',
      async () => {
        const res = await api<unknown[]>(url, 'GET', '/v1/providers');
        return res.body.length >= 2 ? true : undefined;
      },
      60_000,
    );
  }, 120_000);

  afterAll(async () => {
    for (const agent of agents) await agent.stop();
    await coordinator?.stop();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Submits a matmul, waits for it and checks its output by ref end to end. */
  const runByRef = async (redundancy: number): Promise<ResultBody> => {
    const spec = { ...matmulSpec(48, 40, 40, '5'), redundancy };
    const job = await api<JobBody>(url, 'POST', '/v1/jobs', { key, body: spec });
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    const done = await finished(job.body.id);
    expect(done.state, JSON.stringify(done.error)).toBe('COMPLETED');
    const res = await api<ResultBody>(url, 'GET', `/v1/jobs/${job.body.id}/result`, { key });
    expect(res.status).toBe(200);
    const [c] = res.body.result.outputs;
    // the result names the output by ref: no base64 in it
    expect(c).toMatchObject({ name: 'c', dtype: 'float32', shape: [48, 40] });
    expect('data' in c).toBe(false);
    const ref = c as TensorRef;
    expect(ref.ref).toBe(`sha256:${ref.sha256}`);

    // the .npy download streams the stored bytes, byte-exact with the ref's hash
    const npy = await fetch(`${url}/v1/jobs/${job.body.id}/outputs/c`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(npy.status).toBe(200);
    expect(npy.headers.get('content-type')).toContain('application/x-npy');
    const body = new Uint8Array(await npy.arrayBuffer());
    const decoded = decodeNpy(body);
    expect(decoded.dtype).toBe('float32');
    expect(decoded.shape).toEqual([48, 40]);
    expect(decoded.data.byteLength).toBe(48 * 40 * 4);
    expect(createHash('sha256').update(decoded.data).digest('hex')).toBe(ref.sha256);

    // right within float tolerance of the reference product
    const aligned = new Uint8Array(decoded.data); // a copy at offset 0: float32-aligned
    const values = tensorView('c', 'float32', [48, 40], aligned).values as Float32Array;
    const reference = decodeTensor(referenceMatmul(parseJobSpec(spec))[0]).values as Float32Array;
    expect(relativeL2(values, reference)).toBeLessThan(1e-4);

    // and as JSON on request: the same bytes, base64
    const json = await api<{ name: string; data: string }>(url, 'GET', `/v1/jobs/${job.body.id}/outputs/c`, {
      key,
      headers: { accept: 'application/json' },
    });
    expect(json.status).toBe(200);
    expect(json.body).toEqual(encodeTensor('c', 'float32', [48, 40], values));
    return res.body;
  };

  it('runs a single-copy matmul: its output comes back by ref and passes the reference check', async () => {
    const body = await runByRef(1);
    // probation: held until the coordinator's reference agreed with the output read back
    expect(body.result.verification).toMatchObject({ method: 'reference', verified: true });
  }, 120_000);

  it("chains jobs: a job's output by ref is its account's input of a later job, nobody else's", async () => {
    // inputs of its own (other tests' products have other bytes, so this row is this job's)
    const a1 = Float32Array.from({ length: 48 * 40 }, (_, i) => ((i % 23) - 11) / 13);
    const b1 = Float32Array.from({ length: 40 * 40 }, (_, i) => ((i % 19) - 9) / 11);
    const firstSpec = {
      ...matmulSpec(1, 1, 1, '5'),
      inputs: [encodeTensor('a', 'float32', [48, 40], a1), encodeTensor('b', 'float32', [40, 40], b1)],
    };
    const submitted = await api<JobBody>(url, 'POST', '/v1/jobs', { key, body: firstSpec });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(201);
    const firstDone = await finished(submitted.body.id);
    expect(firstDone.state, JSON.stringify(firstDone.error)).toBe('COMPLETED');
    const first = (await api<ResultBody>(url, 'GET', `/v1/jobs/${submitted.body.id}/result`, { key })).body;
    const c = first.result.outputs[0] as TensorRef;
    expect(c).toMatchObject({ name: 'c', dtype: 'float32', shape: [48, 40] });
    // the output is its account's tensor now, marked with the job (it goes with the job)
    const rows = await query<{ jobId: string | null; bytes: string }>(
      db.url,
      'SELECT "jobId"::text AS "jobId", bytes::text AS bytes FROM "Tensor" WHERE sha256 = $1',
      [c.sha256],
    );
    expect(rows).toEqual([{ jobId: first.jobId, bytes: String(48 * 40 * 4) }]);
    // ... shown like an upload
    const meta = await api<{ ref: string; dtype: string; shape: number[]; bytes: number }>(
      url,
      'GET',
      `/v1/tensors/${c.ref}`,
      { key, headers: { accept: 'application/json' } },
    );
    expect(meta.status).toBe(200);
    expect(meta.body).toMatchObject({ ref: c.ref, dtype: 'float32', shape: [48, 40], bytes: 48 * 40 * 4 });

    // ... and named by ref in a later job, without downloading it: (a · b) · b2
    const b2 = Float32Array.from({ length: 40 * 24 }, (_, i) => ((i % 9) - 4) / 7);
    const chained = {
      ...matmulSpec(1, 1, 1, '5'),
      inputs: [{ name: 'a', ref: c.ref }, encodeTensor('b', 'float32', [40, 24], b2)],
    };
    const job = await api<JobBody>(url, 'POST', '/v1/jobs', { key, body: chained });
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    const done = await finished(job.body.id);
    expect(done.state, JSON.stringify(done.error)).toBe('COMPLETED');
    const npy = await fetch(`${url}/v1/jobs/${job.body.id}/outputs/c`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(npy.status).toBe(200);
    const got = decodeNpy(new Uint8Array(await npy.arrayBuffer()));
    expect(got.shape).toEqual([48, 24]);
    const cBytes = await fetch(`${url}/v1/jobs/${first.jobId}/outputs/c`, {
      headers: { authorization: `Bearer ${key}` },
    });
    const cValues = tensorView(
      'a',
      'float32',
      [48, 40],
      new Uint8Array(decodeNpy(new Uint8Array(await cBytes.arrayBuffer())).data),
    ).values as Float32Array;
    const expected = decodeTensor(
      referenceMatmul(
        parseJobSpec({
          ...chained,
          inputs: [
            encodeTensor('a', 'float32', [48, 40], cValues),
            encodeTensor('b', 'float32', [40, 24], b2),
          ],
        }),
      )[0],
    ).values as Float32Array;
    const values = tensorView('c', 'float32', [48, 24], new Uint8Array(got.data)).values as Float32Array;
    expect(relativeL2(values, expected)).toBeLessThan(1e-4);

    // Another account gets what it gets for a ref that does not exist: no oracle of others' data.
    const other = await fundedDeveloper({ url, databaseUrl: db.url }, 10n ** 12n);
    const unknown = `sha256:${'0'.repeat(64)}`;
    const submitAs = (ref: string) =>
      api<{ error: { code: string; message: string } }>(url, 'POST', '/v1/jobs', {
        key: other.key,
        body: { ...chained, inputs: [{ name: 'a', ref }, chained.inputs[1]] },
      });
    const [theirs, nobodys] = await Promise.all([submitAs(c.ref), submitAs(unknown)]);
    expect(theirs.status).toBe(400);
    expect(nobodys.status).toBe(400);
    expect(theirs.body.error.code).toBe(nobodys.body.error.code);
    expect(theirs.body.error.message.replace(c.ref, '<ref>')).toBe(
      nobodys.body.error.message.replace(unknown, '<ref>'),
    );
    expect(theirs.body.error.message).toMatch(
      /^inputs\[0\]\.ref: no tensor sha256:[0-9a-f]{64} of this account/,
    );
    const [readTheirs, readNobodys] = await Promise.all(
      [c.ref, unknown].map((ref) =>
        api<{ error: { code: string; message: string } }>(url, 'GET', `/v1/tensors/${ref}`, {
          key: other.key,
        }),
      ),
    );
    expect(readTheirs.status).toBe(404);
    expect(readNobodys.status).toBe(404);
    expect(readTheirs.body.error.message.replace(c.ref, '<ref>')).toBe(
      readNobodys.body.error.message.replace(unknown, '<ref>'),
    );
  }, 180_000);

  it('lets the SDK and the Python client upload inputs by ref and read outputs by ref as they read inline ones', async () => {
    const client = new GpumeshClient({ baseUrl: url, apiKey: key });
    const a = Float32Array.from({ length: 48 * 40 }, (_, i) => ((i % 11) - 5) / 8);
    const b = Float32Array.from({ length: 40 * 40 }, (_, i) => ((i % 13) - 6) / 9);
    const [refA, refB] = await Promise.all([
      client.uploadTensor(a, [48, 40]),
      client.uploadTensor(b, [40, 40]),
    ]);
    const spec = {
      ...matmulSpec(1, 1, 1, '5'),
      inputs: [
        { name: 'a', ref: refA.ref },
        { name: 'b', ref: refB.ref },
      ],
    };
    const job = await client.submit(spec as JobSubmission);
    const done = await client.wait(job.id, { timeoutMs: 90_000 });
    expect(done.state, JSON.stringify(done.error)).toBe('COMPLETED');
    const expected = decodeTensor(
      referenceMatmul(
        parseJobSpec({
          ...spec,
          inputs: [encodeTensor('a', 'float32', [48, 40], a), encodeTensor('b', 'float32', [40, 40], b)],
        }),
      )[0],
    ).values as Float32Array;

    // the SDK: the output by ref downloaded as .npy and decoded like an inline one
    const [c] = await client.outputTensors(job.id);
    expect(c).toMatchObject({ name: 'c', dtype: 'float32', shape: [48, 40] });
    expect(relativeL2(decodeSdkTensor(c) as Float32Array, expected)).toBeLessThan(1e-4);

    // the Python client, with NumPy and without: result() downloads the output by ref
    const script = [
      'import json, os, gpumesh',
      'c = gpumesh.Client(os.environ["GPUMESH_URL"], os.environ["GPUMESH_API_KEY"]).result(os.environ["JOB"])["c"]',
      'values = c.flatten().tolist() if hasattr(c, "flatten") else c.values',
      'print(json.dumps({"kind": type(c).__name__, "shape": list(c.shape), "values": values}))',
    ].join('\n');
    for (const numpy of ['1', '0']) {
      const run = await runPython(['-c', script], {
        GPUMESH_URL: url,
        GPUMESH_API_KEY: key,
        JOB: job.id,
        GPUMESH_NUMPY: numpy,
      });
      expect(run.code, run.output).toBe(0);
      const got = JSON.parse(run.output) as { kind: string; shape: number[]; values: number[] };
      expect(got.kind).toBe(numpy === '1' ? 'ndarray' : 'Tensor');
      expect(got.shape).toEqual([48, 40]);
      expect(relativeL2(Float32Array.from(got.values), expected)).toBeLessThan(1e-4);
    }
  }, 120_000);

  it('runs a redundant matmul: both copies are compared from the store and agree', async () => {
    const body = await runByRef(2);
    expect(body.result.verification).toMatchObject({ verified: true });
    expect(['redundant', 'reference']).toContain(body.result.verification?.method);
    // both providers uploaded their copy and were paid for it: two attempts SUCCEEDED
    const rows = await query<{ provider: string }>(
      db.url,
      `SELECT a."providerId" AS provider FROM "JobAttempt" a JOIN "Job" j ON j.id = a."jobId"
        WHERE j.id = $1::uuid AND a.state = 'SUCCEEDED'`,
      [body.jobId],
    );
    expect(new Set(rows.map((r) => r.provider)).size).toBe(2);
  }, 120_000);
});
