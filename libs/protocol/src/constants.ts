/** Wire-format version carried by every message; bump on any incompatible change. */
export const PROTOCOL_VERSION = 1;

const MIB = 1024 * 1024;

/** Largest single tensor (decoded bytes) accepted on the wire. */
export const MAX_TENSOR_BYTES = 16 * MIB;
/** Largest number of dimensions a tensor may have. */
export const MAX_TENSOR_RANK = 6;
/** Largest total of decoded input bytes in one job spec. */
export const MAX_INPUT_BYTES_TOTAL = 64 * MIB;
/** Most input tensors in one job spec. */
export const MAX_INPUT_TENSORS = 64;
/** Longest tensor name. */
export const MAX_TENSOR_NAME_LENGTH = 128;

/** Highest price or amount (in base units) any message may carry: 10^30. */
export const MAX_AMOUNT = 10n ** 30n;
/** Highest work-unit count a message may carry. */
export const MAX_WORK_UNITS = 10n ** 30n;

export const MIN_REDUNDANCY = 1;
export const MAX_REDUNDANCY = 3;
export const DEFAULT_REDUNDANCY = 1;

export const MIN_DEADLINE_SECONDS = 1;
export const MAX_DEADLINE_SECONDS = 86_400;
export const DEFAULT_DEADLINE_SECONDS = 600;

export const MIN_TRAIN_EPOCHS = 1;
export const MAX_TRAIN_EPOCHS = 1000;

/** An advert lives at most this long after it was issued. */
export const MAX_ADVERT_TTL_MS = 10 * 60 * 1000;

/** Default clock skew tolerated between peers when checking issued/expiry times. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 30_000;

/** Longest free-text identifier (peer id, operator id, GPU model, region, nonce). */
export const MAX_ID_LENGTH = 256;
/** Most GPUs one advert may list. */
export const MAX_GPUS_PER_ADVERT = 64;
/** Most concurrent job slots one advert may offer. */
export const MAX_SLOTS = 1024;

/**
 * How a reject reason starts when the provider is only full at the moment (it may take the same job
 * a moment later): the coordinator places the job again without holding it against the provider.
 */
export const REJECT_NO_CAPACITY = 'NO_CAPACITY';
