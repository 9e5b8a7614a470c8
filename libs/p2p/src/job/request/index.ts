// The request side (a coordinator that dials providers and sends them offers).
export { sendJobOffer } from './send-offer.js';
export { sendJobOffers } from './send-offers.js';
export { resultFrameCap, verifyJobResult } from './verify-result.js';
