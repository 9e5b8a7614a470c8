// The job protocol's types: what a coordinator passes to the request side and gets back, and what an
// agent gives the response side. Both sides import these; neither imports the other.
import type { JobOffer, ReplayGuard, ResultReceipt, ResultTensor, Signed } from '@gpumesh/protocol';

import type { StreamError } from '../errors.js';
import type { P2pLogger } from '../gossip.js';
import type { ResultByteBudget } from '../result-budget.js';

// ---------------------------------------------------------------------------------------------
// Request side (the coordinator)
// ---------------------------------------------------------------------------------------------

export interface JobProgress {
  readonly fraction: number;
  readonly message?: string;
}

export interface SendJobOfferOptions {
  /** The provider's wallet address (from its advert): the only acceptable receipt signer. */
  readonly providerAddress: string;
  readonly acceptTimeoutMs?: number;
  /** Time from acceptance to result; defaults to the time left until the offer's `deadlineAt`. */
  readonly resultTimeoutMs?: number;
  /**
   * After acceptance, fail with `TIMEOUT` when no byte arrived for this long (the agent sends a
   * heartbeat every DEFAULT_HEARTBEAT_INTERVAL_MS while it runs). Default DEFAULT_SILENCE_TIMEOUT_MS;
   * 0 turns it off (for agents older than heartbeats).
   */
  readonly silenceTimeoutMs?: number;
  /**
   * Largest result frame taken for this offer; default `expectedResultFrameBytes(offer.spec)`. Never
   * above `DATA_FRAME_MAX_BYTES`. A larger frame fails the attempt with `FRAME_TOO_LARGE` as soon as
   * its length prefix arrives.
   */
  readonly maxResultBytes?: number;
  /**
   * Bytes the result stream may buffer are reserved here and freed when the attempt settles: up to
   * RESULT_BYTES_RESERVED_UPFRONT (plus FRAME_BUFFER_SLACK_BYTES) before the offer is sent (with no
   * room the offer waits, unsent), the rest of a larger result frame when its length prefix arrives
   * (the stream is paused until there is room). No room by the offer's deadline: `BUDGET_EXHAUSTED`.
   */
  readonly resultBudget?: ResultByteBudget;
  readonly onAccepted?: () => void;
  readonly onProgress?: (progress: JobProgress) => void;
  /** Aborting sends `cancel` to the provider, resets the stream and rejects with `CANCELLED`. */
  readonly signal?: AbortSignal;
  readonly now?: () => number;
}

export interface CompletedJob {
  readonly status: 'completed';
  readonly outputs: ResultTensor[];
  readonly receipt: Signed<ResultReceipt>;
}

export interface RejectedJob {
  readonly status: 'rejected';
  readonly code: 'REJECTED';
  readonly reason: string;
}

export type JobOfferOutcome = CompletedJob | RejectedJob;

/** One offer of a batch and how the caller wants it handled (as for `sendJobOffer`). */
export interface BatchOfferItem {
  readonly offer: Signed<JobOffer>;
  readonly options: SendJobOfferOptions;
}

// ---------------------------------------------------------------------------------------------
// Response side (the agent)
// ---------------------------------------------------------------------------------------------

export interface OfferMeta {
  /** Peer id of the coordinator that opened the stream. */
  readonly remotePeer: string;
}

export interface OfferVerifierOptions {
  /** The coordinator's wallet address: the only acceptable offer signer. */
  readonly coordinatorAddress: string;
  /** Nonce memory (one per agent process). A fresh one when absent. */
  readonly replayGuard?: ReplayGuard;
  readonly now?: () => number;
}

export interface JobRunResult {
  readonly outputs: ResultTensor[];
  readonly receipt: Signed<ResultReceipt>;
}

export type OfferDecision =
  | { readonly accept: false; readonly reason: string }
  | { readonly accept: true; readonly run: () => Promise<JobRunResult> };

export interface OfferContext {
  /** Sends a progress frame (throttled; ignored before acceptance and after the result). */
  reportProgress(fraction: number, message?: string): void;
  /** Aborted when the coordinator cancels, resets the stream or disconnects. */
  readonly signal: AbortSignal;
  readonly remotePeer: string;
}

/** An error a job runner throws to choose the `error` frame's code (UPPER_SNAKE). */
export interface CodedError {
  readonly code: string;
  readonly message: string;
}

export interface HandleJobOffersOptions {
  /**
   * Validates and verifies the signed offer exactly as received (frames only check its outline);
   * throws (ideally `OfferVerificationError`) to reject it. See `createOfferVerifier`.
   */
  readonly verifyOffer: (offer: unknown, meta: OfferMeta) => Signed<JobOffer> | Promise<Signed<JobOffer>>;
  readonly onOffer: (offer: Signed<JobOffer>, ctx: OfferContext) => Promise<OfferDecision>;
  readonly offerReadTimeoutMs?: number;
  /**
   * Largest offer frame taken from this peer, decided before anything is read (the stream buffers
   * no more than this plus 64 KiB). An agent gives its known coordinators `DATA_FRAME_MAX_BYTES`
   * and anyone else a control-frame cap, so a stranger cannot make it buffer 96 MiB per stream.
   * Default: `DATA_FRAME_MAX_BYTES` for every peer.
   */
  readonly maxOfferBytes?: (remotePeer: string) => number;
  readonly maxInboundStreams?: number;
  /**
   * How often a running job sends a heartbeat (a `progress` frame repeating the last fraction);
   * default DEFAULT_HEARTBEAT_INTERVAL_MS, 0 sends none. Must stay well below the coordinator's
   * silence timeout (DEFAULT_SILENCE_TIMEOUT_MS).
   */
  readonly heartbeatIntervalMs?: number;
  /** Called when a stream fails on the peer's side (garbage, oversize, timeout): feed peer penalties. */
  readonly onStreamError?: (remotePeer: string, err: StreamError) => void;
  readonly logger?: P2pLogger;
}
