/** Wire-format version carried by every message; bump on any incompatible change. */
export const PROTOCOL_VERSION = 1;

const MIB = 1024 * 1024;

/** Largest single tensor (decoded bytes) accepted on the wire. */
export const MAX_TENSOR_BYTES = 16 * MIB;
/**
 * Largest tensor a job may name by ref (`{ name, ref, dtype, shape, sha256 }`, uploaded to the
 * coordinator and fetched by agents over the artifact protocol): 1 GiB. A coordinator's own
 * `MAX_TENSOR_UPLOAD_BYTES` may be lower; the inline caps (`MAX_TENSOR_BYTES`,
 * `MAX_INPUT_BYTES_TOTAL`) do not apply to refs.
 */
export const MAX_REF_TENSOR_BYTES = 1024 * MIB;
/**
 * Default size above which an agent sends a job output by ref (uploaded as binary chunks over the
 * artifact protocol, `put-tensor`) rather than inline as base64 in the result frame: 1 MiB. Outputs
 * by ref are bounded by `MAX_REF_TENSOR_BYTES` (and the coordinator's `MAX_RESULT_TENSOR_BYTES`).
 */
export const DEFAULT_INLINE_OUTPUT_BYTES = 1 * MIB;
/** Largest number of dimensions a tensor may have. */
export const MAX_TENSOR_RANK = 6;
/** Largest total of decoded inline input bytes in one job spec (inputs by ref do not count). */
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
 * Highest matmul GFLOP/s one GPU may claim: 2 PFLOP/s, above any accelerator's float32/tf32 matmul
 * rate with room for the next generations. A claim is only a ceiling: the coordinator measures.
 */
export const MAX_GFLOPS_PER_GPU = 2_000_000;
/** Highest GFLOP/s an advert that lists no GPU (CPU, wasm) may claim: 100 TFLOP/s. */
export const MAX_GFLOPS_WITHOUT_GPU = 100_000;
/** Longest GPU model name (nvidia-smi names are ~30 characters: "NVIDIA H100 80GB HBM3"). */
export const MAX_GPU_MODEL_LENGTH = 64;
/**
 * What a GPU model name may look like: letters, digits and ` ._-()[]+/,:@#`, starting with a letter
 * or digit and not ending in a space (no control characters, quotes or markup to show on a dashboard).
 */
export const GPU_MODEL_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9 ._()[\]+\-/,:@#]*[A-Za-z0-9._()[\]+\-/,:@#])?$/;
/** Most VRAM one GPU may claim: 1 TiB. */
export const MAX_GPU_VRAM_MIB = 1024 * 1024;

/**
 * How a reject reason starts when the provider is only full at the moment (it may take the same job
 * a moment later): the coordinator places the job again without holding it against the provider.
 */
export const REJECT_NO_CAPACITY = 'NO_CAPACITY';
