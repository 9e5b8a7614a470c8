import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';

/** A fresh Ed25519 libp2p identity key. */
export async function generatePeerKey(): Promise<PrivateKey> {
  return generateKeyPair('Ed25519');
}

/** The key's libp2p protobuf encoding as lower-case hex (what the agent's keystore stores). */
export function peerKeyToHex(key: PrivateKey): string {
  return Buffer.from(privateKeyToProtobuf(key)).toString('hex');
}

/** Parses `peerKeyToHex` output; throws on anything that is not a protobuf-encoded private key. */
export function peerKeyFromHex(hex: string): PrivateKey {
  const clean = hex.startsWith('0x') ? hex.slice(2) : hex;
  if (!/^([0-9a-fA-F]{2})+$/.test(clean)) throw new Error('peer key: expected hex of a protobuf private key');
  return privateKeyFromProtobuf(Uint8Array.from(Buffer.from(clean, 'hex')));
}

/** The peer id string (base58btc) that `key` gives a node. */
export function peerIdStringOf(key: PrivateKey): string {
  return peerIdFromPrivateKey(key).toString();
}
