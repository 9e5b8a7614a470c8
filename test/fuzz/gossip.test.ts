// A bare libp2p node (built here from the libp2p packages, not with our node factory or validators)
// publishes garbage, oversized, replayed and wrongly signed adverts on the advert topic to a real
// coordinator's p2p node. The coordinator survives, rejects or ignores each message with the right
// code (libs/p2p/src/gossip-validation.ts), penalises the senders, and honest adverts still get through.
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { noise } from '@libp2p/noise';
import { tcp } from '@libp2p/tcp';
import { yamux } from '@libp2p/yamux';
import { multiaddr } from '@multiformats/multiaddr';
import { Wallet, type HDNodeWallet } from 'ethers';
import fc from 'fast-check';
import { createLibp2p, type Libp2p } from 'libp2p';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADVERTS_TOPIC,
  PROTOCOL_VERSION,
  canonicalBytes,
  createPeerBinding,
  signPayload,
  signPersonalMessage,
} from '@gpumesh/protocol';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_108);
/** Garbage messages, spread over several sender identities (each is cut off after a few). */
const GARBAGE = Number(process.env.FUZZ_GOSSIP_RUNS ?? 30);

type Bare = Libp2p<{ pubsub: GossipSub; identify: ReturnType<ReturnType<typeof identify>> }>;

async function bareNode(): Promise<Bare> {
  return (await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: gossipsub({
        floodPublish: true,
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        // the router sends whatever we publish: no size cap of our own
        maxInboundDataLength: 4 * 1024 * 1024,
      }),
    },
  })) as unknown as Bare;
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 15_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `gpumesh_gossip_messages_total` by "verdict code" from the coordinator's /metrics. */
async function gossipCounts(base: string): Promise<Map<string, number>> {
  const text = (await api<string>(base, 'GET', '/metrics')).body;
  const counts = new Map<string, number>();
  for (const line of String(text).split('\n')) {
    const m = /^gpumesh_gossip_messages_total\{([^}]*)\} (\d+)/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    counts.set(`${labels.verdict} ${labels.code}`, Number(m[2]));
  }
  return counts;
}

const total = (counts: Map<string, number>, prefix: string): number =>
  [...counts].filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v, 0);

async function advert(
  wallet: Wallet | HDNodeWallet,
  peerId: string,
  overrides: Record<string, unknown> = {},
  signer: Wallet | HDNodeWallet = wallet,
): Promise<Record<string, unknown>> {
  const issuedAt = Date.now();
  return (await signPayload(
    'advert',
    {
      version: PROTOCOL_VERSION,
      peerId,
      address: wallet.address,
      operatorId: `fuzz-${wallet.address.slice(2, 8)}`,
      seq: issuedAt,
      issuedAt,
      expiresAt: issuedAt + 60_000,
      backend: 'wasm',
      gpus: [],
      gflops: 10,
      pricePerUnit: '5',
      slots: 1,
      freeSlots: 1,
      binding: await createPeerBinding(wallet, peerId, issuedAt - 1000),
      ...overrides,
    } as never,
    signer,
  )) as unknown as Record<string, unknown>;
}

const encode = (v: unknown): Uint8Array =>
  new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

describe('gossip fuzzing from a bare libp2p node', () => {
  let c: TestCoordinator;
  let coordinatorAddr: string;
  const nodes: Bare[] = [];

  beforeAll(async () => {
    c = await startTestCoordinator();
    const network = await api<{ peers: { multiaddrs: string[] }[] }>(c.url, 'GET', '/v1/network');
    coordinatorAddr = network.body.peers[0].multiaddrs[0];
    expect(coordinatorAddr).toMatch(/\/p2p\//);
  });
  afterAll(async () => {
    await Promise.all(nodes.map(async (n) => n.stop()));
    await c?.close();
  });

  /** A new bare node connected to the coordinator and sure the coordinator subscribes to adverts. */
  const joined = async (): Promise<Bare> => {
    const node = await bareNode();
    nodes.push(node);
    await node.dial(multiaddr(coordinatorAddr));
    node.services.pubsub.subscribe(ADVERTS_TOPIC);
    await waitFor('the coordinator in the advert topic', () =>
      node.services.pubsub.getSubscribers(ADVERTS_TOPIC).length > 0 ? true : undefined,
    );
    return node;
  };
  const coordinatorConnected = (node: Bare): boolean =>
    node.getConnections().some((conn) => conn.status === 'open');
  /** Publishes; resolves how many peers it was sent to (0 when the router refused or had none). */
  const publish = async (node: Bare, data: Uint8Array): Promise<number> => {
    const result = await node.services.pubsub.publish(ADVERTS_TOPIC, data).catch(() => undefined);
    return result?.recipients.length ?? 0;
  };

  it('rejects random garbage, cuts off its senders, and stays up', async () => {
    const before = await gossipCounts(c.url);
    const garbage = fc.sample(
      fc.oneof(
        fc.uint8Array({ maxLength: 512 }),
        fc.string({ unit: 'binary', maxLength: 300 }).map(encode),
        fc.jsonValue({ maxDepth: 4 }).map(encode),
        fc.constantFrom(
          encode(''),
          encode('{'),
          encode('null'),
          encode({ payload: {}, signature: '0x' }),
          encode({ type: 'advert', payload: { peerId: 'x' }, signer: '0x0', signature: '0x00' }),
          new Uint8Array([0xff, 0xfe, 0xfd]),
          encode(`${'['.repeat(50_000)}${']'.repeat(50_000)}`),
          encode({ __proto__: { admin: true }, constructor: { prototype: { x: 1 } } }),
        ),
        // oversized: above the advert cap (64 KiB), below the router's (256 KiB)
        fc.integer({ min: 65 * 1024, max: 200 * 1024 }).map((n) => encode({ pad: 'x'.repeat(n) })),
      ),
      { numRuns: GARBAGE, seed: SEED },
    );
    let sender = await joined();
    let cutOff = 0;
    let delivered = 0;
    for (const data of garbage) {
      if (!coordinatorConnected(sender)) {
        cutOff += 1;
        sender = await joined();
      }
      if ((await publish(sender, data)) > 0) delivered += 1;
      await new Promise((r) => setTimeout(r, 25));
    }
    // a message written just before the coordinator hung up may be dropped unread: at most one per sender
    const after = await waitFor('a verdict for every delivered garbage message', async () => {
      const counts = await gossipCounts(c.url);
      return total(counts, 'REJECT') - total(before, 'REJECT') >= delivered - cutOff ? counts : undefined;
    });
    const rejected = total(after, 'REJECT') - total(before, 'REJECT');
    expect(delivered).toBeGreaterThan(GARBAGE / 2);
    expect(rejected).toBeGreaterThanOrEqual(delivered - cutOff);
    expect(
      (after.get('REJECT UNDECODABLE') ?? 0) + (after.get('REJECT INVALID_MESSAGE') ?? 0),
    ).toBeGreaterThan(0);
    expect(after.get('REJECT MESSAGE_TOO_LARGE') ?? 0).toBeGreaterThan(0);
    expect(total(after, 'ACCEPT')).toBe(total(before, 'ACCEPT'));
    // 4 undecodable or invalid messages (-5 each) reach the disconnect threshold (-20): every sender
    // is hung up on after a handful
    expect(cutOff).toBeGreaterThanOrEqual(Math.floor(delivered / 6));
    expect((await api(c.url, 'GET', '/health/live')).status).toBe(200);
  }, 120_000);

  it('rejects wrongly signed adverts, ignores replays and stale ones, and lets honest adverts through', async () => {
    const node = await joined();
    const peerId = node.peerId.toString();
    const wallet = Wallet.createRandom();
    const other = Wallet.createRandom();
    const before = await gossipCounts(c.url);

    // honest: accepted and listed
    const honest = await advert(wallet, peerId);
    await publish(node, encode(honest));
    await waitFor('the honest provider in /v1/providers', async () => {
      const res = await api<{ peerId: string }[]>(c.url, 'GET', '/v1/providers');
      return res.body.some((p) => p.peerId === peerId) ? true : undefined;
    });
    // replayed (the same signed advert again) and stale (a lower seq): ignored
    await publish(node, encode(honest));
    await publish(
      node,
      encode(
        await advert(wallet, peerId, {
          seq: Number(honest.payload && (honest.payload as { seq: number }).seq) - 10,
        }),
      ),
    );
    // expired: ignored
    await publish(
      node,
      encode(
        await advert(wallet, peerId, {
          issuedAt: Date.now() - 120_000,
          expiresAt: Date.now() - 60_000,
          seq: Date.now() + 5,
        }),
      ),
    );
    const ignored = await waitFor('replay, stale and expired verdicts', async () => {
      const counts = await gossipCounts(c.url);
      return total(counts, 'IGNORE') - total(before, 'IGNORE') >= 3 ? counts : undefined;
    });
    expect((ignored.get('IGNORE REPLAY') ?? 0) - (before.get('IGNORE REPLAY') ?? 0)).toBe(1);
    expect((ignored.get('IGNORE STALE') ?? 0) - (before.get('IGNORE STALE') ?? 0)).toBe(1);

    // wrongly signed, from fresh senders (each forgery costs -10: two and a sender is cut off)
    const forgeries: [string, (p: string) => Promise<Record<string, unknown>>][] = [
      [
        'signed by another wallet, then claimed',
        async (p) => {
          const a = await advert(other, p, { seq: Date.now() + 100 });
          return { ...a, payload: { ...(a.payload as object), address: wallet.address.toLowerCase() } };
        },
      ],
      [
        'signature bytes flipped',
        async (p) => {
          const a = await advert(wallet, p, { seq: Date.now() + 200 });
          const sig = String(a.signature);
          return {
            ...a,
            signature: `${sig.slice(0, -6)}${sig.slice(-6) === 'abcdef' ? '123456' : 'abcdef'}`,
          };
        },
      ],
      [
        'payload changed after signing',
        async (p) => {
          const a = await advert(wallet, p, { seq: Date.now() + 300 });
          return { ...a, payload: { ...(a.payload as object), pricePerUnit: '1' } };
        },
      ],
      [
        "a valid signature by a key that is not the advert's address",
        async (p) => {
          const a = await advert(wallet, p, { seq: Date.now() + 350 });
          const signature = await signPersonalMessage(other, canonicalBytes('advert', a.payload));
          return { ...a, signature, signer: other.address.toLowerCase() };
        },
      ],
      ['advert for another peer id', () => advert(wallet, peerId, { seq: Date.now() + 400 })],
      [
        'peer binding signed by another key',
        async (p) => {
          const a = await advert(wallet, p, { seq: Date.now() + 500 });
          const issuedAt = Date.now() - 1000;
          const forged = await createPeerBinding(other, p, issuedAt);
          const binding = { ...(await createPeerBinding(wallet, p, issuedAt)), signature: forged.signature };
          const payload = { ...(a.payload as object), binding };
          const signature = await signPersonalMessage(wallet, canonicalBytes('advert', payload));
          return { ...a, payload, signature };
        },
      ],
    ];
    const rejectedBefore = total(await gossipCounts(c.url), 'REJECT');
    for (const [, forge] of forgeries) {
      const sender = await joined();
      await publish(sender, encode(await forge(sender.peerId.toString())));
    }
    const forged = await waitFor('a REJECT for every forgery', async () => {
      const counts = await gossipCounts(c.url);
      return total(counts, 'REJECT') - rejectedBefore >= forgeries.length ? counts : undefined;
    });
    const codes = ['BAD_SIGNATURE', 'SIGNER_MISMATCH', 'PEER_ID_MISMATCH', 'BAD_PEER_BINDING'];
    const forgedCodes = codes.filter(
      (code) => (forged.get(`REJECT ${code}`) ?? 0) > (before.get(`REJECT ${code}`) ?? 0),
    );
    expect(forgedCodes).toContain('PEER_ID_MISMATCH');
    expect(forgedCodes).toContain('BAD_PEER_BINDING');
    expect(forgedCodes).toContain('BAD_SIGNATURE');
    expect(forgedCodes).toContain('SIGNER_MISMATCH');
    // none of the forgeries changed the honest provider's price
    const listed = await api<{ peerId: string; pricePerUnit: string }[]>(c.url, 'GET', '/v1/providers');
    expect(listed.body.find((p) => p.peerId === peerId)?.pricePerUnit).toBe('5');

    // a forger is hung up on after two or three forgeries
    const villain = await joined();
    const villainWallet = Wallet.createRandom();
    for (let i = 0; i < 8 && coordinatorConnected(villain); i++) {
      const a = await advert(villainWallet, villain.peerId.toString(), { seq: Date.now() + i });
      await publish(villain, encode({ ...a, payload: { ...(a.payload as object), gflops: 50_000 } })); // in range: only the signature is wrong
      await new Promise((r) => setTimeout(r, 30));
    }
    await waitFor('the coordinator to hang up on the forger', () =>
      coordinatorConnected(villain) ? undefined : true,
    );

    // honest adverts still get through: a new provider, and the first one's next advert
    const fresh = await joined();
    const freshWallet = Wallet.createRandom();
    await publish(fresh, encode(await advert(freshWallet, fresh.peerId.toString(), { pricePerUnit: '7' })));
    await publish(
      node,
      encode(await advert(wallet, peerId, { seq: Date.now() + 10_000, pricePerUnit: '6' })),
    );
    await waitFor('both honest adverts applied', async () => {
      const res = await api<{ peerId: string; pricePerUnit: string }[]>(c.url, 'GET', '/v1/providers');
      const a = res.body.find((p) => p.peerId === peerId);
      const b = res.body.find((p) => p.peerId === fresh.peerId.toString());
      return a?.pricePerUnit === '6' && b?.pricePerUnit === '7' ? true : undefined;
    });
    expect((await api(c.url, 'GET', '/health/live')).status).toBe(200);
  }, 120_000);
});
