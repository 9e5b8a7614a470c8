import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';

export function toPeerId(peer: string | PeerId): PeerId {
  return typeof peer === 'string' ? peerIdFromString(peer) : peer;
}
