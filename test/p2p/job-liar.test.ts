// A provider that lies on the job protocols, played by a bare libp2p node speaking raw frames:
// accept-then-silence, half frames, oversize results, many oversize streams at once; beside an
// honest agent whose large result arrives slowly and one whose job runs long without progress.
import {
  JOB_BATCH_PROTOCOL_ID,
  JOB_PROTOCOL_ID,
  PROTOCOL_VERSION,
  encodeTensor,
  hashOutputs,
  hashSpec,
  hashTensors,
  parseJobSpec,
  randomNonce,
  signPayload,
  type JobOffer,
  type Signed,
  type TensorWire,
} from '@gpumesh/protocol';
import {
  DATA_FRAME_MAX_BYTES,
  FramedStream,
  JobProtocolError,
  OffersFrameSchema,
  OfferFrameSchema,
  ResultByteBudget,
  createGpumeshNode,
  createOfferVerifier,
  encodeFrame,
  encodeVarint,
  expectedResultFrameBytes,
  handleJobOffers,
  sendJobOffer,
  sendJobOffers,
  type GpumeshNode,
} from '@gpumesh/p2p';
import type { Stream } from '@libp2p/interface';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';

import {
  COORDINATOR_WALLET,
  PROVIDER_WALLET,
  connect,
  resultFor,
  signedOffer,
  stopNodes,
  waitFor,
} from './support.js';

const MIB = 1024 * 1024;
/** The silence window these tests give the coordinator (the default is 20 s). */
const SILENCE_MS = 800;
/** Offers live far longer than the silence window: a TIMEOUT here is silence, not the deadline. */
const DEADLINE_MS = 60_000;

/** A signed offer of an m×1 by 1×n matmul (m·n·4 bytes of output from (m + n)·4 bytes of input). */
async function outerProductOffer(coordinatorPeerId: string, m: number, n: number): Promise<Signed<JobOffer>> {
  const spec = parseJobSpec({
    version: PROTOCOL_VERSION,
    kind: 'matmul',
    inputs: [
      encodeTensor(
        'a',
        'float32',
        [m, 1],
        Float32Array.from({ length: m }, (_, i) => i % 7),
      ),
      encodeTensor(
        'b',
        'float32',
        [1, n],
        Float32Array.from({ length: n }, (_, i) => i % 5),
      ),
    ],
    maxPricePerUnit: '1000',
  });
  const now = Date.now();
  return signPayload(
    'offer',
    {
      version: PROTOCOL_VERSION,
      jobId: randomUUID(),
      attempt: 1,
      spec,
      specHash: hashSpec(spec),
      pricePerUnit: '900',
      workUnits: '1',
      deadlineAt: now + DEADLINE_MS,
      coordinatorPeerId,
      nonce: randomNonce(),
      issuedAt: now,
    },
    COORDINATOR_WALLET,
  );
}

/** The honest `result` frame (body bytes) for `outerProductOffer`, with a receipt that verifies. */
async function honestOuterProductFrame(offer: JobOffer, providerPeerId: string): Promise<Uint8Array> {
  const [a, b] = offer.spec.inputs as TensorWire[];
  const m = a.shape[0];
  const n = b.shape[1];
  const av = new Float32Array(Buffer.from(a.data, 'base64').buffer.slice(0));
  const bv = new Float32Array(Buffer.from(b.data, 'base64').buffer.slice(0));
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) c[i * n + j] = av[i] * bv[j];
  const outputs = [encodeTensor('c', 'float32', [m, n], c)];
  const receipt = await signPayload(
    'receipt',
    {
      version: PROTOCOL_VERSION,
      jobId: offer.jobId,
      attempt: offer.attempt,
      providerPeerId,
      providerAddress: PROVIDER_WALLET.address,
      inputHash: hashTensors(offer.spec.inputs),
      outputHash: hashOutputs(outputs),
      backend: 'wasm',
      timings: { queuedMs: 0, runMs: 1, totalMs: 1 },
      finishedAt: Date.now(),
    },
    PROVIDER_WALLET,
  );
  return new TextEncoder().encode(JSON.stringify({ type: 'result', outputs, receipt }));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends `bytes` on a raw stream, waiting for the muxer to drain; false once the stream is gone. */
async function sendRaw(stream: Stream, bytes: Uint8Array): Promise<boolean> {
  try {
    if (!stream.send(bytes)) await stream.onDrain();
    return true;
  } catch {
    return false;
  }
}

type LiarPlay = (stream: Stream, offer: Signed<JobOffer>, framed: FramedStream) => Promise<void>;

describe('a provider that lies on the job protocol', () => {
  let nodes: GpumeshNode[] = [];
  afterEach(async () => {
    await stopNodes(nodes);
    nodes = [];
  });

  async function coordinatorAndLiars(
    count: number,
    play: LiarPlay,
  ): Promise<{ coordinator: GpumeshNode; liars: GpumeshNode[]; streams: () => number }> {
    const coordinator = await createGpumeshNode();
    const liars = await Promise.all(Array.from({ length: count }, () => createGpumeshNode()));
    nodes = [coordinator, ...liars];
    let streams = 0;
    for (const liar of liars) {
      await connect(liar, coordinator);
      await liar.handle(JOB_PROTOCOL_ID, (stream) => {
        streams += 1;
        const framed = new FramedStream(stream, { maxFrameBytes: DATA_FRAME_MAX_BYTES });
        void framed
          .read(OfferFrameSchema)
          .then(({ offer }) => play(stream, offer as Signed<JobOffer>, framed))
          .catch(() => undefined);
      });
    }
    return { coordinator, liars, streams: () => streams };
  }

  const options = { providerAddress: PROVIDER_WALLET.address, silenceTimeoutMs: SILENCE_MS };

  async function timed<T>(work: Promise<T>): Promise<{ err: unknown; ms: number }> {
    const started = performance.now();
    const err = await work.then(
      () => undefined,
      (e: unknown) => e,
    );
    return { err, ms: performance.now() - started };
  }

  it('accept-then-silence fails with TIMEOUT within the silence window, not at the deadline', async () => {
    const { coordinator, liars } = await coordinatorAndLiars(1, async (_stream, _offer, framed) => {
      await framed.write({ type: 'accept' });
    });
    const offer = await signedOffer(coordinator.peerId.toString(), { deadlineMs: DEADLINE_MS });
    let accepted = false;
    const { err, ms } = await timed(
      sendJobOffer(coordinator, liars[0].peerId, offer, { ...options, onAccepted: () => (accepted = true) }),
    );
    expect(accepted).toBe(true);
    expect(err).toBeInstanceOf(JobProtocolError);
    expect(err).toMatchObject({ code: 'TIMEOUT' });
    expect((err as Error).message).toMatch(/no bytes for 800 ms/);
    expect(ms).toBeGreaterThanOrEqual(SILENCE_MS - 50);
    expect(ms).toBeLessThan(SILENCE_MS + 2000);
    console.info(`[liar] accept-then-silence: TIMEOUT after ${ms.toFixed(0)} ms (window ${SILENCE_MS} ms)`);
  });

  it('a half frame followed by silence fails with TIMEOUT', async () => {
    const { coordinator, liars } = await coordinatorAndLiars(1, async (stream, _offer, framed) => {
      await framed.write({ type: 'accept' });
      await sendRaw(stream, encodeVarint(1000));
      await sendRaw(stream, new TextEncoder().encode('{"type":"result","outputs":['));
    });
    const offer = await signedOffer(coordinator.peerId.toString(), { deadlineMs: DEADLINE_MS });
    const { err, ms } = await timed(sendJobOffer(coordinator, liars[0].peerId, offer, options));
    expect(err).toMatchObject({ code: 'TIMEOUT' });
    expect((err as Error).message).toMatch(/unfinished frame/);
    expect(ms).toBeLessThan(SILENCE_MS + 2000);
  });

  it('an oversize result for a 2×2 matmul fails with FRAME_TOO_LARGE at its length prefix', async () => {
    let sentAfterPrefix = 0;
    const { coordinator, liars } = await coordinatorAndLiars(1, async (stream, _offer, framed) => {
      await framed.write({ type: 'accept' });
      await sendRaw(stream, encodeVarint(50 * MIB));
      const chunk = new Uint8Array(256 * 1024).fill(0x41);
      while (sentAfterPrefix < 50 * MIB && (await sendRaw(stream, chunk)))
        sentAfterPrefix += chunk.byteLength;
    });
    const offer = await signedOffer(coordinator.peerId.toString(), { deadlineMs: DEADLINE_MS });
    const cap = expectedResultFrameBytes(offer.payload.spec);
    const { err, ms } = await timed(sendJobOffer(coordinator, liars[0].peerId, offer, options));
    expect(err).toMatchObject({ code: 'FRAME_TOO_LARGE' });
    expect((err as Error).message).toContain(`exceeds cap ${cap}`);
    expect(ms).toBeLessThan(2000);
    await sleep(100);
    console.info(
      `[liar] oversize 2×2 result: FRAME_TOO_LARGE after ${ms.toFixed(0)} ms, cap ${cap} bytes, liar offered ${sentAfterPrefix} bytes after the prefix`,
    );
  });

  it('several concurrent oversize result streams leave the coordinator memory bounded', async () => {
    const STREAMS_PER_LIAR = 2;
    // Bulk data between two nodes of one busy process can pause ~1 s: not what this test is about.
    const FLOOD_SILENCE_MS = 10_000;
    const LIARS = 3;
    const chunk = new Uint8Array(1 * MIB).fill(0x41);
    const pushed: number[] = [];
    // Half the streams announce a 95 MiB frame; the others announce exactly the expected cap (they
    // can compute it too) and then flood far beyond it.
    const { coordinator, liars } = await coordinatorAndLiars(LIARS, async (stream, offer, framed) => {
      const at = pushed.push(0) - 1;
      await framed.write({ type: 'accept' });
      const declared = at % 2 === 0 ? 95 * MIB : expectedResultFrameBytes(offer.payload.spec);
      await sendRaw(stream, encodeVarint(declared));
      while (pushed[at] < 96 * MIB && (await sendRaw(stream, chunk))) pushed[at] += chunk.byteLength;
    });
    const budget = new ResultByteBudget({ perPeerBytes: 128 * MIB, totalBytes: 256 * MIB });
    const coordinatorId = coordinator.peerId.toString();

    global.gc?.();
    const before = process.memoryUsage();
    let peakRss = before.rss;
    let peakBuffers = before.heapUsed + before.arrayBuffers;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakBuffers = Math.max(peakBuffers, m.heapUsed + m.arrayBuffers);
    }, 5);
    const offers = await Promise.all(
      liars.flatMap((liar) =>
        Array.from({ length: STREAMS_PER_LIAR }, async () => ({
          liar,
          offer: await outerProductOffer(coordinatorId, 64, 64),
        })),
      ),
    );
    const started = performance.now();
    const results = await Promise.all(
      offers.map(({ liar, offer }) =>
        sendJobOffer(coordinator, liar.peerId, offer, {
          ...options,
          silenceTimeoutMs: FLOOD_SILENCE_MS,
          resultBudget: budget,
        }).then(
          () => undefined,
          (e: unknown) => e,
        ),
      ),
    );
    const ms = performance.now() - started;
    await sleep(200);
    clearInterval(sampler);

    const codes = results.map((e) => (e as JobProtocolError).code);
    const rssGrowth = peakRss - before.rss;
    const bufferGrowth = peakBuffers - (before.heapUsed + before.arrayBuffers);
    const totalPushed = pushed.reduce((a, b) => a + b, 0);
    console.info(
      `[liar] ${offers.length} oversize streams (${codes.join(', ')}) in ${ms.toFixed(0)} ms: liars offered ${(totalPushed / MIB).toFixed(1)} MiB in all; peak growth heap+arrayBuffers ${(bufferGrowth / MIB).toFixed(1)} MiB, RSS ${(rssGrowth / MIB).toFixed(1)} MiB (both sides share this process)`,
    );
    expect(codes.every((c) => c === 'FRAME_TOO_LARGE' || c === 'BAD_FRAME')).toBe(true);
    expect(codes.filter((c) => c === 'FRAME_TOO_LARGE').length).toBeGreaterThanOrEqual(LIARS);
    expect(budget.usedBytes).toBe(0);
    // Before the caps, each of these streams could buffer 96 MiB (~576 MiB in all).
    expect(bufferGrowth).toBeLessThan(64 * MIB);
    expect(rssGrowth).toBeLessThan(128 * MIB);
  });

  it('an honest large result that arrives slowly still completes (bytes, not frames, reset the silence)', async () => {
    const m = 512;
    const n = 512; // 1 MiB of float32, ~1.4 MiB of frame
    const CHUNKS = 24;
    const GAP_MS = 150; // the whole result takes ~3.6 s, far beyond the 800 ms window
    const { coordinator, liars } = await coordinatorAndLiars(1, async (stream, offer, framed) => {
      await framed.write({ type: 'accept' });
      const frame = encodeFrame(await honestOuterProductFrame(offer.payload, liars[0].peerId.toString()))
        .subarray()
        .slice();
      const step = Math.ceil(frame.byteLength / CHUNKS);
      for (let at = 0; at < frame.byteLength; at += step) {
        if (!(await sendRaw(stream, frame.subarray(at, at + step)))) return;
        await sleep(GAP_MS);
      }
    });
    const offer = await outerProductOffer(coordinator.peerId.toString(), m, n);
    const budget = new ResultByteBudget({ perPeerBytes: 128 * MIB, totalBytes: 256 * MIB });
    const started = performance.now();
    const outcome = await sendJobOffer(coordinator, liars[0].peerId, offer, {
      ...options,
      resultBudget: budget,
    });
    const ms = performance.now() - started;
    expect(outcome.status).toBe('completed');
    if (outcome.status !== 'completed') return;
    expect(outcome.outputs[0].shape).toEqual([m, n]);
    expect(ms).toBeGreaterThan(4 * SILENCE_MS);
    expect(budget.usedBytes).toBe(0);
    console.info(`[liar] honest slow ${m}×${n} result completed in ${ms.toFixed(0)} ms`);
  });

  it('holds only the upfront reservation while a job runs; a large result waits at its prefix for room', async () => {
    const m = 512;
    const n = 512;
    let release: () => void = () => undefined;
    const resultSent = new Promise<void>((resolve) => (release = resolve));
    const { coordinator, liars } = await coordinatorAndLiars(1, async (stream, offer, framed) => {
      await framed.write({ type: 'accept' });
      await resultSent;
      const frame = encodeFrame(await honestOuterProductFrame(offer.payload, liars[0].peerId.toString()));
      await sendRaw(stream, frame.subarray());
    });
    const peer = liars[0].peerId.toString();
    const budget = new ResultByteBudget({ perPeerBytes: 2 * MIB, totalBytes: 2 * MIB });
    const offer = await outerProductOffer(coordinator.peerId.toString(), m, n);
    const cap = expectedResultFrameBytes(offer.payload.spec);
    expect(cap).toBeGreaterThan(1.3 * MIB);
    let accepted = false;
    const outcome = sendJobOffer(coordinator, liars[0].peerId, offer, {
      ...options,
      silenceTimeoutMs: 2000,
      resultBudget: budget,
      onAccepted: () => (accepted = true),
    });
    await waitFor(() => accepted, 5000, 'acceptance');
    const running = budget.peerBytes(peer);
    expect(running).toBe(128 * 1024); // 64 KiB upfront + 64 KiB slack, not the 1.4 MiB allowance
    const hog = await budget.reserve('someone-else', 2 * MIB - running - 64 * 1024);
    release();
    await sleep(2500); // longer than the silence window: waiting for room is not silence
    expect(budget.waiting).toBe(1);
    hog.release();
    const done = await outcome;
    expect(done.status).toBe('completed');
    expect(budget.usedBytes).toBe(0);
    console.info(
      `[liar] running job held ${running} bytes of budget; its ${cap}-byte result waited for room and completed`,
    );
  });

  it('waits for result budget before sending the offer, and fails with BUDGET_EXHAUSTED at the deadline', async () => {
    const { coordinator, liars, streams } = await coordinatorAndLiars(1, async (stream, offer, framed) => {
      await framed.write({ type: 'accept' });
      const frame = encodeFrame(await honestOuterProductFrame(offer.payload, liars[0].peerId.toString()));
      await sendRaw(stream, frame.subarray());
    });
    const peer = liars[0].peerId.toString();
    const budget = new ResultByteBudget({ perPeerBytes: 1 * MIB, totalBytes: 4 * MIB });
    const hog = budget.tryReserve(peer, 1 * MIB);
    expect(hog).toBeDefined();

    const offer = await outerProductOffer(coordinator.peerId.toString(), 4, 4);
    const short = await signPayload(
      'offer',
      { ...offer.payload, nonce: randomNonce(), deadlineAt: Date.now() + 500 },
      COORDINATOR_WALLET,
    );
    const { err } = await timed(
      sendJobOffer(coordinator, liars[0].peerId, short, { ...options, resultBudget: budget }),
    );
    expect(err).toMatchObject({ code: 'BUDGET_EXHAUSTED' });
    expect(streams()).toBe(0); // nothing was sent

    const waiting = sendJobOffer(coordinator, liars[0].peerId, offer, { ...options, resultBudget: budget });
    await sleep(200);
    expect(streams()).toBe(0);
    hog?.release();
    expect((await waiting).status).toBe('completed');
    expect(streams()).toBe(1);
    expect(budget.usedBytes).toBe(0);
  });
});

describe('a provider that lies on the batch protocol', () => {
  let nodes: GpumeshNode[] = [];
  afterEach(async () => {
    await stopNodes(nodes);
    nodes = [];
  });

  async function batchLiar(
    play: (stream: Stream, framed: FramedStream, count: number) => Promise<void>,
  ): Promise<{ coordinator: GpumeshNode; liar: GpumeshNode }> {
    const coordinator = await createGpumeshNode();
    const liar = await createGpumeshNode();
    nodes = [coordinator, liar];
    await connect(liar, coordinator);
    await liar.handle(JOB_BATCH_PROTOCOL_ID, (stream) => {
      const framed = new FramedStream(stream, { maxFrameBytes: DATA_FRAME_MAX_BYTES });
      void framed
        .read(OffersFrameSchema)
        .then(({ offers }) => play(stream, framed, offers.length))
        .catch(() => undefined);
    });
    return { coordinator, liar };
  }

  const accepts = (count: number): { type: 'decisions'; decisions: { type: 'accept' }[] } => ({
    type: 'decisions',
    decisions: Array.from({ length: count }, () => ({ type: 'accept' as const })),
  });

  it('accept-then-silence fails every open offer with TIMEOUT within the silence window', async () => {
    const { coordinator, liar } = await batchLiar(async (_stream, framed, count) => {
      await framed.write(accepts(count));
    });
    const offers = await Promise.all(
      [1, 2, 3].map(() => signedOffer(coordinator.peerId.toString(), { deadlineMs: DEADLINE_MS })),
    );
    const started = performance.now();
    const settled = await Promise.allSettled(
      sendJobOffers(
        coordinator,
        liar.peerId.toString(),
        offers.map((offer) => ({
          offer,
          options: { providerAddress: PROVIDER_WALLET.address, silenceTimeoutMs: SILENCE_MS },
        })),
      ),
    );
    const ms = performance.now() - started;
    expect(settled.map((s) => s.status === 'rejected' && (s.reason as JobProtocolError).code)).toEqual([
      'TIMEOUT',
      'TIMEOUT',
      'TIMEOUT',
    ]);
    expect(ms).toBeLessThan(SILENCE_MS + 2000);
  });

  it('a half frame then silence fails with TIMEOUT; an oversize frame with FRAME_TOO_LARGE', async () => {
    let mode: 'half' | 'oversize' = 'half';
    const { coordinator, liar } = await batchLiar(async (stream, framed, count) => {
      await framed.write(accepts(count));
      if (mode === 'half') {
        await sendRaw(stream, encodeVarint(5000));
        await sendRaw(stream, new TextEncoder().encode('{"type":"results","results":['));
      } else {
        await sendRaw(stream, encodeVarint(90 * MIB));
        await sendRaw(stream, new Uint8Array(1 * MIB));
      }
    });
    const run = async (): Promise<string[]> => {
      const offers = await Promise.all(
        [1, 2].map(() => signedOffer(coordinator.peerId.toString(), { deadlineMs: DEADLINE_MS })),
      );
      const settled = await Promise.allSettled(
        sendJobOffers(
          coordinator,
          liar.peerId.toString(),
          offers.map((offer) => ({
            offer,
            options: { providerAddress: PROVIDER_WALLET.address, silenceTimeoutMs: SILENCE_MS },
          })),
        ),
      );
      return settled.map((s) =>
        s.status === 'rejected' ? (s.reason as JobProtocolError).code : 'completed',
      );
    };
    expect(await run()).toEqual(['TIMEOUT', 'TIMEOUT']);
    mode = 'oversize';
    expect(await run()).toEqual(['FRAME_TOO_LARGE', 'FRAME_TOO_LARGE']);
  });
});

describe('heartbeats from an honest agent', () => {
  let nodes: GpumeshNode[] = [];
  afterEach(async () => {
    await stopNodes(nodes);
    nodes = [];
  });

  it('keep a long job without progress alive past the silence window (and only they do)', async () => {
    const coordinator = await createGpumeshNode();
    const agent = await createGpumeshNode();
    nodes = [coordinator, agent];
    await connect(agent, coordinator);
    const agentId = agent.peerId.toString();
    const serve = (heartbeatIntervalMs: number): Promise<() => Promise<void>> =>
      handleJobOffers(agent, {
        verifyOffer: createOfferVerifier({ coordinatorAddress: COORDINATOR_WALLET.address }),
        heartbeatIntervalMs,
        onOffer: async (offer) => ({
          accept: true,
          run: async () => {
            await sleep(3 * SILENCE_MS); // no progress reported at all
            return resultFor(offer.payload, agentId);
          },
        }),
      });
    const progress: number[] = [];
    let stop = await serve(SILENCE_MS / 4);
    const outcome = await sendJobOffer(
      coordinator,
      agent.peerId,
      await signedOffer(coordinator.peerId.toString(), { deadlineMs: DEADLINE_MS }),
      { ...options(), onProgress: (p) => progress.push(p.fraction) },
    );
    expect(outcome.status).toBe('completed');
    expect(progress).toEqual([]); // heartbeats are not progress
    await stop();

    stop = await serve(0);
    const err = await sendJobOffer(
      coordinator,
      agent.peerId,
      await signedOffer(coordinator.peerId.toString(), { deadlineMs: DEADLINE_MS }),
      options(),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TIMEOUT' });
    await stop();
  });

  function options(): { providerAddress: string; silenceTimeoutMs: number } {
    return { providerAddress: PROVIDER_WALLET.address, silenceTimeoutMs: SILENCE_MS };
  }
});
