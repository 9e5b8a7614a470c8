import { JOB_BATCH_PROTOCOL_ID, signPayloads, type JobOffer, type Signed } from '@gpumesh/protocol';
import {
  JobProtocolError,
  createGpumeshNode,
  createOfferVerifier,
  encodeFrame,
  handleJobOffers,
  sendJobOffer,
  sendJobOffers,
  type GpumeshNode,
  type JobOfferOutcome,
  type JobProgress,
  type OfferContext,
  type OfferDecision,
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

/** Offers signed as the coordinator signs a turn's offers: one Merkle-batch signature for all. */
async function batchOffers(
  coordinatorPeerId: string,
  n: number,
  deadlineMs?: number,
): Promise<Signed<JobOffer>[]> {
  const singles = await Promise.all(
    Array.from({ length: n }, () => signedOffer(coordinatorPeerId, deadlineMs ? { deadlineMs } : {})),
  );
  return signPayloads(
    'offer',
    singles.map((s) => s.payload),
    COORDINATOR_WALLET,
  );
}

/** Each offer with the plain options (the provider's address, nothing else). */
const plain = (
  offers: readonly Signed<JobOffer>[],
): { offer: Signed<JobOffer>; options: { providerAddress: string } }[] =>
  offers.map((offer) => ({ offer, options: { providerAddress: PROVIDER_WALLET.address } }));

const settled = (promises: Promise<JobOfferOutcome>[]): Promise<(JobOfferOutcome | JobProtocolError)[]> =>
  Promise.all(promises.map((p) => p.catch((err: unknown) => err as JobProtocolError)));

describe('job batch protocol between real nodes', () => {
  let nodes: GpumeshNode[] = [];
  afterEach(async () => {
    await stopNodes(nodes);
    nodes = [];
  });

  async function pair(): Promise<{ coordinator: GpumeshNode; agent: GpumeshNode }> {
    const coordinator = await createGpumeshNode();
    const agent = await createGpumeshNode();
    nodes = [coordinator, agent];
    await connect(agent, coordinator);
    return { coordinator, agent };
  }

  function serve(
    agent: GpumeshNode,
    decide: (offer: Signed<JobOffer>, ctx: OfferContext) => Promise<OfferDecision>,
    onStreamError?: (peer: string, code: string) => void,
  ): Promise<() => Promise<void>> {
    return handleJobOffers(agent, {
      verifyOffer: createOfferVerifier({ coordinatorAddress: COORDINATOR_WALLET.address }),
      onOffer: decide,
      onStreamError: (peer, err) => onStreamError?.(peer, err.code),
    });
  }

  it('runs many offers over one stream: per-offer decisions, progress and verified receipts', async () => {
    const { coordinator, agent } = await pair();
    const agentId = agent.peerId.toString();
    let rejectIds = new Set<string>();
    await serve(agent, async (offer, ctx) => {
      if (offer.payload.attempt === 1 && rejectIds.has(offer.payload.jobId)) {
        return { accept: false, reason: 'NO_FREE_SLOT' };
      }
      return {
        accept: true,
        run: async () => {
          ctx.reportProgress(1, 'done');
          await new Promise((r) => setTimeout(r, 5));
          return resultFor(offer.payload, agentId);
        },
      };
    });
    const offers = await batchOffers(coordinator.peerId.toString(), 6);
    expect(new Set(offers.map((o) => o.signature)).size).toBe(1);
    rejectIds = new Set([offers[1].payload.jobId, offers[4].payload.jobId]);
    const accepted: number[] = [];
    const progress: JobProgress[][] = offers.map(() => []);
    const outcomes = await settled(
      sendJobOffers(
        coordinator,
        agentId,
        offers.map((offer, i) => ({
          offer,
          options: {
            providerAddress: PROVIDER_WALLET.address,
            onAccepted: () => accepted.push(i),
            onProgress: (p) => progress[i].push(p),
          },
        })),
      ),
    );
    expect(accepted.sort()).toEqual([0, 2, 3, 5]);
    outcomes.forEach((outcome, i) => {
      if (i === 1 || i === 4) {
        expect(outcome).toEqual({ status: 'rejected', code: 'REJECTED', reason: 'NO_FREE_SLOT' });
        return;
      }
      expect(outcome).toMatchObject({ status: 'completed' });
      if ('status' in outcome && outcome.status === 'completed') {
        expect(outcome.receipt.payload.jobId).toBe(offers[i].payload.jobId);
        expect(progress[i]).toEqual([{ fraction: 1, message: 'done' }]);
      }
    });
  });

  it('settles each offer on its own: a bad receipt, a provider error, a timeout and a cancel', async () => {
    const { coordinator, agent } = await pair();
    const agentId = agent.peerId.toString();
    const offers = await batchOffers(coordinator.peerId.toString(), 5);
    const role = new Map(offers.map((o, i) => [o.payload.jobId, i]));
    const aborted: number[] = [];
    await serve(agent, async (offer, ctx) => ({
      accept: true,
      run: async () => {
        const i = role.get(offer.payload.jobId);
        if (i === 1) return resultFor(offer.payload, agentId, OTHER_PROVIDER_WALLET);
        if (i === 2) throw Object.assign(new Error('out of memory'), { code: 'OUT_OF_MEMORY' });
        if (i === 3 || i === 4) {
          await new Promise<void>((resolve) =>
            ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
          );
          aborted.push(i);
          throw new Error('stopped');
        }
        return resultFor(offer.payload, agentId);
      },
    }));
    const cancel = new AbortController();
    const promises = sendJobOffers(
      coordinator,
      agentId,
      offers.map((offer, i) => ({
        offer,
        options: {
          providerAddress: PROVIDER_WALLET.address,
          ...(i === 3 ? { resultTimeoutMs: 300 } : {}),
          ...(i === 4 ? { signal: cancel.signal } : {}),
        },
      })),
    );
    setTimeout(() => cancel.abort(), 100);
    const outcomes = await settled(promises);
    expect(outcomes[0]).toMatchObject({ status: 'completed' });
    expect(outcomes.slice(1).map((o) => (o as JobProtocolError).code)).toEqual([
      'BAD_RECEIPT',
      'REMOTE_ERROR',
      'TIMEOUT',
      'CANCELLED',
    ]);
    expect((outcomes[2] as JobProtocolError).remoteCode).toBe('OUT_OF_MEMORY');
    // the agent's runs for the timed-out and the cancelled offer saw their signals abort
    await waitFor(() => aborted.length === 2, 5000, 'agent aborts');
    expect(aborted.sort()).toEqual([3, 4]);
  });

  it('rejects only the offers that fail verification (bad signature, replay)', async () => {
    const { coordinator, agent } = await pair();
    const agentId = agent.peerId.toString();
    await serve(agent, async (offer) => ({
      accept: true,
      run: async () => resultFor(offer.payload, agentId),
    }));
    const offers = await batchOffers(coordinator.peerId.toString(), 3);
    const tampered = { ...offers[1], payload: { ...offers[1].payload, pricePerUnit: '1' } };
    const first = await settled(sendJobOffers(coordinator, agentId, plain([offers[0], tampered, offers[2]])));
    expect(first.map((o) => ('status' in o ? o.status : o.code))).toEqual([
      'completed',
      'rejected',
      'completed',
    ]);
    expect((first[1] as { reason: string }).reason).toMatch(/^BAD_SIGNATURE/);
    // the same offers again: replays, each rejected, over one stream
    const replay = await settled(sendJobOffers(coordinator, agentId, plain([offers[0], offers[2]])));
    for (const o of replay) expect((o as { reason: string }).reason).toMatch(/^REPLAY/);
  });

  it('a provider that goes away fails every open offer of the batch', async () => {
    const { coordinator, agent } = await pair();
    await serve(agent, async () => ({
      accept: true,
      run: () => new Promise<never>(() => undefined),
    }));
    const offers = await batchOffers(coordinator.peerId.toString(), 3);
    const promises = sendJobOffers(coordinator, agent.peerId.toString(), plain(offers));
    setTimeout(() => void agent.stop(), 200);
    const outcomes = await settled(promises);
    for (const o of outcomes) {
      expect(o).toBeInstanceOf(JobProtocolError);
      expect(['STREAM_RESET', 'DISCONNECTED']).toContain((o as JobProtocolError).code);
    }
  });

  it('a garbage batch frame closes that stream only; the agent serves the next batch and single offers', async () => {
    const { coordinator, agent } = await pair();
    const agentId = agent.peerId.toString();
    const streamErrors: string[] = [];
    await serve(
      agent,
      async (offer) => ({ accept: true, run: async () => resultFor(offer.payload, agentId) }),
      (_peer, code) => streamErrors.push(code),
    );
    const garbage = await coordinator.dialProtocol(agent.peerId, JOB_BATCH_PROTOCOL_ID);
    garbage.send(encodeFrame(new TextEncoder().encode('{"type":"offers","offers":[]}')));
    await waitFor(() => streamErrors.length === 1, 5000, 'stream error');
    expect(streamErrors).toEqual(['BAD_FRAME']);

    const offers = await batchOffers(coordinator.peerId.toString(), 2);
    const outcomes = await settled(sendJobOffers(coordinator, agentId, plain(offers)));
    expect(outcomes.map((o) => (o as { status: string }).status)).toEqual(['completed', 'completed']);
    // a batch-signed offer also travels alone on the single-offer protocol
    const [alone] = await batchOffers(coordinator.peerId.toString(), 2);
    const single = await sendJobOffer(coordinator, agent.peerId, alone, {
      providerAddress: PROVIDER_WALLET.address,
    });
    expect(single.status).toBe('completed');
  });
});
