import { recoverPersonalSigner, signPersonalMessage, type MessageSigner } from './secp256k1.js';
import { z } from 'zod';

import { DEFAULT_MAX_CLOCK_SKEW_MS } from './constants.js';
import { SignatureVerificationError } from './errors.js';
import { AddressSchema, PeerIdStringSchema, SignatureHexSchema, TimestampMsSchema } from './primitives.js';
import { parseWith, safeParseWith, type SafeParseResult } from './validation.js';

/** Anything that can sign an EIP-191 message and name its address (ethers `Wallet`, `HDNodeWallet`...). */
export type { MessageSigner };

export const PEER_BINDING_PREFIX = 'gpumesh peer binding v1';

/**
 * A wallet's signed statement that a libp2p peer id speaks for it. The peer key's own consent comes
 * from gossipsub's message signing; this binds the other direction (wallet -> peer).
 */
export const PeerBindingSchema = z.strictObject(
  {
    peerId: PeerIdStringSchema,
    address: AddressSchema,
    issuedAt: TimestampMsSchema,
    signature: SignatureHexSchema,
  },
  { error: 'expected peer binding { peerId, address, issuedAt, signature }' },
);

export type PeerBinding = z.output<typeof PeerBindingSchema>;

export function parsePeerBinding(input: unknown): PeerBinding {
  return parseWith('PeerBinding', PeerBindingSchema, input);
}

export function safeParsePeerBinding(input: unknown): SafeParseResult<PeerBinding> {
  return safeParseWith('PeerBinding', PeerBindingSchema, input);
}

/** The exact text the wallet signs (EIP-191) for a binding. */
export function peerBindingMessage(peerId: string, address: string, issuedAt: number): string {
  return `${PEER_BINDING_PREFIX}\npeerId: ${peerId}\naddress: ${address.toLowerCase()}\nissuedAt: ${issuedAt}`;
}

/** Signs a binding of `peerId` to the wallet's address. */
export async function createPeerBinding(
  wallet: MessageSigner,
  peerId: string,
  issuedAt: number = Date.now(),
): Promise<PeerBinding> {
  const address = (await wallet.getAddress()).toLowerCase();
  const signature = await signPersonalMessage(wallet, peerBindingMessage(peerId, address, issuedAt));
  return parsePeerBinding({ peerId, address, issuedAt, signature });
}

export interface VerifyPeerBindingOptions {
  readonly now?: number;
  readonly maxSkewMs?: number;
}

/**
 * Checks a binding's signature recovers its address (and it was not issued in the future).
 * Throws `BAD_PEER_BINDING` / `FROM_FUTURE`; a malformed binding throws `ProtocolValidationError`.
 */
export function verifyPeerBinding(binding: unknown, options: VerifyPeerBindingOptions = {}): PeerBinding {
  const b = parsePeerBinding(binding);
  const recovered = recoverPersonalSigner(
    peerBindingMessage(b.peerId, b.address, b.issuedAt),
    b.signature.toLowerCase(),
  );
  if (recovered === null) {
    throw new SignatureVerificationError(
      'BAD_PEER_BINDING',
      `peer binding for ${b.peerId}: unrecoverable signature`,
    );
  }
  if (recovered !== b.address) {
    throw new SignatureVerificationError(
      'BAD_PEER_BINDING',
      `peer binding for ${b.peerId}: signature is not from ${b.address}`,
    );
  }
  const now = options.now ?? Date.now();
  const skew = options.maxSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  if (b.issuedAt > now + skew) {
    throw new SignatureVerificationError(
      'FROM_FUTURE',
      `peer binding for ${b.peerId}: issuedAt is in the future`,
    );
  }
  return b;
}
