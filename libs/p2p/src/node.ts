import { GOSSIP_TOPICS } from '#protocol';
import { bootstrap } from '@libp2p/bootstrap';
import { gossipsub, StrictSign, type GossipSub } from '@libp2p/gossipsub';
import { identify, type Identify } from '@libp2p/identify';
import { KEEP_ALIVE, type PrivateKey } from '@libp2p/interface';
import { mdns } from '@libp2p/mdns';
import { noise } from '@libp2p/noise';
import { ping, type Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { yamux } from '@libp2p/yamux';
import { createLibp2p, type Libp2p, type Libp2pOptions } from 'libp2p';

import { coalesceTcpWrites } from './coalesce-writes.js';
import { GOSSIP_MAX_MESSAGE_BYTES } from './gossip-topics.js';
import { generatePeerKey } from './peer-key.js';

export const DEFAULT_LISTEN_ADDRESSES: readonly string[] = ['/ip4/127.0.0.1/tcp/0'];

/** Connection manager defaults: a coordinator serves many agents, an agent needs few peers. */
export const DEFAULT_MAX_CONNECTIONS = 300;
export const DEFAULT_DIAL_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_INCOMING_PENDING_CONNECTIONS = 50;
/**
 * New inbound connections accepted per second from one host. libp2p's default (5) turns away agents
 * that share an address (one NAT, one machine) when they all (re)connect at once, e.g. after a
 * coordinator restart; they would only come back after their redial backoff.
 */
export const DEFAULT_INBOUND_CONNECTIONS_PER_HOST_PER_SECOND = 100;

/**
 * Gossipsub mesh degrees for a small network (a coordinator and a few agents): small meshes, and
 * flood publishing so an origin reaches every subscribed peer even while the mesh is still forming.
 */
export const GOSSIP_MESH_D = 4;
export const GOSSIP_MESH_D_LO = 2;
export const GOSSIP_MESH_D_HI = 8;
export const GOSSIP_MESH_D_OUT = 1;
export const GOSSIP_HEARTBEAT_INTERVAL_MS = 700;
/** Peers from one IP beyond this count get gossipsub's colocation penalty (agents behind one NAT, loopback tests). */
export const GOSSIP_IP_COLOCATION_THRESHOLD = 64;

/** The services every gpumesh node runs. */
export interface GpumeshServices extends Record<string, unknown> {
  identify: Identify;
  ping: Ping;
  pubsub: GossipSub;
}

export type GpumeshNode = Libp2p<GpumeshServices>;

export interface GpumeshNodeOptions {
  /** libp2p identity (Ed25519 from `@libp2p/crypto`); a fresh one when absent. */
  readonly privateKey?: PrivateKey;
  /** Listen multiaddrs; `[]` for a dial-only node (an agent behind NAT). Defaults to loopback TCP on a free port. */
  readonly listen?: readonly string[];
  /** Multiaddrs to announce instead of the listen addresses (public address of a coordinator). */
  readonly announce?: readonly string[];
  /**
   * Multiaddrs with `/p2p/<peerId>` to dial at start; tagged keep-alive so libp2p redials them when
   * the connection drops (an agent's link to its coordinator).
   */
  readonly bootstrap?: readonly string[];
  /** Discover peers on the LAN with mDNS. Defaults to false. */
  readonly mdns?: boolean;
  readonly maxConnections?: number;
  readonly dialTimeoutMs?: number;
  /** Refuse dials to and connections from these peers (wire it to `PeerScoreStore.isBanned`). */
  readonly isPeerDenied?: (peerId: string) => boolean;
  /** Override the gossipsub mesh degrees (tests, benches). */
  readonly gossipMesh?: { readonly D?: number; readonly Dlo?: number; readonly Dhi?: number };
  /** Start the node before returning. Defaults to true. */
  readonly start?: boolean;
}

/**
 * Builds a gpumesh libp2p node: TCP + Noise + Yamux, identify, ping and gossipsub (strictly signed
 * messages, application validation through `reportMessageValidationResult`), bootstrap and
 * optional mDNS discovery.
 */
export async function createGpumeshNode(options: GpumeshNodeOptions = {}): Promise<GpumeshNode> {
  const privateKey = options.privateKey ?? (await generatePeerKey());
  const peerDiscovery: NonNullable<Libp2pOptions<GpumeshServices>['peerDiscovery']> = [];
  if (options.bootstrap !== undefined && options.bootstrap.length > 0) {
    peerDiscovery.push(
      bootstrap({ list: [...options.bootstrap], timeout: 0, tagName: KEEP_ALIVE, tagValue: 100 }),
    );
  }
  if (options.mdns === true) peerDiscovery.push(mdns());
  const isDenied = options.isPeerDenied;

  const node = await createLibp2p<GpumeshServices>({
    privateKey,
    start: options.start ?? true,
    addresses: {
      listen: [...(options.listen ?? DEFAULT_LISTEN_ADDRESSES)],
      ...(options.announce !== undefined ? { announce: [...options.announce] } : {}),
    },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery,
    connectionManager: {
      maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      dialTimeout: options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS,
      maxIncomingPendingConnections: DEFAULT_MAX_INCOMING_PENDING_CONNECTIONS,
      inboundConnectionThreshold: DEFAULT_INBOUND_CONNECTIONS_PER_HOST_PER_SECOND,
    },
    connectionGater:
      isDenied === undefined
        ? {}
        : {
            denyDialPeer: (peerId) => isDenied(peerId.toString()),
            denyInboundEncryptedConnection: (peerId) => isDenied(peerId.toString()),
            denyOutboundEncryptedConnection: (peerId) => isDenied(peerId.toString()),
          },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        globalSignaturePolicy: StrictSign,
        emitSelf: false,
        floodPublish: true,
        fallbackToFloodsub: false,
        allowPublishToZeroTopicPeers: true,
        asyncValidation: true,
        allowedTopics: Object.values(GOSSIP_TOPICS),
        maxInboundDataLength: GOSSIP_MAX_MESSAGE_BYTES,
        D: options.gossipMesh?.D ?? GOSSIP_MESH_D,
        Dlo: options.gossipMesh?.Dlo ?? GOSSIP_MESH_D_LO,
        Dhi: options.gossipMesh?.Dhi ?? GOSSIP_MESH_D_HI,
        Dout: GOSSIP_MESH_D_OUT,
        heartbeatInterval: GOSSIP_HEARTBEAT_INTERVAL_MS,
        scoreParams: { IPColocationFactorThreshold: GOSSIP_IP_COLOCATION_THRESHOLD },
      }),
    },
  });
  // Every connection's writes within one event-loop turn leave in one system call (see coalesceTcpWrites).
  node.addEventListener('connection:open', (event) => {
    coalesceTcpWrites(event.detail);
  });
  if (options.mdns === true) dialLanPeers(node, options.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
  return node;
}

/**
 * libp2p only records discovered peers; on a LAN we want to be connected to them (gossip needs a
 * connection). Dials each newly discovered peer once, while below the connection limit.
 */
function dialLanPeers(node: GpumeshNode, maxConnections: number): void {
  const dialing = new Set<string>();
  node.addEventListener('peer:discovery', (event) => {
    const { id, multiaddrs } = event.detail;
    const key = id.toString();
    if (dialing.has(key) || node.getConnections(id).length > 0) return;
    if (node.getConnections().length >= maxConnections || multiaddrs.length === 0) return;
    dialing.add(key);
    node
      .dial(id)
      .catch(() => undefined) // an unreachable LAN peer is simply not joined
      .finally(() => dialing.delete(key));
  });
}

/** The node's peer id as a string. */
export function nodePeerId(node: Libp2p): string {
  return node.peerId.toString();
}

/** The node's listen multiaddrs with `/p2p/<peerId>` (what agents put in their bootstrap list). */
export function dialableAddresses(node: Libp2p): string[] {
  return node.getMultiaddrs().map((ma) => ma.toString());
}
