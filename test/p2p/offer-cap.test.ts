// An agent reads a job offer (up to 96 MiB) before it can check who signed it, so the frame cap is
// chosen from the remote peer first: a stranger is cut off beyond 1 MiB, the coordinator peers of the
// bootstrap list may send large offers, and another worker becomes one with its first verified offer.
import {
  JOB_PROTOCOL_ID,
  PROTOCOL_VERSION,
  encodeTensor,
  hashSpec,
  parseJobSpec,
  randomNonce,
  signPayload,
  type JobOffer,
  type Signed,
} from '@gpumesh/protocol';
import {
  DATA_FRAME_MAX_BYTES,
  JobProtocolError,
  createGpumeshNode,
  encodeVarint,
  handleJobOffers,
  sendJobOffer,
  type GpumeshNode,
} from '@gpumesh/p2p';
import { randomUUID } from 'node:crypto';
import type { Wallet } from 'ethers';
import { afterEach, describe, expect, it } from 'vitest';

import { coordinatorOfferPolicy } from '../../apps/provider-agent/src/daemon/offer-policy.js';
import {
  COORDINATOR_WALLET,
  OTHER_PROVIDER_WALLET,
  PROVIDER_WALLET,
  connect,
  signedOffer,
  stopNodes,
  waitFor,
} from './support.js';

/** An n×n by n×n matmul offer; n = 600 makes about 3.8 MiB of frame, over the 1 MiB stranger cap. */
async function largeOffer(
  coordinatorPeerId: string,
  n = 600,
  wallet: Wallet = COORDINATOR_WALLET,
): Promise<Signed<JobOffer>> {
  const values = Float32Array.from({ length: n * n }, (_, i) => (i % 97) / 7);
  const spec = parseJobSpec({
    version: PROTOCOL_VERSION,
    kind: 'matmul',
    inputs: [encodeTensor('a', 'float32', [n, n], values), encodeTensor('b', 'float32', [n, n], values)],
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
      deadlineAt: now + 60_000,
      coordinatorPeerId,
      nonce: randomNonce(),
      issuedAt: now,
    },
    wallet,
  );
}

describe('offer frame cap by sender', () => {
  let nodes: GpumeshNode[] = [];
  afterEach(async () => {
    await stopNodes(nodes);
    nodes = [];
  });

  it('cuts a stranger off beyond 1 MiB, takes large offers from coordinator peers', async () => {
    const [agent, coordinator, otherWorker, stranger] = await Promise.all(
      Array.from({ length: 4 }, () => createGpumeshNode()),
    );
    nodes = [agent, coordinator, otherWorker, stranger];
    for (const n of [coordinator, otherWorker, stranger]) await connect(n, agent);

    const coordinatorPeers = new Set([coordinator.peerId.toString()]);
    const streamErrors: { peer: string; code: string; message: string }[] = [];
    await handleJobOffers(agent, {
      ...coordinatorOfferPolicy({ coordinatorAddress: COORDINATOR_WALLET.address, coordinatorPeers }),
      // Read and verified: that is all this test needs to know.
      onOffer: async () => ({ accept: false, reason: 'READ' }),
      onStreamError: (peer, err) => streamErrors.push({ peer, code: err.code, message: err.message }),
    });
    const options = { providerAddress: PROVIDER_WALLET.address };
    const strangerId = stranger.peerId.toString();
    const otherId = otherWorker.peerId.toString();

    // A stranger declares a 90 MiB frame: refused at the length prefix, before any body is buffered.
    const declared = await stranger.dialProtocol(agent.peerId, JOB_PROTOCOL_ID);
    declared.send(encodeVarint(90 * 1024 * 1024));
    declared.send(new Uint8Array(64 * 1024));
    await waitFor(() => streamErrors.length === 1, 5000, 'stranger cut off');
    expect(streamErrors[0]).toMatchObject({ peer: strangerId, code: 'FRAME_TOO_LARGE' });
    expect(streamErrors[0].message).toMatch(/exceeds cap 1048576/);

    // The coordinator of the bootstrap list may send a large offer.
    const big = await largeOffer(coordinator.peerId.toString());
    expect(JSON.stringify({ type: 'offer', offer: big }).length).toBeGreaterThan(2 * 1024 * 1024);
    expect(JSON.stringify({ type: 'offer', offer: big }).length).toBeLessThan(DATA_FRAME_MAX_BYTES);
    expect(await sendJobOffer(coordinator, agent.peerId, big, options)).toMatchObject({
      status: 'rejected',
      reason: 'READ',
    });

    // Another worker (same coordinator key) not in the bootstrap list: its large first offer is cut
    // off, a small one is verified and makes it a coordinator peer, then large ones go through.
    await expect(
      sendJobOffer(otherWorker, agent.peerId, await largeOffer(otherId), options),
    ).rejects.toBeInstanceOf(JobProtocolError);
    expect(streamErrors.at(-1)).toMatchObject({ peer: otherId, code: 'FRAME_TOO_LARGE' });
    expect(await sendJobOffer(otherWorker, agent.peerId, await signedOffer(otherId), options)).toMatchObject({
      status: 'rejected',
      reason: 'READ',
    });
    expect(coordinatorPeers.has(otherId)).toBe(true);
    expect(await sendJobOffer(otherWorker, agent.peerId, await largeOffer(otherId), options)).toMatchObject({
      status: 'rejected',
      reason: 'READ',
    });

    // A stranger's small offer not signed by the coordinator is refused and gains it nothing.
    const forged = await sendJobOffer(
      stranger,
      agent.peerId,
      await largeOffer(strangerId, 2, OTHER_PROVIDER_WALLET),
      options,
    );
    expect(forged.status === 'rejected' && forged.reason.startsWith('SIGNER_MISMATCH')).toBe(true);
    expect(coordinatorPeers.has(strangerId)).toBe(false);
  }, 60_000);
});
