// Must stay first: libp2p needs Promise.withResolvers, which Node 20 lacks.
import './polyfills.js';

export { StreamError, JobProtocolError, ArtifactError } from './errors.js';
export { generatePeerKey, peerKeyToHex, peerKeyFromHex, peerIdStringOf } from './peer-key.js';
export {
  createGpumeshNode,
  guardConnections,
  nodePeerId,
  dialableAddresses,
  type GpumeshNode,
  type GpumeshNodeOptions,
  type GuardedConnections,
} from './node.js';
export { ConnectionGuard, type ConnectionGuardStats } from './connection-guard.js';
export { ADVERT_ORIGIN_BURST } from './gossip-rate-limit.js';
export {
  encodeVarint,
  encodeFrame,
  CONTROL_FRAME_MAX_BYTES,
  DATA_FRAME_MAX_BYTES,
  FramedStream,
} from './frames.js';
export {
  PeerAction,
  MIN_SCORE_BEFORE_DISCONNECT,
  MIN_SCORE_BEFORE_BAN,
  PEER_ACTION_SCORE,
  PeerScoreStore,
} from './peer-score.js';
export { encodeGossipPayload } from './gossip-topics.js';
export { validateAdvertGossip, GossipValidationError } from './gossip-validation.js';
export { penalizePeer, startGossip, GossipValidationCounter, type GossipService } from './gossip.js';
export {
  OfferFrameSchema,
  OffersFrameSchema,
  sendJobOffer,
  sendJobOffers,
  verifyJobResult,
  handleJobOffers,
  OfferVerificationError,
  createOfferVerifier,
  type JobProgress,
  type SendJobOfferOptions,
  type JobOfferOutcome,
  type JobRunResult,
  type OfferDecision,
  type OfferContext,
  type HandleJobOffersOptions,
} from './job/index.js';
export { coalesceSocketWrites } from './coalesce-writes.js';
export {
  hashArtifact,
  handleArtifactRequests,
  fetchArtifact,
  fetchTensor,
  putTensor,
  type ExpectedTensor,
  type TensorSource,
  type TensorUpload,
  type ModelArtifact,
  type HandleArtifactRequestsOptions,
} from './artifact-protocol.js';
export { expectedOutputs, expectedResultFrameBytes } from './result-size.js';
export { ResultByteBudget } from './result-budget.js';
export { EpochFileError } from './errors.js';
export { fetchEpochFile, fetchEpochFileFromAny, handleEpochFileRequests } from './epoch-file-protocol.js';
