import { JOB_BATCH_PROTOCOL_ID, JOB_PROTOCOL_ID, type JobOffer, type Signed } from '@gpumesh/protocol';
import {
  JobProtocolError,
  createGpumeshNode,
  createOfferVerifier,
  encodeFrame,
  handleJobOffers,
  sendJobOffer,
  type GpumeshNode,
  type JobProgress,
  type OfferContext,
  type OfferDecision,
  type StreamError,
} from '@gpumesh/p2p';
import { afterEach, describe, expect, it } from 'vitest';

import {
  COORDINATOR_WALLET,
  OTHER_PROVIDER_WALLET,
  PROVIDER_WALLET,
  connect,
  resultFor,
  signedOffer,
  stopNodes,
  waitFor,
} from './support.js';

describe('job protocol between real nodes', () => {
  let nodes: GpumeshNode[] = [];
  afterEach(async () => {
    await stopNodes(nodes);
    nodes = [];
  });

  /** A coordinator that listens and an agent that dialed it (optionally without listening itself). */
  async function pair(agentListens = true): Promise<{ coordinator: GpumeshNode; agent: GpumeshNode }> {
    const started = performance.now();
    const coordinator = await createGpumeshNode();
    const agent = await createGpumeshNode(agentListens ? {} : { listen: [] });
    const startedMs = performance.now() - started;
    nodes = [coordinator, agent];
    const connectStarted = performance.now();
    await connect(agent, coordinator);
    console.info(
      `[p2p] start 2 nodes ${startedMs.toFixed(1)} ms, connect ${(performance.now() - connectStarted).toFixed(1)} ms`,
    );
    return { coordinator, agent };
  }

  function serveMatmul(
    agent: GpumeshNode,
    decide?: (offer: Signed<JobOffer>, ctx: OfferContext) => Promise<OfferDecision>,
    onStreamError?: (peer: string, err: StreamError) => void,
  ): Promise<() => Promise<void>> {
    const agentId = agent.peerId.toString();
    return handleJobOffers(agent, {
      verifyOffer: createOfferVerifier({ coordinatorAddress: COORDINATOR_WALLET.address }),
      onStreamError,
      onOffer: async (offer, ctx) =>
        decide !== undefined
          ? decide(offer, ctx)
          : {
              accept: true,
              run: async () => {
                ctx.reportProgress(0.5, 'half way');
                await new Promise((resolve) => setTimeout(resolve, 120));
                ctx.reportProgress(1, 'done');
                return resultFor(offer.payload, agentId);
              },
            },
    });
  }

  it('runs offer -> accept -> progress -> result with a verified receipt', async () => {
    const { coordinator, agent } = await pair();
    await serveMatmul(agent);
    const offer = await signedOffer(coordinator.peerId.toString());
    const progress: JobProgress[] = [];
    let accepted = false;

    const started = performance.now();
    const outcome = await sendJobOffer(coordinator, agent.peerId, offer, {
      providerAddress: PROVIDER_WALLET.address,
      onAccepted: () => (accepted = true),
      onProgress: (p) => progress.push(p),
    });
    const elapsed = performance.now() - started;

    expect(accepted).toBe(true);
    expect(outcome.status).toBe('completed');
    if (outcome.status !== 'completed') return;
    expect(outcome.receipt.payload.jobId).toBe(offer.payload.jobId);
    expect(outcome.outputs[0].name).toBe('c');
    expect(progress).toEqual([
      { fraction: 0.5, message: 'half way' },
      { fraction: 1, message: 'done' },
    ]);

    // round trip without the simulated work
    await agent.unhandle([JOB_PROTOCOL_ID, JOB_BATCH_PROTOCOL_ID]);
    await serveMatmul(agent, async (next) => ({
      accept: true,
      run: async () => resultFor(next.payload, agent.peerId.toString()),
    }));
    const timings: number[] = [];
    for (let i = 0; i < 20; i++) {
      const next = await signedOffer(coordinator.peerId.toString());
      const t0 = performance.now();
      await sendJobOffer(coordinator, agent.peerId, next, { providerAddress: PROVIDER_WALLET.address });
      timings.push(performance.now() - t0);
    }
    timings.sort((a, b) => a - b);
    console.info(
      `[p2p] offer round trip: first ${elapsed.toFixed(1)} ms (incl. 120 ms work), p50 ${timings[10].toFixed(1)} ms, max ${timings[19].toFixed(1)} ms`,
    );
  });

  it('returns a rejection as a value', async () => {
    const { coordinator, agent } = await pair();
    await serveMatmul(agent, async () => ({ accept: false, reason: 'NO_FREE_SLOT' }));
    const outcome = await sendJobOffer(
      coordinator,
      agent.peerId,
      await signedOffer(coordinator.peerId.toString()),
      {
        providerAddress: PROVIDER_WALLET.address,
      },
    );
    expect(outcome).toEqual({ status: 'rejected', code: 'REJECTED', reason: 'NO_FREE_SLOT' });
  });

  it('lets the agent reject an offer not signed by its coordinator, and replays of an offer', async () => {
    const { coordinator, agent } = await pair();
    await handleJobOffers(agent, {
      verifyOffer: createOfferVerifier({ coordinatorAddress: OTHER_PROVIDER_WALLET.address }),
      onOffer: async () => ({ accept: false, reason: 'unreachable' }),
    });
    const outcome = await sendJobOffer(
      coordinator,
      agent.peerId,
      await signedOffer(coordinator.peerId.toString()),
      {
        providerAddress: PROVIDER_WALLET.address,
      },
    );
    expect(outcome.status).toBe('rejected');
    if (outcome.status === 'rejected') expect(outcome.reason).toMatch(/^SIGNER_MISMATCH/);

    await agent.unhandle([JOB_PROTOCOL_ID, JOB_BATCH_PROTOCOL_ID]);
    await serveMatmul(agent);
    const offer = await signedOffer(coordinator.peerId.toString());
    const options = { providerAddress: PROVIDER_WALLET.address };
    expect((await sendJobOffer(coordinator, agent.peerId, offer, options)).status).toBe('completed');
    const replay = await sendJobOffer(coordinator, agent.peerId, offer, options);
    expect(replay.status === 'rejected' && replay.reason.startsWith('REPLAY')).toBe(true);
  });

  it('fails with BAD_RECEIPT when the receipt is signed by someone else or does not match the outputs', async () => {
    const { coordinator, agent } = await pair();
    const agentId = agent.peerId.toString();
    await handleJobOffers(agent, {
      verifyOffer: createOfferVerifier({ coordinatorAddress: COORDINATOR_WALLET.address }),
      onOffer: async (offer) => ({
        accept: true,
        run: async () => resultFor(offer.payload, agentId, OTHER_PROVIDER_WALLET),
      }),
    });
    const err = await sendJobOffer(
      coordinator,
      agent.peerId,
      await signedOffer(coordinator.peerId.toString()),
      {
        providerAddress: PROVIDER_WALLET.address,
      },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobProtocolError);
    expect((err as JobProtocolError).code).toBe('BAD_RECEIPT');

    await agent.unhandle([JOB_PROTOCOL_ID, JOB_BATCH_PROTOCOL_ID]);
    await handleJobOffers(agent, {
      verifyOffer: createOfferVerifier({ coordinatorAddress: COORDINATOR_WALLET.address }),
      onOffer: async (offer) => ({
        accept: true,
        run: async () => {
          const honest = await resultFor(offer.payload, agentId);
          const outputs = [{ ...honest.outputs[0], name: 'd' }];
          return { outputs, receipt: honest.receipt };
        },
      }),
    });
    const err2 = await sendJobOffer(
      coordinator,
      agent.peerId,
      await signedOffer(coordinator.peerId.toString()),
      {
        providerAddress: PROVIDER_WALLET.address,
      },
    ).catch((e: unknown) => e);
    expect((err2 as JobProtocolError).code).toBe('BAD_RECEIPT');
    expect((err2 as JobProtocolError).message).toMatch(/outputHash/);
  });

  it('times out a silent provider, and reports the provider error code', async () => {
    const { coordinator, agent } = await pair();
    await serveMatmul(agent, async () => ({
      accept: true,
      run: () => new Promise(() => undefined),
    }));
    const err = await sendJobOffer(
      coordinator,
      agent.peerId,
      await signedOffer(coordinator.peerId.toString()),
      {
        providerAddress: PROVIDER_WALLET.address,
        resultTimeoutMs: 200,
      },
    ).catch((e: unknown) => e);
    expect((err as JobProtocolError).code).toBe('TIMEOUT');

    await agent.unhandle([JOB_PROTOCOL_ID, JOB_BATCH_PROTOCOL_ID]);
    await serveMatmul(agent, async () => ({
      accept: true,
      run: async () => {
        throw Object.assign(new Error('out of memory'), { code: 'OUT_OF_MEMORY' });
      },
    }));
    const err2 = await sendJobOffer(
      coordinator,
      agent.peerId,
      await signedOffer(coordinator.peerId.toString()),
      {
        providerAddress: PROVIDER_WALLET.address,
      },
    ).catch((e: unknown) => e);
    expect(err2).toMatchObject({ code: 'REMOTE_ERROR', remoteCode: 'OUT_OF_MEMORY' });
  });

  it('cancels a running job: the agent sees its signal abort', async () => {
    const { coordinator, agent } = await pair();
    let agentSawAbort = false;
    let running = false;
    await handleJobOffers(agent, {
      verifyOffer: createOfferVerifier({ coordinatorAddress: COORDINATOR_WALLET.address }),
      onOffer: async (_offer, ctx) => ({
        accept: true,
        run: () =>
          new Promise((_resolve, reject) => {
            running = true;
            ctx.signal.addEventListener('abort', () => {
              agentSawAbort = true;
              reject(new Error('cancelled'));
            });
          }),
      }),
    });
    const controller = new AbortController();
    const pending = sendJobOffer(
      coordinator,
      agent.peerId,
      await signedOffer(coordinator.peerId.toString()),
      {
        providerAddress: PROVIDER_WALLET.address,
        signal: controller.signal,
      },
    ).catch((e: unknown) => e);
    await waitFor(() => running);
    controller.abort();
    expect(await pending).toMatchObject({ code: 'CANCELLED' });
    await waitFor(() => agentSawAbort, 5000, 'agent abort');
  });

  it('closes only the stream that carried a garbage frame; the agent serves the next offer', async () => {
    const { coordinator, agent } = await pair();
    const streamErrors: string[] = [];
    await serveMatmul(agent, undefined, (_peer, err) => streamErrors.push(err.code));

    // not JSON
    const garbage = await coordinator.dialProtocol(agent.peerId, JOB_PROTOCOL_ID);
    garbage.send(encodeFrame(new TextEncoder().encode('this is not json')));
    // a length prefix far above any cap
    const oversize = await coordinator.dialProtocol(agent.peerId, JOB_PROTOCOL_ID);
    oversize.send(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
    await waitFor(() => streamErrors.length === 2, 5000, 'stream errors');
    expect(streamErrors.sort()).toEqual(['BAD_FRAME', 'FRAME_TOO_LARGE']);
    await waitFor(() => garbage.status !== 'open' && oversize.status !== 'open', 5000, 'streams reset');

    expect(coordinator.getConnections(agent.peerId)).toHaveLength(1);
    const outcome = await sendJobOffer(
      coordinator,
      agent.peerId,
      await signedOffer(coordinator.peerId.toString()),
      {
        providerAddress: PROVIDER_WALLET.address,
      },
    );
    expect(outcome.status).toBe('completed');
  });

  it('reaches an agent behind NAT (no listen address) over the connection the agent opened', async () => {
    const { coordinator, agent } = await pair(false);
    expect(agent.getMultiaddrs()).toHaveLength(0);
    await serveMatmul(agent);
    const outcome = await sendJobOffer(
      coordinator,
      agent.peerId,
      await signedOffer(coordinator.peerId.toString()),
      {
        providerAddress: PROVIDER_WALLET.address,
      },
    );
    expect(outcome.status).toBe('completed');
    expect(coordinator.getConnections(agent.peerId)).toHaveLength(1);
    expect(coordinator.getConnections(agent.peerId)[0].direction).toBe('inbound');
  });

  it('fails with STREAM_RESET or DISCONNECTED when the provider goes away mid-job', async () => {
    const { coordinator, agent } = await pair();
    let running = false;
    await serveMatmul(agent, async () => ({
      accept: true,
      run: () => {
        running = true;
        return new Promise(() => undefined);
      },
    }));
    const pending = sendJobOffer(
      coordinator,
      agent.peerId,
      await signedOffer(coordinator.peerId.toString()),
      {
        providerAddress: PROVIDER_WALLET.address,
      },
    ).catch((e: unknown) => e);
    await waitFor(() => running);
    await agent.stop();
    const err = await pending;
    expect(err).toBeInstanceOf(JobProtocolError);
    expect(['STREAM_RESET', 'DISCONNECTED']).toContain((err as JobProtocolError).code);
  });
});
