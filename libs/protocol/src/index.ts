export {
  PROTOCOL_VERSION,
  MAX_TENSOR_BYTES,
  MAX_REF_TENSOR_BYTES,
  DEFAULT_INLINE_OUTPUT_BYTES,
  MAX_TENSOR_RANK,
  MAX_INPUT_TENSORS,
  MAX_TENSOR_NAME_LENGTH,
  REJECT_NO_CAPACITY,
  GPU_MODEL_PATTERN,
  MAX_GPU_MODEL_LENGTH,
  MAX_GPU_VRAM_MIB,
} from './constants.js';
export {
  ADVERTS_TOPIC,
  GOSSIP_TOPICS,
  JOB_PROTOCOL_ID,
  JOB_BATCH_PROTOCOL_ID,
  ARTIFACT_PROTOCOL_ID,
} from './topics.js';
export {
  gossipActionFor,
  isProtocolError,
  ProtocolValidationError,
  type ProtocolErrorCode,
  type GossipAction,
} from './errors.js';
export { formatIssuePath } from './validation.js';
export { Sha256HexSchema, ADDRESS_PATTERN, LOWER_CASE_ADDRESS_PATTERN, UuidSchema } from './primitives.js';
export { BACKENDS, type Backend } from './backend.js';
export {
  tensorByteLength,
  base64DecodedLength,
  encodeTensor,
  decodeTensor,
  decodeTensorWire,
  tensorView,
  tensorBytes,
  firstNonFinite,
  BYTES_PER_ELEMENT,
  DTYPES,
  TensorWireSchema,
  type DType,
  type TensorWire,
  type DecodedTensor,
} from './tensor.js';
export {
  TensorRefSchema,
  ResultTensorSchema,
  isTensorRef,
  refTensorByteLength,
  type TensorRef,
  type ResultTensor,
} from './tensor-ref.js';
export {
  matmulDims,
  parseJobSpec,
  jobSampleCount,
  MODEL_FORMATS,
  JobSpecSchema,
  type JobInput,
  type ModelFormat,
  type JobSpec,
  type JobSpecInput,
} from './job-spec.js';
export { createPeerBinding, type PeerBinding } from './peer-binding.js';
export { GPU_BACKENDS, type GpuInfo, type ProviderAdvert } from './advert.js';
export { randomNonce, type JobOffer } from './offer.js';
export type { ResultReceipt } from './receipt.js';
export type { Signed } from './signed.js';
export { canonicalJson, canonicalBytes } from './canonical.js';
export { sha256Hex, tensorDigest, hashTensors, hashOutputs, hashSpec, hashParsedSpec } from './hashing.js';
export { signedMessageSchema, signPayload, signPayloads, verifySigned, BatchSigner } from './signing.js';
export { ReplayGuard } from './replay-guard.js';
export { estimateModelFlops } from './model-flops.js';
export { workUnitsForSpec } from './work-units.js';
export { jobSpecJsonSchema } from './json-schema.js';
export { signPersonalMessage } from './secp256k1.js';
export { EPOCHS_TOPIC, EPOCH_FILE_PROTOCOL_ID } from './topics.js';
export {
  NPY_MEDIA_TYPE,
  NpyFormatError,
  readNpyHeader,
  encodeNpyHeader,
  encodeNpy,
  decodeNpy,
  type NpyHeader,
} from './npy.js';
export { MAX_EPOCH_FILE_BYTES, type EpochAnnouncement } from './epoch-announcement.js';
export {
  INPUT_FAULT_ERROR_CODES,
  jobErrorFault,
  backendsAbleToRun,
  placeableBackends,
  type InputFaultErrorCode,
  type JobErrorFault,
} from './job-errors.js';
