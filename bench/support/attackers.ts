// Attackers for the p2p-attack bench (bench/p2p-attack.bench.ts): each one a real bare libp2p node
// (`createGpumeshNode` with a fresh key) that speaks to a coordinator the way an agent would, and
// lies. Adverts are signed with fresh ethers wallets exactly as the agent signs them
// (apps/provider-agent/src/daemon/agent.ts); nothing here reaches into the coordinator.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { publicKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey, Stream } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { Wallet, type HDNodeWallet } from 'ethers';
import {
  JOB_BATCH_PROTOCOL_ID,
  JOB_PROTOCOL_ID,
  createPeerBinding,
  decodeTensor,
  encodeTensor,
  hashOutputs,
  hashTensors,
  signPayload,
  type JobOffer,
  type PeerBinding,
  type ProviderAdvert,
  type Signed,
  type TensorWire,
} from '@gpumesh/protocol';
import {
  DATA_FRAME_MAX_BYTES,
  FramedStream,
  OfferFrameSchema,
  OffersFrameSchema,
  createGpumeshNode,
  encodeVarint,
  fetchArtifact,
  generatePeerKey,
  nodePeerId,
  startGossip,
  type GossipService,
  type GpumeshNode,
} from '@gpumesh/p2p';

type AnyWallet = Wallet | HDNodeWallet;

/** The coordinator's libp2p worker as `GET /v1/network` lists it. */
export interface CoordinatorPeer {
  readonly peerId: string;
  readonly multiaddrs: readonly string[];
  readonly signerAddress: string;
}

/** How long a dial or a gossip subscription may take before the attacker gives up. */
const ATTACKER_READY_TIMEOUT_MS = 15_000;
/** How often an advertising attacker re-advertises (the agent re-advertises on change and on a timer). */
export const ATTACKER_ADVERT_EVERY_MS = 2_000;
/** Lifetime of an attacker's adverts (the agent's is 60 s). */
export const ATTACKER_ADVERT_TTL_MS = 60_000;
/** The capacity a liar claims: the "8 H100s at 400,000 GFLOP/s", for free. */
const LIAR_GFLOPS = 400_000;
const LIAR_GPUS = Array.from({ length: 8 }, () => ({ model: 'NVIDIA H100 80GB', vramMiB: 81_920 }));
const LIAR_SLOTS = 64;
const LIAR_PRICE = '0';
/** How long the connection flood may spend opening its connections, and one dial of it. */
const FLOOD_SETUP_TIMEOUT_MS = 20_000;
const FLOOD_DIAL_TIMEOUT_MS = 3_000;
/** Streams an oversize attacker feeds at once (the issue saw 6 streams add ~450 MB). */
const DEFAULT_OVERSIZE_STREAMS = 6;
/** Bytes a half-frame liar announces in its length prefix, and how many of them it sends. */
const HALF_FRAME_ANNOUNCED_BYTES = 4_096;
const HALF_FRAME_SENT_BYTES = 512;

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The coordinator's p2p peer from `GET /v1/network` (retried while it starts). */
export async function coordinatorPeer(apiUrl: string): Promise<CoordinatorPeer> {
  const until = Date.now() + ATTACKER_READY_TIMEOUT_MS;
  for (;;) {
    const body = (await (await fetch(`${apiUrl}/v1/network`)).json()) as { peers?: CoordinatorPeer[] };
    const peer = body.peers?.[0];
    if (peer && peer.multiaddrs.length > 0) return peer;
    if (Date.now() > until)
      throw new Error(`ATTACKER_NO_COORDINATOR: ${apiUrl}/v1/network lists no p2p peer`);
    await pause(200);
  }
}

/** Capacity and price claimed in an advert (defaults: the liar's). */
export interface AdvertClaim {
  readonly gflops?: number;
  readonly price?: string;
  readonly slots?: number;
  readonly ttlMs?: number;
}

/** Signs an advert for `peerId` with `wallet` the way the agent does. */
export async function signAdvert(
  wallet: AnyWallet,
  peerId: string,
  binding: PeerBinding,
  seq: number,
  claim: AdvertClaim = {},
): Promise<Signed<ProviderAdvert>> {
  const now = Date.now();
  const address = wallet.address.toLowerCase();
  const slots = claim.slots ?? LIAR_SLOTS;
  return signPayload(
    'advert',
    {
      version: 1,
      peerId,
      address,
      operatorId: address,
      seq,
      issuedAt: now,
      expiresAt: now + (claim.ttlMs ?? ATTACKER_ADVERT_TTL_MS),
      backend: 'tensorflow-gpu',
      gpus: LIAR_GPUS,
      gflops: claim.gflops ?? LIAR_GFLOPS,
      pricePerUnit: claim.price ?? LIAR_PRICE,
      slots,
      freeSlots: slots,
      binding,
    },
    wallet,
  );
}

/** What a job-protocol attacker does with the offers it gets. */
export type JobBehaviour =
  /** Does not serve the job protocols at all (offers fail to negotiate). */
  | 'non-serving'
  /** Accepts every offer and never answers. */
  | 'stall'
  /** Accepts, then sends the start of a frame and stops. */
  | 'half-frame'
  /** Accepts, then sends one huge result frame per stream. */
  | 'oversize'
  /** Accepts, computes the right result and signs its receipt with another wallet. */
  | 'forged-receipt';

export interface AttackerOptions {
  /** libp2p key (a fresh one when absent); the banned-peer attack reconnects with the same one. */
  readonly privateKey?: PrivateKey;
  /** Advert wallet (a fresh one when absent). */
  readonly wallet?: AnyWallet;
  readonly behaviour: JobBehaviour;
  /** Bytes of an `oversize` result frame (capped at the frame limit). */
  readonly oversizeBytes?: number;
  /** Most streams an `oversize` attacker answers with a huge frame at once; the others it stalls. */
  readonly oversizeStreams?: number;
  /** Advertise every ATTACKER_ADVERT_EVERY_MS (default true). */
  readonly advertise?: boolean;
}

/** A connected attacker node. */
export interface Attacker {
  readonly node: GpumeshNode;
  readonly peerId: string;
  readonly privateKey: PrivateKey;
  readonly wallet: AnyWallet;
  readonly gossip: GossipService;
  /** Offers it received (each offer of a batch counted). */
  readonly offers: number;
  /** Adverts it published. */
  readonly adverts: number;
  /** Publishes one advert now. */
  advertise(): Promise<void>;
  /** Is it connected to the coordinator right now? */
  connected(): boolean;
  stop(): Promise<void>;
}

/** Dials the coordinator and waits until its gossipsub subscription to adverts is known. */
async function joinCoordinator(
  node: GpumeshNode,
  gossip: GossipService,
  coordinator: CoordinatorPeer,
): Promise<void> {
  await node.dial(multiaddr(coordinator.multiaddrs[0]), {
    signal: AbortSignal.timeout(ATTACKER_READY_TIMEOUT_MS),
  });
  const until = Date.now() + ATTACKER_READY_TIMEOUT_MS;
  while (!gossip.topicPeers('advert').includes(coordinator.peerId)) {
    if (Date.now() > until)
      throw new Error('ATTACKER_NO_SUBSCRIPTION: the coordinator never subscribed to adverts');
    await pause(100);
  }
}

/** The reference matmul of a spec's `a` × `b`, named `c` like the agent's kernel. */
function matmul(spec: JobOffer['spec']): TensorWire[] {
  const a = spec.inputs.find((t) => t.name === 'a');
  const b = spec.inputs.find((t) => t.name === 'b');
  if (!a || !b) return [encodeTensor('c', 'float32', [1], Float32Array.from([0]))];
  const [m, k] = a.shape;
  const n = b.shape[1];
  const av = decodeTensor(a).values;
  const bv = decodeTensor(b).values;
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let x = 0; x < k; x++) s += Number(av[i * k + x]) * Number(bv[x * n + j]);
      out[i * n + j] = s;
    }
  return [encodeTensor('c', 'float32', [m, n], out)];
}

/** A result frame body of `bytes` bytes: valid JSON, one output whose data is `bytes` of base64 'A'. */
function oversizeBody(batch: boolean, bytes: number): Uint8Array {
  const size = Math.min(bytes, DATA_FRAME_MAX_BYTES - 1024);
  const head = batch
    ? '{"type":"results","results":[{"index":0,"type":"result","outputs":[{"name":"c","dtype":"float32","shape":[1],"data":"'
    : '{"type":"result","outputs":[{"name":"c","dtype":"float32","shape":[1],"data":"';
  const tail = '"}],"receipt":{"payload":{},"signature":"0x","signer":"0x"}' + (batch ? '}]}' : '}');
  const body = new Uint8Array(size);
  body.fill(0x41); // 'A'
  const enc = new TextEncoder();
  body.set(enc.encode(head), 0);
  body.set(enc.encode(tail), size - tail.length);
  return body;
}

/** Keeps a stream open, reading and dropping whatever the coordinator sends, until it ends. */
async function hold(framed: FramedStream): Promise<void> {
  try {
    while ((await framed.readBytesOrEnd()) !== undefined);
  } catch {
    // reset by the coordinator: the attack on this stream is over
  }
}

/** Writes raw bytes to a stream, waiting for the muxer to drain. */
async function sendRaw(stream: Stream, bytes: Uint8Array): Promise<void> {
  if (!stream.send(bytes)) await stream.onDrain();
}

/**
 * A bare node that advertises a huge, free capacity and mistreats the job protocols per `behaviour`.
 * Connected (and subscribed) when this resolves.
 */
export async function startAttacker(
  coordinator: CoordinatorPeer,
  options: AttackerOptions,
): Promise<Attacker> {
  const privateKey = options.privateKey ?? (await generatePeerKey());
  const wallet = options.wallet ?? Wallet.createRandom();
  const node = await createGpumeshNode({ privateKey, listen: [] });
  const peerId = nodePeerId(node);
  const gossip = startGossip(node, {});
  const binding = await createPeerBinding(wallet, peerId);
  const forger = Wallet.createRandom();
  const address = wallet.address.toLowerCase();
  const state = { offers: 0, adverts: 0, seq: 0, oversizeStreams: 0 };
  const oversize = new Map<boolean, Uint8Array>();
  const bodyFor = (batch: boolean): Uint8Array => {
    let body = oversize.get(batch);
    if (!body) {
      body = oversizeBody(batch, options.oversizeBytes ?? DATA_FRAME_MAX_BYTES);
      oversize.set(batch, body);
    }
    return body;
  };

  const serve = async (stream: Stream, batch: boolean): Promise<void> => {
    const framed = new FramedStream(stream, { maxFrameBytes: DATA_FRAME_MAX_BYTES });
    try {
      const offers: Signed<JobOffer>[] = batch
        ? ((await framed.read(OffersFrameSchema, { timeoutMs: 30_000 })).offers as Signed<JobOffer>[])
        : [(await framed.read(OfferFrameSchema, { timeoutMs: 30_000 })).offer as Signed<JobOffer>];
      state.offers += offers.length;
      await framed.write(
        batch ? { type: 'decisions', decisions: offers.map(() => ({ type: 'accept' })) } : { type: 'accept' },
      );
      switch (options.behaviour) {
        case 'stall':
          await hold(framed);
          return;
        case 'half-frame': {
          const partial = new Uint8Array(HALF_FRAME_SENT_BYTES).fill(0x20); // JSON whitespace
          await sendRaw(stream, Uint8Array.from([...encodeVarint(HALF_FRAME_ANNOUNCED_BYTES), ...partial]));
          await hold(framed);
          return;
        }
        case 'oversize':
          if (state.oversizeStreams < (options.oversizeStreams ?? DEFAULT_OVERSIZE_STREAMS)) {
            state.oversizeStreams += 1;
            try {
              await framed.writeBytes(bodyFor(batch));
            } finally {
              state.oversizeStreams -= 1;
            }
          }
          await hold(framed);
          return;
        case 'forged-receipt': {
          const results = await Promise.all(
            offers.map(async (signed, index) => {
              const offer = signed.payload;
              const outputs = matmul(offer.spec);
              // Claims to be this provider, signed by a wallet that is not.
              const receipt = await signPayload(
                'receipt',
                {
                  version: 1,
                  jobId: offer.jobId,
                  attempt: offer.attempt,
                  providerPeerId: peerId,
                  providerAddress: address,
                  inputHash: hashTensors(offer.spec.inputs),
                  outputHash: hashOutputs(outputs),
                  backend: 'tensorflow-gpu',
                  timings: { queuedMs: 0, runMs: 1, totalMs: 1 },
                  finishedAt: Date.now(),
                },
                forger,
              );
              return { index, type: 'result', outputs, receipt };
            }),
          );
          if (batch) await framed.write({ type: 'results', results });
          else
            await framed.write({ type: 'result', outputs: results[0].outputs, receipt: results[0].receipt });
          await framed.close();
          await hold(framed);
          return;
        }
        case 'non-serving':
          return;
      }
    } catch {
      // the coordinator gave up on this stream: that is what the attack wanted
    }
  };

  if (options.behaviour !== 'non-serving') {
    await node.handle(JOB_PROTOCOL_ID, (stream) => void serve(stream, false), { maxInboundStreams: 1024 });
    await node.handle(JOB_BATCH_PROTOCOL_ID, (stream) => void serve(stream, true), {
      maxInboundStreams: 1024,
    });
  }
  await joinCoordinator(node, gossip, coordinator);

  const advertise = async (): Promise<void> => {
    state.seq = Math.max(Date.now(), state.seq + 1);
    const advert = await signAdvert(wallet, peerId, binding, state.seq);
    await gossip.publishAdvert(advert).catch(() => 0);
    state.adverts += 1;
  };
  await advertise();
  const timer =
    options.advertise === false ? undefined : setInterval(() => void advertise(), ATTACKER_ADVERT_EVERY_MS);

  return {
    node,
    peerId,
    privateKey,
    wallet,
    gossip,
    get offers() {
      return state.offers;
    },
    get adverts() {
      return state.adverts;
    },
    advertise,
    connected: () => node.getPeers().some((p) => p.toString() === coordinator.peerId),
    stop: async () => {
      if (timer) clearInterval(timer);
      gossip.stop();
      await node.stop();
    },
  };
}

/** A ghost: an identity (libp2p key + wallet) that never connects to anyone. */
export interface Ghost {
  readonly peerId: string;
  readonly privateKey: PrivateKey;
  readonly wallet: AnyWallet;
  readonly binding: PeerBinding;
}

/**
 * `count` ghost identities. Wallets are shared round robin among at most `wallets` of them (a flood
 * of thousands needs no thousand wallets: the coordinator keys providers by peer id).
 */
export async function makeGhosts(count: number, wallets = count): Promise<Ghost[]> {
  // A random key, not `Wallet.createRandom()`: no mnemonic to derive, so thousands take moments.
  const pool = Array.from(
    { length: Math.max(1, Math.min(count, wallets)) },
    () => new Wallet(`0x${randomBytes(32).toString('hex')}`),
  );
  const ghosts: Ghost[] = [];
  for (let i = 0; i < count; i++) {
    const privateKey = await generatePeerKey();
    const peerId = peerIdFromPrivateKey(privateKey).toString();
    const wallet = pool[i % pool.length];
    ghosts.push({ peerId, privateKey, wallet, binding: await createPeerBinding(wallet, peerId) });
  }
  return ghosts;
}

/** gossipsub's signing identity for what a node publishes (a field of the router, not of its API). */
interface PublishConfig {
  type: unknown;
  author: unknown;
  key: Uint8Array;
  privateKey: PrivateKey;
}

/** A relay: one connected node that publishes adverts of ghosts, each gossip-signed by its ghost. */
export interface GhostRelay {
  readonly node: GpumeshNode;
  readonly peerId: string;
  /**
   * Publishes one advert per ghost, in order, through the relay's one connection (each message is
   * signed by the ghost's own libp2p key, as if the relay only forwarded it). Resolves how many the
   * relay sent to at least one peer.
   */
  publish(ghosts: readonly Ghost[], claim?: AdvertClaim): Promise<number>;
  stop(): Promise<void>;
}

export async function startGhostRelay(coordinator: CoordinatorPeer): Promise<GhostRelay> {
  const node = await createGpumeshNode({ listen: [] });
  const gossip = startGossip(node, {});
  await joinCoordinator(node, gossip, coordinator);
  const router = node.services.pubsub as unknown as { publishConfig?: PublishConfig };
  const own = router.publishConfig;
  if (!own) throw new Error('ATTACKER_NO_PUBLISH_CONFIG: gossipsub has no publishConfig to borrow');
  const seqs = new Map<string, number>();
  return {
    node,
    peerId: nodePeerId(node),
    async publish(ghosts, claim = {}) {
      let sent = 0;
      for (const ghost of ghosts) {
        const signer = ghost.wallet.address;
        const seq = Math.max(Date.now(), (seqs.get(signer) ?? 0) + 1);
        seqs.set(signer, seq);
        const advert = await signAdvert(ghost.wallet, ghost.peerId, ghost.binding, seq, claim);
        router.publishConfig = {
          type: own.type,
          author: peerIdFromPrivateKey(ghost.privateKey),
          key: publicKeyToProtobuf(ghost.privateKey.publicKey),
          privateKey: ghost.privateKey,
        };
        try {
          if ((await gossip.publishAdvert(advert)) > 0) sent += 1;
        } catch {
          // not sent (no peer took it): counted as not sent
        } finally {
          router.publishConfig = own;
        }
      }
      return sent;
    },
    stop: async () => {
      gossip.stop();
      await node.stop();
    },
  };
}

/** Junk connections: libp2p connections from fresh identities that do nothing, and raw TCP sockets. */
export interface ConnectionFlood {
  /** libp2p connections opened (and still open when counted). */
  openConnections(): number;
  /** Raw TCP sockets still open. */
  openSockets(): number;
  stop(): Promise<void>;
}

/**
 * Opens `connections` libp2p connections to the coordinator from `identities` fresh nodes (each
 * dialling again with `force` for a new connection), and `sockets` raw TCP sockets that never speak.
 */
export async function startConnectionFlood(
  coordinator: CoordinatorPeer,
  options: { connections: number; identities: number; sockets: number; setupTimeoutMs?: number },
): Promise<ConnectionFlood> {
  const setupDeadline = Date.now() + (options.setupTimeoutMs ?? FLOOD_SETUP_TIMEOUT_MS);
  const address = multiaddr(coordinator.multiaddrs[0]);
  const nodes: GpumeshNode[] = [];
  const identities = Math.max(1, Math.min(options.identities, options.connections));
  for (let i = 0; i < identities; i++) nodes.push(await createGpumeshNode({ listen: [] }));
  // One identity's dials go one after another: libp2p joins concurrent dials to one peer into one.
  await Promise.all(
    nodes.map(async (node, k) => {
      for (let i = k; i < options.connections && Date.now() < setupDeadline; i += nodes.length) {
        const left = Math.max(1, Math.min(FLOOD_DIAL_TIMEOUT_MS, setupDeadline - Date.now()));
        await node.dial(address, { force: true, signal: AbortSignal.timeout(left) }).catch(() => undefined);
      }
    }),
  );
  const tcp = /\/ip[46]\/([^/]+)\/tcp\/(\d+)/.exec(coordinator.multiaddrs[0]);
  if (!tcp) throw new Error(`ATTACKER_NO_TCP_ADDRESS: ${coordinator.multiaddrs[0]}`);
  const [, host, port] = tcp;
  const sockets = new Set<Socket>();
  for (let i = 0; i < options.sockets; i++) {
    const socket = connect(Number(port), host);
    socket.on('error', () => sockets.delete(socket));
    socket.on('close', () => sockets.delete(socket));
    sockets.add(socket);
  }
  return {
    openConnections: () =>
      nodes.reduce((n, node) => n + node.getConnections().filter((c) => c.status === 'open').length, 0),
    openSockets: () => sockets.size,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}

/** A stranger asking the coordinator for artifacts by hash, with no offer that names them. */
export interface StrangerFetcher {
  readonly peerId: string;
  /** Fetches answered with the artifact. */
  readonly served: number;
  /** Fetches refused or failed. */
  readonly refused: number;
  /** Weight bytes received. */
  readonly bytes: number;
  stop(): Promise<void>;
}

/** Fetches `hash` from the coordinator in a loop, `concurrency` at a time, until stopped. */
export async function startStrangerFetcher(
  coordinator: CoordinatorPeer,
  hash: string,
  concurrency: number,
): Promise<StrangerFetcher> {
  const node = await createGpumeshNode({ listen: [] });
  const gossip = startGossip(node, {});
  await joinCoordinator(node, gossip, coordinator);
  const state = { served: 0, refused: 0, bytes: 0, stopping: false };
  const loops = Array.from({ length: Math.max(1, concurrency) }, async () => {
    while (!state.stopping) {
      try {
        const artifact = await fetchArtifact(node, coordinator.peerId, hash, { timeoutMs: 10_000 });
        state.served += 1;
        state.bytes += artifact.weights.byteLength;
      } catch {
        state.refused += 1;
        await pause(100);
      }
    }
  });
  return {
    peerId: nodePeerId(node),
    get served() {
      return state.served;
    },
    get refused() {
      return state.refused;
    },
    get bytes() {
      return state.bytes;
    },
    stop: async () => {
      state.stopping = true;
      await Promise.all(loops);
      gossip.stop();
      await node.stop();
    },
  };
}
