// mDNS on a LAN: two nodes with no bootstrap list find each other on the machine's real network
// interface (multicast 224.0.0.251:5353), connect, and gossip a signed advert.
import { afterEach, describe, expect, it } from 'vitest';
import { createGpumeshNode, startGossip, type GpumeshNode } from '@gpumesh/p2p';
import type { ProviderAdvert, Signed } from '@gpumesh/protocol';
import { PROVIDER_WALLET, signedAdvert, waitFor } from './support.js';

let nodes: GpumeshNode[] = [];

afterEach(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  nodes = [];
});

describe('mDNS discovery', () => {
  it('connects two nodes on the LAN without any bootstrap address, and gossip flows', async () => {
    const options = { mdns: true, listen: ['/ip4/0.0.0.0/tcp/0'] };
    nodes = [await createGpumeshNode(options), await createGpumeshNode(options)];
    const [listener, agent] = nodes;
    const received: Signed<ProviderAdvert>[] = [];
    startGossip(listener, { handlers: { advert: (a) => void received.push(a) } });
    const agentGossip = startGossip(agent);

    await waitFor(
      () => listener.getConnections(agent.peerId).length > 0,
      15_000,
      'an mDNS-discovered connection',
    );
    await waitFor(
      () => agentGossip.topicPeers('advert').includes(listener.peerId.toString()),
      10_000,
      'a gossip subscription over the discovered connection',
    );
    const advert = await signedAdvert(PROVIDER_WALLET, agent.peerId.toString(), { seq: 1 });
    await agentGossip.publishAdvert(advert);
    await waitFor(() => received.length === 1, 10_000, 'the advert');
    expect(received[0]).toEqual(advert);
    // Discovery alone: neither node was given the other's address.
    expect(listener.getConnections(agent.peerId)[0].remoteAddr.toString()).not.toContain('127.0.0.1');
  });
});
