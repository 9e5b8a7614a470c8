import { ADVERTS_TOPIC, type ProviderAdvert, type Signed } from '@gpumesh/protocol';
import {
  GossipValidationCounter,
  createGpumeshNode,
  MIN_SCORE_BEFORE_BAN,
  PeerScoreStore,
  encodeGossipPayload,
  startGossip,
  type GossipService,
  type GpumeshNode,
} from '@gpumesh/p2p';
import { afterEach, describe, expect, it } from 'vitest';

import {
  OTHER_PROVIDER_WALLET,
  PROVIDER_WALLET,
  connect,
  signedAdvert,
  startNodes,
  stopNodes,
  waitFor,
} from './support.js';

describe('advert gossip between real nodes', () => {
  let nodes: GpumeshNode[] = [];
  afterEach(async () => {
    await stopNodes(nodes);
    nodes = [];
  });

  interface Coordinator {
    readonly received: Signed<ProviderAdvert>[];
    readonly metrics: GossipValidationCounter;
    readonly peerScore: PeerScoreStore;
    readonly gossip: GossipService;
  }

  function coordinatorOn(node: GpumeshNode, peerScore = new PeerScoreStore()): Coordinator {
    const received: Signed<ProviderAdvert>[] = [];
    const metrics = new GossipValidationCounter();
    const gossip = startGossip(node, {
      handlers: { advert: (a) => void received.push(a) },
      metrics,
      peerScore,
    });
    return { received, metrics, peerScore, gossip };
  }

  async function linked(agent: GpumeshNode, coordinator: GpumeshNode): Promise<GossipService> {
    const gossip = startGossip(agent);
    await connect(agent, coordinator);
    await waitFor(
      () => gossip.topicPeers('advert').includes(coordinator.peerId.toString()),
      5000,
      'subscription',
    );
    return gossip;
  }

  it('delivers a signed advert from an agent to the coordinator and to a third node', async () => {
    nodes = await startNodes(3);
    const [coordinatorNode, agentNode, observerNode] = nodes;
    const coordinator = coordinatorOn(coordinatorNode);
    const observer = coordinatorOn(observerNode);
    await connect(observerNode, coordinatorNode);
    const agent = await linked(agentNode, coordinatorNode);

    const advert = await signedAdvert(PROVIDER_WALLET, agentNode.peerId.toString(), { seq: 1 });
    const started = performance.now();
    await agent.publishAdvert(advert);
    await waitFor(() => coordinator.received.length === 1, 5000, 'delivery to the coordinator');
    const latencyMs = performance.now() - started;
    await waitFor(() => observer.received.length === 1, 5000, 'forwarding to the observer');

    expect(coordinator.received[0]).toEqual(advert);
    expect(observer.received[0].payload.peerId).toBe(agentNode.peerId.toString());
    expect(coordinator.metrics.get(ADVERTS_TOPIC, 'ACCEPT', 'OK')).toBe(1);
    console.info(`[p2p] gossip delivery latency ${latencyMs.toFixed(1)} ms`);
  });

  it('rejects forged adverts and penalises the sender; ignores replays and expired adverts', async () => {
    nodes = await startNodes(2);
    const [coordinatorNode, agentNode] = nodes;
    const coordinator = coordinatorOn(coordinatorNode);
    const agent = await linked(agentNode, coordinatorNode);
    const agentId = agentNode.peerId.toString();
    const pubsub = agentNode.services.pubsub;

    const good = await signedAdvert(PROVIDER_WALLET, agentId, { seq: 10 });

    // the genuine advert, then a replay of it and an older one: ignored
    await agent.publishAdvert(good);
    await waitFor(() => coordinator.received.length === 1);
    await agent.publishAdvert(good);
    await waitFor(() => coordinator.metrics.get(ADVERTS_TOPIC, 'IGNORE', 'REPLAY') === 1);
    await agent.publishAdvert(await signedAdvert(PROVIDER_WALLET, agentId, { seq: 9 }));
    await waitFor(() => coordinator.metrics.get(ADVERTS_TOPIC, 'IGNORE', 'STALE') === 1);

    // expired long ago (beyond the tolerated clock skew): ignored, no penalty
    const expired = await signedAdvert(PROVIDER_WALLET, agentId, {
      seq: 11,
      issuedAt: Date.now() - 5 * 60_000,
      ttlMs: 60_000,
    });
    await agent.publishAdvert(expired);
    await waitFor(() => coordinator.metrics.get(ADVERTS_TOPIC, 'IGNORE', 'EXPIRED') === 1);
    const afterIgnored = coordinator.peerScore.getScore(agentId);
    expect(afterIgnored).toBeCloseTo(-1, 2); // only the replay costs anything
    expect(coordinator.peerScore.getState(agentId)).toBe('healthy');

    // tampered payload: the signature no longer matches -> REJECT and a penalty
    const tampered = { ...good, payload: { ...good.payload, seq: 12, gflops: 50_000 } }; // in range
    await pubsub.publish(ADVERTS_TOPIC, encodeGossipPayload('advert', tampered));
    await waitFor(() => coordinator.metrics.get(ADVERTS_TOPIC, 'REJECT', 'BAD_SIGNATURE') === 1);
    const afterForgery = coordinator.peerScore.getScore(agentId);
    expect(afterForgery).toBeLessThan(afterIgnored - 9);

    // a valid advert of another peer, re-published by this one -> REJECT and a penalty
    const stolen = await signedAdvert(OTHER_PROVIDER_WALLET, agentId, {
      bindingPeerId: coordinatorNode.peerId.toString(),
    });
    await agent.publishAdvert(stolen);
    await waitFor(() => coordinator.metrics.get(ADVERTS_TOPIC, 'REJECT', 'PEER_ID_MISMATCH') === 1);
    expect(coordinator.peerScore.getScore(agentId)).toBeLessThan(afterForgery);

    expect(coordinator.received).toHaveLength(1);
    expect(coordinator.peerScore.getState(agentId)).toBe('disconnect');
  });

  it('disconnects, then bans and refuses a peer whose score falls below the ban threshold', async () => {
    const peerScore = new PeerScoreStore();
    const refused: string[] = [];
    const coordinatorNode = await createGpumeshNode({
      isPeerDenied: (peer) => {
        const banned = peerScore.isBanned(peer);
        if (banned) refused.push(peer);
        return banned;
      },
    });
    const agentNode = await createGpumeshNode();
    nodes = [coordinatorNode, agentNode];
    const coordinator = coordinatorOn(coordinatorNode, peerScore);
    const agentId = agentNode.peerId.toString();

    const gossip = startGossip(agentNode);
    const good = await signedAdvert(PROVIDER_WALLET, agentId, { seq: 1 });
    // each forgery costs 10; the peer is disconnected at -20 and comes back until it is banned at -50
    for (let i = 0; i < 10 && !coordinator.peerScore.isBanned(agentId); i++) {
      if (agentNode.getConnections(coordinatorNode.peerId).length === 0) {
        await connect(agentNode, coordinatorNode);
        await waitFor(() => gossip.topicPeers('advert').includes(coordinatorNode.peerId.toString()));
      }
      const tampered = { ...good, payload: { ...good.payload, gflops: 100 + i } };
      await agentNode.services.pubsub.publish(ADVERTS_TOPIC, encodeGossipPayload('advert', tampered));
      await waitFor(() => coordinator.metrics.get(ADVERTS_TOPIC, 'REJECT') > i, 5000, `rejection ${i}`);
      if (coordinator.peerScore.getState(agentId) !== 'healthy') {
        await waitFor(() => agentNode.getConnections(coordinatorNode.peerId).length === 0, 5000, 'hang-up');
      }
    }
    await waitFor(() => coordinator.peerScore.isBanned(agentId), 5000, 'ban');
    await waitFor(() => coordinatorNode.getConnections(agentNode.peerId).length === 0, 5000, 'disconnect');
    // scores decay between penalties, so the fifth forgery may land just above the threshold
    expect(coordinator.metrics.get(ADVERTS_TOPIC, 'REJECT', 'BAD_SIGNATURE')).toBeGreaterThanOrEqual(
      -MIN_SCORE_BEFORE_BAN / 10,
    );
    // the banned peer can no longer connect (the coordinator's connection gater refuses it)
    await agentNode.dial(coordinatorNode.getMultiaddrs()[0]).catch(() => undefined);
    await waitFor(() => agentNode.getConnections(coordinatorNode.peerId).length === 0, 5000, 'refusal');
    expect(refused).toContain(agentId);
    expect(coordinatorNode.getConnections(agentNode.peerId)).toHaveLength(0);
  });
});
