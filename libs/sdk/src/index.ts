export * from './generated.js';
export {
  GpumeshApiError,
  GpumeshClient,
  TERMINAL_JOB_STATES,
  parseAnswer,
  signIn,
  type EventsOptions,
  type GpumeshClientOptions,
  type ListJobsQuery,
  type NpyStream,
  type RequestOptions,
  type SignInOptions,
  type WaitOptions,
} from './client.js';
export { fromNpy, toNpy } from './npy.js';
export { RETRYABLE_STATUSES, backoffMs, retryAfterMs } from './retry.js';
export { SIGN_IN_STATEMENT, signInMessage, signSignIn } from './sign-in.js';
export { MAX_SPENDING_CAP, signSpendingCap } from './spending-cap.js';
export { SseParser, type SseMessage } from './sse.js';
export { decodeTensor, tensor, type TensorInput } from './tensor.js';
export type { TypedDataDomain, TypedDataField, WalletSigner } from './wallet.js';
