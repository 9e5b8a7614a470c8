// What an agent checks of an offer before it considers it.
import {
  ReplayGuard,
  isProtocolError,
  verifySigned,
  type JobOffer,
  type ProtocolErrorCode,
  type Signed,
} from '@gpumesh/protocol';

import type { OfferMeta, OfferVerifierOptions } from '../types.js';

export type OfferVerificationErrorCode = ProtocolErrorCode | 'COORDINATOR_PEER_MISMATCH' | 'REPLAY' | 'STALE';

/** An offer the agent will not consider; `code` goes into the `reject` reason. */
export class OfferVerificationError extends Error {
  readonly code: OfferVerificationErrorCode;

  constructor(code: OfferVerificationErrorCode, message: string) {
    super(message);
    this.name = 'OfferVerificationError';
    this.code = code;
  }
}

/**
 * The usual `verifyOffer`: coordinator signature by `coordinatorAddress`, spec hash, deadline not
 * passed, `coordinatorPeerId` equal to the peer that opened the stream, and a nonce never seen.
 */
export function createOfferVerifier(
  options: OfferVerifierOptions,
): (offer: unknown, meta: OfferMeta) => Signed<JobOffer> {
  const replayGuard = options.replayGuard ?? new ReplayGuard();
  const clock = options.now ?? Date.now;
  return (offer, meta) => {
    const now = clock();
    let verified: Signed<JobOffer>;
    try {
      verified = verifySigned('offer', offer, { expectedSigner: options.coordinatorAddress, now });
    } catch (err) {
      if (isProtocolError(err)) throw new OfferVerificationError(err.code, err.message);
      throw err;
    }
    if (verified.payload.coordinatorPeerId !== meta.remotePeer) {
      throw new OfferVerificationError(
        'COORDINATOR_PEER_MISMATCH',
        `offer names coordinator ${verified.payload.coordinatorPeerId}, stream from ${meta.remotePeer}`,
      );
    }
    const nonce = replayGuard.checkNonce(verified.payload.nonce, verified.payload.deadlineAt, now);
    if (nonce === 'replay') throw new OfferVerificationError('REPLAY', 'offer nonce already seen');
    if (nonce === 'stale') throw new OfferVerificationError('STALE', 'offer nonce can no longer be checked');
    return verified;
  };
}
