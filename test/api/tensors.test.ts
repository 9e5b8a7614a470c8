import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { ArtifactError, createGpumeshNode, fetchTensor } from '@gpumesh/p2p';
import {
  decodeNpy,
  decodeTensor,
  encodeNpy,
  encodeTensor,
  hashSpec,
  NPY_MEDIA_TYPE,
  type JobSpec,
  type TensorWire,
} from '@gpumesh/protocol';
import { GpumeshApiError, GpumeshClient } from '@gpumesh/sdk';
import { plainHttpRequest } from '../../libs/sdk/src/plain-http.js';
import { api, jobCompleted, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { fundedDeveloper } from '../helpers/accounts.js';
import { pollUntil } from '../helpers/poll.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';

interface UploadedTensor {
  ref: string;
  dtype: string;
  shape: number[];
  bytes: number;
}

function floats(n: number, seed: number): Float32Array {
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = (((i * 7919 + seed * 104729) % 1000) - 500) / 250;
  return values;
}

function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

async function upload(
  c: TestCoordinator,
  key: string,
  body: Uint8Array,
  contentType: string,
  query = '',
): Promise<{ status: number; body: UploadedTensor & { error?: { code: string; message: string } } }> {
  const res = await fetch(`${c.url}/v1/tensors${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': contentType },
    body,
  });
  return {
    status: res.status,
    body: (await res.json()) as UploadedTensor & { error?: { code: string; message: string } },
  };
}

/** float64 reference of a row-major m×k times k×n product. */
function matmul64(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p];
      for (let j = 0; j < n; j++) c[i * n + j] += x * b[p * n + j];
    }
  return c;
}

describe('tensors as binary: POST /v1/tensors, jobs by ref, outputs as .npy (real PostgreSQL, Redis, libp2p)', () => {
  let c: TestCoordinator;
  let agent: FakeAgent | undefined;
  beforeAll(async () => {
    c = await startTestCoordinator({
      MAX_TENSOR_UPLOAD_BYTES: String(1024 * 1024),
      OFFER_ACCEPT_TIMEOUT_MS: '3000',
    });
  });
  afterAll(async () => {
    await agent?.stop();
    await c?.close();
  });

  it('stores a .npy upload under the sha256 of its element bytes and streams it back', async () => {
    const values = floats(6, 1);
    const res = await upload(c, c.devKey, encodeNpy('float32', [2, 3], bytesOf(values)), NPY_MEDIA_TYPE);
    expect(res.status).toBe(201);
    const sha = createHash('sha256').update(bytesOf(values)).digest('hex');
    expect(res.body).toMatchObject({ ref: `sha256:${sha}`, dtype: 'float32', shape: [2, 3], bytes: 24 });

    const again = await upload(c, c.devKey, encodeNpy('float32', [2, 3], bytesOf(values)), NPY_MEDIA_TYPE);
    expect(again.status).toBe(200);

    const download = await fetch(`${c.url}/v1/tensors/${res.body.ref}`, {
      headers: { authorization: `Bearer ${c.devKey}` },
    });
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toContain(NPY_MEDIA_TYPE);
    const npy = decodeNpy(new Uint8Array(await download.arrayBuffer()));
    expect(npy.shape).toEqual([2, 3]);
    expect(Array.from(new Float32Array(npy.data.slice().buffer))).toEqual(Array.from(values));

    const meta = await api<UploadedTensor>(c.url, 'GET', `/v1/tensors/${res.body.ref}`, {
      key: c.devKey,
      headers: { accept: 'application/json' },
    });
    expect(meta.body).toMatchObject({ ref: res.body.ref, bytes: 24 });
  });

  it("answers in a way the SDK's direct socket path takes: an upload sent once, downloads read whole, errors as API errors", async () => {
    const values = floats(64 * 1024, 3);
    const npy = encodeNpy('float32', [256, 256], bytesOf(values));
    const headers = { authorization: `Bearer ${c.devKey}` };
    // the coordinator's answers as plainHttpRequest sees them: none left to fetch (that would send an upload twice)
    const uploaded = await plainHttpRequest(new URL('/v1/tensors', c.url), {
      method: 'POST',
      headers: { ...headers, 'content-type': NPY_MEDIA_TYPE },
      body: npy,
    });
    if (uploaded.kind !== 'answer') throw new Error(`left to fetch: ${uploaded.reason}`);
    expect(uploaded.status).toBe(201);
    const { ref } = (await new Response(uploaded.body).json()) as UploadedTensor;
    const download = await plainHttpRequest(new URL(`/v1/tensors/${ref}`, c.url), { headers });
    if (download.kind !== 'answer') throw new Error(`left to fetch: ${download.reason}`);
    expect([download.status, download.bytes]).toEqual([200, npy.byteLength]);
    expect(Buffer.from(await new Response(download.body).arrayBuffer()).equals(npy)).toBe(true);

    // and through the client: the same bytes back; a missing ref and a too big tensor as API errors
    const client = new GpumeshClient({ baseUrl: c.url, apiKey: c.devKey });
    expect(await client.uploadNpy(npy)).toMatchObject({ ref, bytes: values.byteLength });
    expect(Buffer.from(await client.tensorNpy(ref)).equals(npy)).toBe(true);
    const missing = await client.tensorNpy(`sha256:${'0'.repeat(64)}`).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(GpumeshApiError);
    expect((missing as GpumeshApiError).statusCode).toBe(404);
    const tooBig = await client
      .uploadTensor(new Float32Array(300 * 1024), [300, 1024])
      .catch((e: unknown) => e);
    expect(tooBig).toBeInstanceOf(GpumeshApiError);
    expect((tooBig as GpumeshApiError).statusCode).toBe(413);
  });

  it('takes raw little-endian bytes with dtype and shape in the query', async () => {
    const values = new Int32Array([1, -2, 3, -4]);
    const res = await upload(
      c,
      c.devKey,
      new Uint8Array(values.buffer),
      'application/octet-stream',
      '?dtype=int32&shape=2,2',
    );
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ dtype: 'int32', shape: [2, 2], bytes: 16 });
    const missingShape = await upload(
      c,
      c.devKey,
      new Uint8Array(values.buffer),
      'application/octet-stream',
      '?dtype=int32',
    );
    expect(missingShape.status).toBe(400);
    expect(missingShape.body.error?.message).toContain('shape');
  });

  it('refuses a bad .npy (400 naming the problem), a short body, a big tensor (413) and other media types (415)', async () => {
    const notNpy = await upload(c, c.devKey, new TextEncoder().encode('hello, world'), NPY_MEDIA_TYPE);
    expect(notNpy.status).toBe(400);
    expect(notNpy.body.error?.message).toContain('\\x93NUMPY');

    const whole = encodeNpy('float32', [4, 4], bytesOf(floats(16, 2)));
    const short = await upload(c, c.devKey, whole.subarray(0, whole.length - 8), NPY_MEDIA_TYPE);
    expect(short.status).toBe(400);
    expect(short.body.error?.message).toContain('needs 64');

    const big = encodeNpy('float32', [1024, 257], new Uint8Array(1024 * 257 * 4));
    const tooLarge = await upload(c, c.devKey, big, NPY_MEDIA_TYPE);
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.error?.message).toContain('MAX_TENSOR_UPLOAD_BYTES');

    const text = await upload(c, c.devKey, whole, 'text/plain');
    expect(text.status).toBe(415);

    const anonymous = await fetch(`${c.url}/v1/tensors`, {
      method: 'POST',
      headers: { 'content-type': NPY_MEDIA_TYPE },
      body: big,
    });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('connection')).toBe('close');
    // the connection of a refused upload is not reused with its body half read
    expect((await api(c.url, 'GET', '/v1/account', { key: c.devKey })).status).toBe(200);
  });

  it("refuses someone else's ref, by field, at submit", async () => {
    const other = await fundedDeveloper(c, 10n ** 12n);
    const mine = await upload(
      c,
      c.devKey,
      encodeNpy('float32', [2, 2], bytesOf(floats(4, 3))),
      NPY_MEDIA_TYPE,
    );
    const res = await api<{ error: { code: string; message: string } }>(c.url, 'POST', '/v1/jobs', {
      key: other.key,
      body: {
        kind: 'matmul',
        version: 1,
        maxPricePerUnit: '1',
        inputs: [
          { name: 'a', ref: mine.body.ref },
          { name: 'b', ref: mine.body.ref },
        ],
      },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('inputs[0].ref');
    const download = await fetch(`${c.url}/v1/tensors/${mine.body.ref}`, {
      headers: { authorization: `Bearer ${other.key}` },
    });
    expect(download.status).toBe(404);
  });

  it('knows from the upload whether float32 bytes are finite: NaN refused at submit, finite ones not read again', async () => {
    const db = new pg.Client({ connectionString: c.databaseUrl });
    await db.connect();
    try {
      const finiteOf = async (ref: string): Promise<boolean | null> =>
        (
          await db.query<{ finite: boolean | null }>('SELECT finite FROM "Tensor" WHERE sha256 = $1', [
            ref.slice('sha256:'.length),
          ])
        ).rows[0].finite;
      const submit = (a: string, b: string) =>
        api<{ id?: string; error?: { code: string; message: string } }>(c.url, 'POST', '/v1/jobs', {
          key: c.devKey,
          body: {
            kind: 'matmul',
            version: 1,
            maxPricePerUnit: '1',
            inputs: [
              { name: 'a', ref: a },
              { name: 'b', ref: b },
            ],
          },
        });
      const good = floats(64 * 64, 11);
      const bad = floats(64 * 64, 12);
      bad[4000] = Number.NaN;
      const goodRef = (
        await upload(c, c.devKey, encodeNpy('float32', [64, 64], bytesOf(good)), NPY_MEDIA_TYPE)
      ).body.ref;
      const badRef = (await upload(c, c.devKey, encodeNpy('float32', [64, 64], bytesOf(bad)), NPY_MEDIA_TYPE))
        .body.ref;
      const intRef = (
        await upload(
          c,
          c.devKey,
          new Uint8Array(new Int32Array(16).buffer),
          'application/octet-stream',
          '?dtype=int32&shape=4,4',
        )
      ).body.ref;
      expect([await finiteOf(goodRef), await finiteOf(badRef), await finiteOf(intRef)]).toEqual([
        true,
        false,
        null,
      ]);

      const refused = await submit(goodRef, badRef);
      expect(refused.status).toBe(400);
      expect(refused.body.error?.message).toBe(
        'inputs[1].ref: element 4000 is NaN; job inputs must be finite numbers (NaN and Infinity are refused)',
      );
      // checked at upload: the file is not read for it again (a NaN written into it now goes unseen
      // until an agent's kernel or the result checks meet it; the hash still names the upload's bytes)
      const path = join(c.config.DATA_DIR, 'tensors', goodRef.slice('sha256:'.length));
      const stored = await readFile(path);
      const tampered = Buffer.from(stored);
      tampered.writeFloatLE(Number.NaN, 0);
      await writeFile(path, tampered);
      const accepted = [await submit(goodRef, goodRef)];
      expect(accepted[0].status).toBe(201);
      await writeFile(path, stored);
      // a row from before the check (finite unknown) is read at submit, then marked
      await db.query('UPDATE "Tensor" SET finite = NULL WHERE sha256 = $1', [
        goodRef.slice('sha256:'.length),
      ]);
      accepted.push(await submit(goodRef, goodRef));
      expect(accepted[1].status).toBe(201);
      // no agent has run them yet: cancelled, so none meets the deleted file below
      for (const job of accepted) {
        expect((await api(c.url, 'POST', `/v1/jobs/${job.body.id}/cancel`, { key: c.devKey })).status).toBe(
          200,
        );
      }
      expect(await finiteOf(goodRef)).toBe(true);
      // bytes gone: refused at submit whatever the check said
      await rm(path);
      const gone = await submit(goodRef, goodRef);
      expect(gone.status).toBe(400);
      expect(gone.body.error?.message).toMatch(
        /inputs\[0\]\.ref: the bytes of sha256:[0-9a-f]{64} are gone; upload it again/,
      );
    } finally {
      await db.end();
    }
  });

  it('runs a matmul whose inputs are refs; GET job has no input data; the output comes as .npy equal to the JSON form', async () => {
    agent = await startFakeAgent(c.url, { pricePerUnit: '1' });
    await pollUntil(
      'a provider',
      async () => {
        const res = await api<unknown[]>(c.url, 'GET', '/v1/providers');
        return res.body.length >= 1 ? true : undefined;
      },
      20_000,
    );
    const [m, k, n] = [24, 16, 8];
    const a = floats(m * k, 4);
    const b = floats(k * n, 5);
    const ra = await upload(c, c.devKey, encodeNpy('float32', [m, k], bytesOf(a)), NPY_MEDIA_TYPE);
    const rb = await upload(c, c.devKey, encodeNpy('float32', [k, n], bytesOf(b)), NPY_MEDIA_TYPE);
    const job = await api<{ id: string; state: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: {
        kind: 'matmul',
        version: 1,
        maxPricePerUnit: '10',
        inputs: [
          { name: 'a', ref: ra.body.ref },
          { name: 'b', ref: rb.body.ref },
        ],
      },
    });
    expect(job.status).toBe(201);

    const detail = await api<{ spec: { inputs: Record<string, unknown>[] } }>(
      c.url,
      'GET',
      `/v1/jobs/${job.body.id}`,
      {
        key: c.devKey,
      },
    );
    // the stored spec keeps the refs (no base64 in the job row)
    expect(detail.body.spec.inputs).toEqual([
      { name: 'a', dtype: 'float32', shape: [m, k], bytes: m * k * 4, ref: ra.body.ref },
      { name: 'b', dtype: 'float32', shape: [k, n], bytes: k * n * 4, ref: rb.body.ref },
    ]);

    await jobCompleted(c.url, c.devKey, job.body.id);

    const json = await api<TensorWire>(c.url, 'GET', `/v1/jobs/${job.body.id}/outputs/c`, {
      key: c.devKey,
      headers: { accept: 'application/json' },
    });
    expect(json.status).toBe(200);
    const fromJson = decodeTensor(json.body);
    expect(fromJson.shape).toEqual([m, n]);
    const reference = matmul64(a, b, m, k, n);
    fromJson.values.forEach((v, i) => expect(Math.abs(v - reference[i])).toBeLessThan(1e-3));

    const npyRes = await fetch(`${c.url}/v1/jobs/${job.body.id}/outputs/c`, {
      headers: { authorization: `Bearer ${c.devKey}` },
    });
    expect(npyRes.status).toBe(200);
    const npy = decodeNpy(new Uint8Array(await npyRes.arrayBuffer()));
    expect(npy.dtype).toBe('float32');
    expect(npy.shape).toEqual([m, n]);
    expect(Buffer.from(npy.data).equals(Buffer.from(json.body.data, 'base64'))).toBe(true);

    const missing = await api(c.url, 'GET', `/v1/jobs/${job.body.id}/outputs/nope`, { key: c.devKey });
    expect(missing.status).toBe(404);

    // the offer carried the refs, not the bytes: the agent fetched them (and checked their sha256)
    const offered = agent.offeredSpecs.at(-1);
    expect(offered?.inputs.map((t) => ('data' in t ? 'inline' : t.ref))).toEqual([ra.body.ref, rb.body.ref]);
    expect(hashSpec(offered as JobSpec)).toBe(
      hashSpec({
        ...(offered as JobSpec),
        inputs: [encodeTensor('a', 'float32', [m, k], a), encodeTensor('b', 'float32', [k, n], b)],
      }),
    );

    // Only a peer holding an open offer of a job that uses the tensor may fetch it from the
    // coordinator: not an unrelated peer, and not the agent once its offer is over.
    const network = (await (await fetch(`${c.url}/v1/network`)).json()) as {
      peers: { peerId: string; multiaddrs: string[] }[];
    };
    const coordinator = network.peers[0];
    const stranger = await createGpumeshNode({ listen: [], bootstrap: coordinator.multiaddrs });
    try {
      await pollUntil(
        'the stranger connected',
        async () => (stranger.getPeers().some((p) => p.toString() === coordinator.peerId) ? true : undefined),
        10_000,
      );
      const expected = { sha256: ra.body.ref.slice('sha256:'.length), bytes: m * k * 4 };
      for (const peer of [stranger, agent.node]) {
        const refused = await fetchTensor(peer, coordinator.peerId, expected).catch((err: unknown) => err);
        expect(refused).toBeInstanceOf(ArtifactError);
        expect((refused as ArtifactError).code).toBe('FORBIDDEN');
      }
    } finally {
      await stranger.stop();
    }
  });
});
