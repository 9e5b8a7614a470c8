// The response side (an agent that serves offers).
export { handleJobOffers } from './handle.js';
export { serveJobBatch } from './serve-batch.js';
export { serveJobOffer } from './serve-offer.js';
export {
  OfferVerificationError,
  createOfferVerifier,
  type OfferVerificationErrorCode,
} from './verify-offer.js';
