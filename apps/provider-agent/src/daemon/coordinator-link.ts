// The agent's link to its coordinator: an agent that is not connected earns nothing, so it redials
// forever. libp2p's own reconnect queue gives up after a few tries (a coordinator outage of ~30 s left
// agents idle for good); this loop never does. While dials fail it re-reads the coordinator's
// addresses from `/v1/network` (a restarted coordinator may listen elsewhere), it logs at a bounded
// rate, and after `maxDisconnectedMs` without any coordinator peer it gives up so that a supervisor
// (systemd `Restart=on-failure`) restarts the process.
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import type { Logger } from 'pino';
import type { GpumeshNode } from '@gpumesh/p2p';
import { peerIdOfMultiaddr } from './coordinator-directory.js';

/** First redial delay after a coordinator connection is lost (or the first dial failed). */
export const DEFAULT_RECONNECT_INITIAL_DELAY_MS = 1_000;
/** The redial delay doubles per failed round up to this cap. */
export const DEFAULT_RECONNECT_MAX_DELAY_MS = 30_000;
/** Each delay is spread by ± this fraction, so agents behind one outage do not redial in lockstep. */
export const RECONNECT_JITTER_FRACTION = 0.2;
/** After this long without a coordinator peer the agent exits non-zero (0 = never). */
export const DEFAULT_MAX_DISCONNECTED_SECONDS = 600;
/** At most one "still disconnected" log line per this interval. */
export const DISCONNECTED_LOG_EVERY_MS = 30_000;
/** While dials fail, `/v1/network` is asked at most this often. */
export const NETWORK_REFRESH_MIN_INTERVAL_MS = 5_000;
/** While connected, `/v1/network` is re-read this often (workers that joined since). */
export const NETWORK_REFRESH_EVERY_MS = 300_000;
/** How often the link checks its peers and the disconnected-time limit. */
export const LINK_WATCH_EVERY_MS = 1_000;

export interface ReconnectBackoff {
  initialDelayMs: number;
  maxDelayMs: number;
}

/**
 * The delay before redial round `failures` (1 = after the first failed round): exponential from
 * `initialDelayMs`, capped at `maxDelayMs`, then spread by ± `RECONNECT_JITTER_FRACTION`.
 */
export function reconnectDelayMs(failures: number, backoff: ReconnectBackoff, random = Math.random): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const base = Math.min(backoff.maxDelayMs, backoff.initialDelayMs * 2 ** exponent);
  const spread = 1 - RECONNECT_JITTER_FRACTION + 2 * RECONNECT_JITTER_FRACTION * random();
  return Math.max(1, Math.round(base * spread));
}

export interface CoordinatorLinkState {
  connected: boolean;
  /** When the link last became connected (connected) or disconnected (not connected), ms epoch. */
  since: number;
  /** Coordinator peers this agent is connected to now. */
  connectedPeers: string[];
  /** Failed redial rounds since the last connection. */
  failedRounds: number;
  lastError: string | null;
  /** The coordinator multiaddrs the loop dials. */
  addresses: string[];
  /** When the agent gives up while disconnected (ms epoch), or null (connected, or never). */
  exitAt: number | null;
}

export interface CoordinatorLinkOptions {
  node: GpumeshNode;
  /** The coordinator multiaddrs (each ending in /p2p/<peerId>). */
  addresses: readonly string[];
  /** Coordinator peer ids; the link adds those of refreshed addresses (the offer policy reads it). */
  coordinatorPeers: Set<string>;
  /** Fresh coordinator multiaddrs from `/v1/network`, or null when it cannot say. */
  refreshAddresses: () => Promise<string[] | null>;
  /** Called when refreshed addresses differ from the known ones (persist them). */
  onAddressesChanged?: (addresses: string[]) => void;
  backoff: ReconnectBackoff;
  /** Give up after this long without any coordinator peer (0 = never). */
  maxDisconnectedMs: number;
  /** Called once when the limit is reached; the caller stops the agent and exits non-zero. */
  onGiveUp: (disconnectedMs: number) => void;
  /** Called whenever a coordinator peer connects (publish the advert now). */
  onCoordinatorConnected: (peerId: string) => void;
  logger: Logger;
  now?: () => number;
  random?: () => number;
}

export interface CoordinatorLink {
  state(): CoordinatorLinkState;
  stop(): void;
}

/** Keeps the agent connected to every known coordinator peer, forever (see the file comment). */
export function keepCoordinatorLink(options: CoordinatorLinkOptions): CoordinatorLink {
  const { node, coordinatorPeers, logger } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  let addresses = [...options.addresses];
  for (const id of coordinatorPeerIds(addresses)) coordinatorPeers.add(id);
  let stopped = false;
  let since = now();
  let connected = false;
  let failedRounds = 0;
  let lastError: string | null = null;
  let lastRefreshAt = now();
  let lastLogAt = 0;
  let gaveUp = false;
  let dialing = false;
  let roundTimer: NodeJS.Timeout | null = null;

  const peersOf = coordinatorPeerIds;
  const connectedPeers = (): string[] =>
    node
      .getPeers()
      .map((p) => p.toString())
      .filter((p) => coordinatorPeers.has(p));
  const missingPeers = (): string[] => {
    const have = new Set(connectedPeers());
    return peersOf(addresses).filter((p) => !have.has(p));
  };

  const update = (): void => {
    const isConnected = connectedPeers().length > 0;
    if (isConnected === connected) return;
    const was = now() - since;
    connected = isConnected;
    since = now();
    if (isConnected) {
      logger.info({ disconnectedMs: was, failedRounds }, 'connected to the coordinator');
      failedRounds = 0;
      lastError = null;
    } else {
      lastLogAt = now();
      logger.warn({ connectedMs: was }, 'lost the coordinator; redialling');
    }
  };

  const refresh = async (force: boolean): Promise<void> => {
    if (!force && now() - lastRefreshAt < NETWORK_REFRESH_MIN_INTERVAL_MS) return;
    lastRefreshAt = now();
    const fresh = await options.refreshAddresses().catch(() => null);
    if (fresh === null || fresh.length === 0) return;
    for (const id of peersOf(fresh)) coordinatorPeers.add(id);
    if (fresh.join() === addresses.join()) return;
    logger.info({ before: addresses, after: fresh }, 'coordinator addresses changed (from /v1/network)');
    addresses = fresh;
    options.onAddressesChanged?.(fresh);
  };

  /** One round: dial every coordinator peer this agent is not connected to. */
  const round = async (): Promise<void> => {
    roundTimer = null;
    if (stopped || dialing) return;
    dialing = true;
    try {
      const missing = missingPeers();
      if (missing.length === 0) {
        failedRounds = 0;
        if (now() - lastRefreshAt >= NETWORK_REFRESH_EVERY_MS) await refresh(true);
        return;
      }
      const results = await Promise.allSettled(
        missing.map(async (peer) => {
          const addrs = addresses.filter((a) => peerIdOfMultiaddr(a) === peer).map((a) => multiaddr(a));
          await node.dial(addrs.length === 1 ? addrs[0] : addrs);
        }),
      );
      update();
      const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failures.length === 0) {
        failedRounds = 0;
        return;
      }
      failedRounds += 1;
      lastError = failures.map((f) => (f.reason as Error)?.message ?? String(f.reason)).join('; ');
      logger.debug({ failedRounds, err: lastError }, 'coordinator dial failed');
      await refresh(false);
    } finally {
      dialing = false;
      schedule();
    }
  };

  const schedule = (delayMs?: number): void => {
    if (stopped || roundTimer !== null || dialing) return;
    const ms =
      delayMs ??
      (failedRounds === 0 ? LINK_WATCH_EVERY_MS : reconnectDelayMs(failedRounds, options.backoff, random));
    roundTimer = setTimeout(() => void round(), ms);
  };

  const watch = (): void => {
    update();
    if (connected || stopped) return;
    const down = now() - since;
    if (now() - lastLogAt >= DISCONNECTED_LOG_EVERY_MS) {
      lastLogAt = now();
      logger.warn(
        {
          disconnectedMs: down,
          failedRounds,
          lastError,
          addresses,
          exitInMs: options.maxDisconnectedMs > 0 ? Math.max(0, options.maxDisconnectedMs - down) : null,
        },
        'still not connected to the coordinator',
      );
    }
    if (options.maxDisconnectedMs > 0 && down >= options.maxDisconnectedMs && !gaveUp) {
      gaveUp = true;
      logger.error(
        { disconnectedMs: down, maxDisconnectedMs: options.maxDisconnectedMs, lastError },
        'no coordinator for too long: exiting so that a supervisor restarts the agent',
      );
      options.onGiveUp(down);
    }
  };

  const onConnect = (evt: CustomEvent<{ toString(): string }>): void => {
    const peer = evt.detail.toString();
    if (!coordinatorPeers.has(peer)) return;
    update();
    options.onCoordinatorConnected(peer);
  };
  const onDisconnect = (evt: CustomEvent<{ toString(): string }>): void => {
    if (!coordinatorPeers.has(evt.detail.toString())) return;
    update();
    // Redial soon, then back off.
    if (roundTimer !== null) clearTimeout(roundTimer);
    roundTimer = null;
    schedule(reconnectDelayMs(1, options.backoff, random));
  };
  node.addEventListener('peer:connect', onConnect);
  node.addEventListener('peer:disconnect', onDisconnect);
  const watchTimer = setInterval(watch, LINK_WATCH_EVERY_MS);
  update();
  void round();

  return {
    state: () => {
      const peers = connectedPeers();
      return {
        connected: peers.length > 0,
        since,
        connectedPeers: peers,
        failedRounds,
        lastError,
        addresses: [...addresses],
        exitAt: connected || options.maxDisconnectedMs === 0 ? null : since + options.maxDisconnectedMs,
      };
    },
    stop: () => {
      stopped = true;
      clearInterval(watchTimer);
      if (roundTimer !== null) clearTimeout(roundTimer);
      node.removeEventListener('peer:connect', onConnect);
      node.removeEventListener('peer:disconnect', onDisconnect);
    },
  };
}

/** The valid peer ids of coordinator multiaddrs (`/.../p2p/<peerId>`), once each. */
export function coordinatorPeerIds(addresses: readonly string[]): string[] {
  const ids = addresses
    .map(peerIdOfMultiaddr)
    .filter((p): p is string => p !== undefined && isValidPeerId(p));
  return [...new Set(ids)];
}

function isValidPeerId(id: string): boolean {
  try {
    peerIdFromString(id);
    return true;
  } catch {
    return false;
  }
}
