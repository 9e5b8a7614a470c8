import {
  CONTROL_FRAME_MAX_BYTES,
  DATA_FRAME_MAX_BYTES,
  createOfferVerifier,
  type HandleJobOffersOptions,
} from '@gpumesh/p2p';

/**
 * Who may send this agent a large job offer. Offers carry their inputs (up to 96 MiB of frame), but
 * the agent only learns who signed one after reading it all; so the frame cap is chosen from the
 * remote peer before any byte is read: `DATA_FRAME_MAX_BYTES` for coordinator peers, a control-frame
 * cap (1 MiB) for anyone else. Coordinator peers are those of the bootstrap list plus any peer that
 * sent an offer verified as signed by the coordinator for that very peer id (another worker that
 * joined after this agent started: its first offer must fit in 1 MiB, the rest may be large).
 */
export function coordinatorOfferPolicy(options: {
  readonly coordinatorAddress: string;
  readonly coordinatorPeers: Set<string>;
  readonly strangerMaxOfferBytes?: number;
}): Pick<HandleJobOffersOptions, 'maxOfferBytes' | 'verifyOffer'> {
  const verify = createOfferVerifier({ coordinatorAddress: options.coordinatorAddress });
  const strangerCap = options.strangerMaxOfferBytes ?? CONTROL_FRAME_MAX_BYTES;
  return {
    maxOfferBytes: (remotePeer) =>
      options.coordinatorPeers.has(remotePeer) ? DATA_FRAME_MAX_BYTES : strangerCap,
    verifyOffer: (offer, meta) => {
      const verified = verify(offer, meta);
      options.coordinatorPeers.add(meta.remotePeer);
      return verified;
    },
  };
}
