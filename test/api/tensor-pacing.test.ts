// P2P_TENSOR_BYTES_PER_SECOND through the real coordinator and libp2p: a job input by ref past the
// 8 MiB burst reaches the agent no faster than the configured pace, intact, and the job completes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededValues } from '@gpumesh/compute';
import { decodeTensor, encodeNpy, NPY_MEDIA_TYPE, type TensorWire } from '@gpumesh/protocol';
import { api, jobCompleted, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { pollUntil } from '../helpers/poll.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';

const MIB = 1024 * 1024;
/** The pace under test: 2 MiB past the burst take 4 s, unpaced the whole job took 1.8 s. */
const PACE = MIB / 2;

describe('tensors over libp2p are paced (P2P_TENSOR_BYTES_PER_SECOND; real PostgreSQL, Redis, libp2p)', () => {
  let c: TestCoordinator;
  let agent: FakeAgent | undefined;
  beforeAll(async () => {
    c = await startTestCoordinator({
      MAX_TENSOR_UPLOAD_BYTES: String(16 * MIB),
      P2P_TENSOR_BYTES_PER_SECOND: String(PACE),
    });
  });
  afterAll(async () => {
    await agent?.stop();
    await c?.close();
  });

  it('serves a 10 MiB input at the pace past its 8 MiB burst, and the job still completes correctly', async () => {
    agent = await startFakeAgent(c.url, { pricePerUnit: '1' });
    await pollUntil(
      'a provider',
      async () => ((await api<unknown[]>(c.url, 'GET', '/v1/providers')).body.length >= 1 ? true : undefined),
      20_000,
    );
    const [m, k, n] = [1280, 2048, 2]; // a: 10 MiB, b: 16 KiB
    const a = seededValues(m * k, 1);
    const b = seededValues(k * n, 2);
    const refs: string[] = [];
    for (const [values, shape] of [
      [a, [m, k]],
      [b, [k, n]],
    ] as const) {
      const res = await fetch(`${c.url}/v1/tensors`, {
        method: 'POST',
        headers: { authorization: `Bearer ${c.devKey}`, 'content-type': NPY_MEDIA_TYPE },
        body: encodeNpy('float32', [...shape], new Uint8Array(values.buffer)),
      });
      expect(res.status).toBe(201);
      refs.push(((await res.json()) as { ref: string }).ref);
    }
    const started = performance.now();
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: {
        kind: 'matmul',
        version: 1,
        maxPricePerUnit: '10',
        inputs: [
          { name: 'a', ref: refs[0] },
          { name: 'b', ref: refs[1] },
        ],
      },
    });
    expect(job.status).toBe(201);
    await jobCompleted(c.url, c.devKey, job.body.id);
    // both inputs pass one bucket: (10 MiB + 16 KiB - 8 MiB burst) / 512 KiB/s ≥ 4 s before the agent
    // has them all (unpaced, submit to completion took 1.8 s here)
    const paceMs = ((m * k + k * n) * 4 - 8 * MIB) / (PACE / 1000);
    const elapsedMs = performance.now() - started;
    console.log(`submit to completion ${Math.round(elapsedMs)} ms (paced: at least ${Math.round(paceMs)})`);
    expect(elapsedMs).toBeGreaterThanOrEqual(paceMs - 50);

    const out = await api<TensorWire>(c.url, 'GET', `/v1/jobs/${job.body.id}/outputs/c`, {
      key: c.devKey,
      headers: { accept: 'application/json' },
    });
    expect(out.status).toBe(200);
    const product = decodeTensor(out.body);
    expect(product.shape).toEqual([m, n]);
    for (const i of [0, 1, 777, m - 1]) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) sum += a[i * k + p] * b[p * n + j];
        expect(Math.abs(product.values[i * n + j] - sum)).toBeLessThan(1e-3 * (1 + Math.abs(sum)));
      }
    }
  });
});
