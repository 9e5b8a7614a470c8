// Where the agent reads the coordinator's libp2p peers from: its public REST endpoint `GET /v1/network`
// (apps/coordinator/src/p2p/network.controller.ts). Used by `init`, `start` and, while the agent cannot
// reach its coordinator, by the redial loop (the coordinator may have come back on other addresses).

/** How long one `/v1/network` request may take. */
export const NETWORK_FETCH_TIMEOUT_MS = 10_000;

export interface CoordinatorNetworkPeer {
  peerId: string;
  multiaddrs: string[];
  signerAddress: string;
}

export interface CoordinatorNetwork {
  protocolVersion: number;
  peers: CoordinatorNetworkPeer[];
}

export type NetworkFetchErrorCode = 'UNREACHABLE' | 'HTTP_ERROR' | 'BAD_BODY' | 'NO_PEERS';

export class NetworkFetchError extends Error {
  constructor(
    readonly code: NetworkFetchErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'NetworkFetchError';
  }
}

function isPeer(value: unknown): value is CoordinatorNetworkPeer {
  const p = value as Partial<CoordinatorNetworkPeer> | null;
  return (
    typeof p?.peerId === 'string' &&
    typeof p.signerAddress === 'string' &&
    Array.isArray(p.multiaddrs) &&
    p.multiaddrs.every((a) => typeof a === 'string' && a.startsWith('/'))
  );
}

/** The coordinator's p2p peers; throws `NetworkFetchError` (with a code) when it cannot say. */
export async function fetchCoordinatorNetwork(
  coordinatorUrl: string,
  timeoutMs = NETWORK_FETCH_TIMEOUT_MS,
): Promise<CoordinatorNetwork> {
  let response: Response;
  try {
    response = await fetch(new URL('/v1/network', coordinatorUrl), {
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new NetworkFetchError(
      'UNREACHABLE',
      `cannot reach the coordinator at ${coordinatorUrl}: ${(err as Error).message}`,
    );
  }
  if (!response.ok) {
    throw new NetworkFetchError('HTTP_ERROR', `${coordinatorUrl}/v1/network answered ${response.status}`);
  }
  const body = (await response.json().catch(() => null)) as Partial<CoordinatorNetwork> | null;
  if (!body || !Array.isArray(body.peers) || !body.peers.every(isPeer)) {
    throw new NetworkFetchError('BAD_BODY', `${coordinatorUrl}/v1/network answered something unexpected`);
  }
  if (body.peers.length === 0) {
    throw new NetworkFetchError(
      'NO_PEERS',
      `the coordinator at ${coordinatorUrl} has no p2p worker online yet; try again shortly`,
    );
  }
  return { protocolVersion: Number(body.protocolVersion), peers: body.peers };
}

/** The multiaddrs of the peers that sign offers as `signerAddress` (the coordinator this agent trusts). */
export function trustedMultiaddrs(network: CoordinatorNetwork, signerAddress: string): string[] {
  return network.peers.filter((p) => p.signerAddress === signerAddress).flatMap((p) => p.multiaddrs);
}

/** The peer id at the end of a `/p2p/<peerId>` multiaddr, or undefined. */
export function peerIdOfMultiaddr(address: string): string | undefined {
  const id = address.split('/p2p/')[1];
  return id ? id.split('/')[0] : undefined;
}
