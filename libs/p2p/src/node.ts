import { GOSSIP_TOPICS } from '@gpumesh/protocol';
import { bootstrap } from '@libp2p/bootstrap';
import { gossipsub, StrictSign, type GossipSub } from '@libp2p/gossipsub';
import { identify, type Identify } from '@libp2p/identify';
import { KEEP_ALIVE, type Connection, type PrivateKey } from '@libp2p/interface';
import { mdns } from '@libp2p/mdns';
import { noise } from '@libp2p/noise';
import { peerIdFromString } from '@libp2p/peer-id';
import { ping, type Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { tryGetNetConfig } from '@libp2p/utils';
import { yamux } from '@libp2p/yamux';
import { createLibp2p, type Libp2p, type Libp2pOptions } from 'libp2p';

import { coalesceTcpWrites } from './coalesce-writes.js';
import {
  ConnectionGuard,
  type ConnectionClosure,
  type ConnectionGuardStats,
  type ConnectionRefusal,
} from './connection-guard.js';
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
 * An inbound connection must finish its handshake (Noise, Yamux) within this long: libp2p's default
 * (10 s) lets a few dozen silent sockets hold every pending-handshake slot.
 */
export const DEFAULT_INBOUND_UPGRADE_TIMEOUT_MS = 5_000;

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
  /** Refuse dials to and connections from these peers (wire it to `PeerScoreStore.isDenied`). */
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
      inboundUpgradeTimeout: DEFAULT_INBOUND_UPGRADE_TIMEOUT_MS,
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

/** Peer-store tag of a peer that presented a valid binding: libp2p prunes untagged strangers first. */
export const BOUND_PEER_TAG = 'gpumesh-bound';
export const BOUND_PEER_TAG_VALUE = 50;
/** A bound peer's tag outlives its connection by this long (a quick reconnect keeps its priority). */
export const BOUND_PEER_TAG_TTL_MS = 60 * 60 * 1000;
/** How often unbound connections are checked against their timeout. */
export const GUARD_SWEEP_EVERY_MS = 1_000;

export interface GuardConnectionsOptions {
  /** Other coordinator processes: exempt from binding and caps. */
  readonly isTrustedPeer?: (peerId: string) => boolean;
  /** Recently seen providers: they may use the slots reserved for known peers. */
  readonly isKnownPeer?: (peerId: string) => boolean;
  readonly onRefused?: (reason: ConnectionRefusal, peerId: string) => void;
  readonly onClosed?: (reason: ConnectionClosure, peerId: string) => void;
  readonly now?: () => number;
}

export interface GuardedConnections {
  readonly guard: ConnectionGuard;
  /** The peer presented a valid binding (an accepted advert): its connections are kept and tagged. */
  bind(peerId: string): void;
  isBound(peerId: string): boolean;
  stats(): ConnectionGuardStats;
  stop(): void;
}

/**
 * Puts a `ConnectionGuard` in front of a node: every opened connection is admitted or closed at
 * once, a displaced stranger is closed, and inbound connections that present no peer binding within
 * the guard's timeout are closed. The connection gater (`isPeerDenied`) still runs first.
 */
export function guardConnections(
  node: Libp2p,
  guard: ConnectionGuard,
  options: GuardConnectionsOptions = {},
): GuardedConnections {
  const now = options.now ?? Date.now;
  const open = new Map<string, Connection>();
  const drop = (id: string, reason: ConnectionClosure): void => {
    const connection = open.get(id);
    open.delete(id);
    if (connection === undefined) return;
    options.onClosed?.(reason, connection.remotePeer.toString());
    connection.abort(new Error(`connection closed by the guard: ${reason}`));
  };
  const onOpen = (event: CustomEvent<Connection>): void => {
    const connection = event.detail;
    const peerId = connection.remotePeer.toString();
    const decision = guard.admit({
      id: connection.id,
      peerId,
      ip: tryGetNetConfig(connection.remoteAddr)?.host,
      direction: connection.direction,
      trusted: options.isTrustedPeer?.(peerId) ?? false,
      known: options.isKnownPeer?.(peerId) ?? false,
      now: now(),
    });
    if (!decision.admit) {
      options.onRefused?.(decision.reason, peerId);
      connection.abort(new Error(`connection refused by the guard: ${decision.reason}`));
      return;
    }
    open.set(connection.id, connection);
    if (decision.displace !== undefined) drop(decision.displace, 'DISPLACED');
  };
  const onClose = (event: CustomEvent<Connection>): void => {
    open.delete(event.detail.id);
    guard.remove(event.detail.id);
  };
  node.addEventListener('connection:open', onOpen);
  node.addEventListener('connection:close', onClose);
  const sweeper = setInterval(() => {
    for (const id of guard.expire(now())) drop(id, 'UNBOUND_TIMEOUT');
  }, GUARD_SWEEP_EVERY_MS);
  sweeper.unref();
  return {
    guard,
    bind(peerId: string): void {
      if (guard.bind(peerId) === 0) return;
      node.peerStore
        .merge(peerIdFromString(peerId), {
          tags: { [BOUND_PEER_TAG]: { value: BOUND_PEER_TAG_VALUE, ttl: BOUND_PEER_TAG_TTL_MS } },
        })
        .catch(() => undefined); // a tag only orders pruning
    },
    isBound: (peerId) => guard.isBound(peerId),
    stats: () => guard.stats(),
    stop(): void {
      clearInterval(sweeper);
      node.removeEventListener('connection:open', onOpen);
      node.removeEventListener('connection:close', onClose);
    },
  };
}

/** The node's peer id as a string. */
export function nodePeerId(node: Libp2p): string {
  return node.peerId.toString();
}

/** The node's listen multiaddrs with `/p2p/<peerId>` (what agents put in their bootstrap list). */
export function dialableAddresses(node: Libp2p): string[] {
  return node.getMultiaddrs().map((ma) => ma.toString());
}
