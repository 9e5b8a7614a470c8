// Epoch files for `claim` when the coordinator is gone: the agent's kept files, else any peer that
// holds one (other agents, watchers), fetched over /gpumesh/epoch-file/1 by the hash on chain.
import type { PrivateKey } from '@libp2p/interface';
import { createGpumeshNode, fetchEpochFileFromAny } from '@gpumesh/p2p';
import { keccak256Hex } from '@gpumesh/rewards';
import type { EpochFileStore } from '../daemon/epoch-store.js';

/** Whole time `claim` gives the peers to hand over one file. */
const PEER_FETCH_TIMEOUT_MS = 30_000;

/** Where a file came from (shown by `claim`). */
export type EpochFileSource = 'kept' | `peer ${string}`;

/**
 * The bytes of epoch `epoch` of `distributor` whose keccak256 is `fileHash`: the kept file when it is
 * there and intact, else from the first of `peers` (multiaddrs with /p2p/<id>) that serves bytes with
 * that hash; those are kept for next time. Throws when nobody has it.
 */
export async function epochFileFromStoreOrPeers(
  store: EpochFileStore,
  peerKey: PrivateKey,
  peers: readonly string[],
  distributor: string,
  epoch: number,
  fileHash: string,
): Promise<{ text: string; source: EpochFileSource }> {
  const kept = await store.getEpoch(distributor, epoch, fileHash);
  if (kept) return { text: Buffer.from(kept).toString('utf8'), source: 'kept' };
  if (peers.length === 0) {
    throw new Error(
      `no kept file of epoch ${epoch} and no peer to ask: add epochPeers to the agent's config or pass --peer <multiaddr>`,
    );
  }
  // The agent's own identity, dialling out only: its epoch peers let in no stranger.
  const node = await createGpumeshNode({ privateKey: peerKey, listen: [], maxConnections: peers.length + 4 });
  try {
    const { bytes, peer } = await fetchEpochFileFromAny(node, peers, fileHash, {
      hash: (b) => keccak256Hex(b),
      timeoutMs: PEER_FETCH_TIMEOUT_MS,
    });
    await store.put(distributor, epoch, fileHash, bytes);
    return { text: Buffer.from(bytes).toString('utf8'), source: `peer ${peer}` };
  } finally {
    await node.stop();
  }
}
