import {
  JOB_BATCH_PROTOCOL_ID,
  JOB_PROTOCOL_ID,
  ReplayGuard,
  hashOutputs,
  hashTensors,
  isProtocolError,
  verifySigned,
  type JobOffer,
  type ResultReceipt,
  type Signed,
  type TensorWire,
} from '#protocol';
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import type { Libp2p } from 'libp2p';

import { JobProtocolError, StreamError } from './errors.js';
import { CONTROL_FRAME_MAX_BYTES, DATA_FRAME_MAX_BYTES, FramedStream } from './frames.js';
import type { P2pLogger } from './gossip.js';
import {
  CancelFrameSchema,
  OfferDecisionFrameSchema,
  OfferFrameSchema,
  RunFrameSchema,
} from './job-frames.js';
import { serveJobBatch } from './job-batch-protocol.js';
import {
  DEFAULT_SILENCE_TIMEOUT_MS,
  OfferVerificationError,
  SILENT_LOGGER,
  asJobError,
  closeAndLinger,
  describe,
  errorFrameOf,
  isAborted,
  isNewProgress,
  offerCap,
  onServeFailure,
  progressOf,
  progressReporter,
  rejectReason,
  remoteError,
  ResultStreamBudget,
  startHeartbeat,
  toPeerId,
  type ProgressState,
} from './job-protocol-shared.js';
import type { ResultByteBudget } from './result-budget.js';
import { expectedResultFrameBytes } from './result-size.js';

export {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_SILENCE_TIMEOUT_MS,
  OfferVerificationError,
  PROGRESS_MIN_INTERVAL_MS,
  RESULT_LINGER_MS,
  type OfferVerificationErrorCode,
} from './job-protocol-shared.js';

/** How long a provider has to accept or reject an offer. */
export const DEFAULT_ACCEPT_TIMEOUT_MS = 10_000;
/** How long an agent waits for the offer frame after the coordinator opened the stream. */
export const DEFAULT_OFFER_READ_TIMEOUT_MS = 30_000;
/** Most concurrent job streams an agent serves. */
export const DEFAULT_MAX_JOB_STREAMS = 64;

// ---------------------------------------------------------------------------------------------
// Coordinator side
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
  readonly outputs: TensorWire[];
  readonly receipt: Signed<ResultReceipt>;
}

export interface RejectedJob {
  readonly status: 'rejected';
  readonly code: 'REJECTED';
  readonly reason: string;
}

export type JobOfferOutcome = CompletedJob | RejectedJob;

/**
 * Checks a provider's result against the offer it answers: receipt signature by `providerAddress`,
 * job id and attempt, provider peer id, input hash of the offered spec and `hashOutputs(outputs)`.
 * Throws `JobProtocolError('BAD_RECEIPT')`.
 */
export function verifyJobResult(
  offer: JobOffer,
  provider: { readonly peerId: string; readonly address: string },
  outputs: readonly TensorWire[],
  receipt: unknown,
  now: number = Date.now(),
): Signed<ResultReceipt> {
  let signed: Signed<ResultReceipt>;
  try {
    signed = verifySigned('receipt', receipt, { expectedSigner: provider.address, now });
  } catch (err) {
    throw new JobProtocolError('BAD_RECEIPT', `receipt: ${describe(err)}`, { cause: err });
  }
  const r = signed.payload;
  const problems: string[] = [];
  if (r.jobId !== offer.jobId) problems.push(`jobId ${r.jobId} != ${offer.jobId}`);
  if (r.attempt !== offer.attempt) problems.push(`attempt ${r.attempt} != ${offer.attempt}`);
  if (r.providerPeerId !== provider.peerId)
    problems.push(`providerPeerId ${r.providerPeerId} != ${provider.peerId}`);
  if (r.inputHash !== hashTensors(offer.spec.inputs))
    problems.push('inputHash does not match the offered inputs');
  if (r.outputHash !== hashOutputs(outputs)) problems.push('outputHash does not match the outputs sent');
  if (problems.length > 0) throw new JobProtocolError('BAD_RECEIPT', `receipt: ${problems.join('; ')}`);
  return signed;
}

/**
 * Offers one job attempt to a provider over `JOB_PROTOCOL_ID` and waits for its outcome. Dials by
 * peer id, so libp2p reuses the connection the agent opened (agents behind NAT never listen).
 *
 * Resolves `completed` (receipt verified) or `rejected`; throws `JobProtocolError` with `DIAL_FAILED`,
 * `TIMEOUT` (no decision, no result by the deadline, or silence), `STREAM_RESET`, `DISCONNECTED`,
 * `BAD_FRAME`, `FRAME_TOO_LARGE`, `BAD_RECEIPT`, `REMOTE_ERROR`, `BUDGET_EXHAUSTED` or `CANCELLED`.
 */
export async function sendJobOffer(
  node: Libp2p,
  peer: string | PeerId,
  signedOffer: Signed<JobOffer>,
  options: SendJobOfferOptions,
): Promise<JobOfferOutcome> {
  const now = options.now ?? Date.now;
  const peerId = toPeerId(peer);
  const { signal } = options;
  if (signal?.aborted === true) throw new JobProtocolError('CANCELLED', 'cancelled before dialing');

  const resultCap = resultFrameCap(signedOffer.payload, options);
  const deadlineAt = signedOffer.payload.deadlineAt;
  const budget = new ResultStreamBudget(
    options.resultBudget,
    peerId.toString(),
    resultCap,
    () => deadlineAt - now() + Date.now(),
    signal,
  );
  try {
    await budget.reserveUpfront();
    return await offerOnStream(node, peerId, signedOffer, options, resultCap, budget);
  } finally {
    budget.release();
  }
}

/** The result frame cap of one offer: `maxResultBytes` or the spec's expected result, ≤ DATA_FRAME_MAX_BYTES. */
export function resultFrameCap(
  offer: JobOffer,
  options: Pick<SendJobOfferOptions, 'maxResultBytes'>,
): number {
  return Math.min(options.maxResultBytes ?? expectedResultFrameBytes(offer.spec), DATA_FRAME_MAX_BYTES);
}

async function offerOnStream(
  node: Libp2p,
  peerId: PeerId,
  signedOffer: Signed<JobOffer>,
  options: SendJobOfferOptions,
  resultCap: number,
  budget: ResultStreamBudget,
): Promise<JobOfferOutcome> {
  const now = options.now ?? Date.now;
  const { signal } = options;
  let stream: Stream;
  try {
    // The protocol name goes out with the offer (no round trip of its own before the first frame);
    // a peer that does not speak it fails the first read, like any other refusal.
    stream = await node.dialProtocol(peerId, JOB_PROTOCOL_ID, { signal, negotiateFully: false });
  } catch (err) {
    if (isAborted(signal)) throw new JobProtocolError('CANCELLED', 'cancelled while dialing', { cause: err });
    throw new JobProtocolError('DIAL_FAILED', `dial ${peerId.toString()}: ${describe(err)}`, { cause: err });
  }
  const framed = new FramedStream(stream, {
    maxFrameBytes: resultCap,
    maxBufferedBytes: budget.upfrontBytes,
    admit: budget.admit,
  });
  const onAbort = (): void => {
    framed
      .write({ type: 'cancel', reason: 'cancelled by coordinator' })
      .catch(() => undefined)
      .finally(() => framed.abort(new StreamError('ABORTED', 'cancelled by coordinator')));
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  try {
    await framed.write({ type: 'offer', offer: signedOffer }, { signal });
    const decision = await framed.read(OfferDecisionFrameSchema, {
      timeoutMs: options.acceptTimeoutMs ?? DEFAULT_ACCEPT_TIMEOUT_MS,
      maxBytes: CONTROL_FRAME_MAX_BYTES,
      signal,
    });
    if (decision.type === 'reject') {
      await framed.close();
      return { status: 'rejected', code: 'REJECTED', reason: decision.reason };
    }
    options.onAccepted?.();

    const resultTimeoutMs = options.resultTimeoutMs ?? Math.max(0, signedOffer.payload.deadlineAt - now());
    const resultDeadline = now() + resultTimeoutMs;
    const silenceMs = options.silenceTimeoutMs ?? DEFAULT_SILENCE_TIMEOUT_MS;
    let lastProgress: JobProgress | undefined;
    for (;;) {
      const frame = await framed.read(RunFrameSchema, {
        timeoutMs: Math.max(0, resultDeadline - now()),
        idleTimeoutMs: silenceMs > 0 ? silenceMs : undefined,
        maxBytes: resultCap,
        signal,
      });
      if (frame.type === 'progress') {
        const progress = progressOf(frame);
        if (isNewProgress(lastProgress, progress)) options.onProgress?.(progress);
        lastProgress = progress;
        continue;
      }
      if (frame.type === 'error') throw remoteError(frame);
      const receipt = verifyJobResult(
        signedOffer.payload,
        { peerId: peerId.toString(), address: options.providerAddress },
        frame.outputs,
        frame.receipt,
        now(),
      );
      await framed.close();
      return { status: 'completed', outputs: frame.outputs, receipt };
    }
  } catch (err) {
    const failure = budget.failure ?? asJobError(err, signal);
    framed.abort(new StreamError('ABORTED', failure.message));
    throw failure;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

// ---------------------------------------------------------------------------------------------
// Agent side
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

export interface JobRunResult {
  readonly outputs: TensorWire[];
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

/**
 * Serves `JOB_PROTOCOL_ID` (and `JOB_BATCH_PROTOCOL_ID`, the same per offer) on an agent: reads the offer, verifies it, asks `onOffer`, and on
 * acceptance runs the job, streaming progress and then the result (or an error). A bad stream only
 * ever ends that stream. Resolves a function that stops serving.
 */
export async function handleJobOffers(
  node: Libp2p,
  options: HandleJobOffersOptions,
): Promise<() => Promise<void>> {
  const logger = options.logger ?? SILENT_LOGGER;

  const serve = async (stream: Stream, connection: Connection): Promise<void> => {
    const remotePeer = connection.remotePeer.toString();
    const cap = offerCap(options, remotePeer);
    const framed = new FramedStream(stream, { maxFrameBytes: cap });
    const controller = new AbortController();
    let linger: ReturnType<typeof setTimeout> | undefined;
    try {
      const { offer } = await framed.read(OfferFrameSchema, {
        timeoutMs: options.offerReadTimeoutMs ?? DEFAULT_OFFER_READ_TIMEOUT_MS,
        maxBytes: cap,
      });
      let verified: Signed<JobOffer>;
      try {
        verified = await options.verifyOffer(offer, { remotePeer });
      } catch (err) {
        const { code, reason } = rejectReason(err);
        logger.debug({ remotePeer, code }, 'job offer failed verification');
        await framed.write({ type: 'reject', reason });
        await framed.close();
        return;
      }

      let accepted = false;
      let finished = false;
      const live = (): boolean => accepted && !finished && !controller.signal.aborted;
      const progress: ProgressState = { fraction: 0 };
      const ctx: OfferContext = {
        signal: controller.signal,
        remotePeer,
        reportProgress: progressReporter(
          live,
          (frame) => void framed.write(frame).catch(() => undefined),
          progress,
        ),
      };

      const decision = await options.onOffer(verified, ctx);
      if (!decision.accept) {
        await framed.write({ type: 'reject', reason: decision.reason.slice(0, 1000) });
        await framed.close();
        return;
      }
      await framed.write({ type: 'accept' });
      accepted = true;

      // Only `cancel` (or the end of the stream) may come from the coordinator from here on.
      const watcher = framed
        .readOrEnd(CancelFrameSchema, { maxBytes: CONTROL_FRAME_MAX_BYTES })
        .then((frame) => {
          if (frame !== undefined) controller.abort(new Error(frame.reason ?? 'cancelled by coordinator'));
          else if (!finished) controller.abort(new Error('coordinator closed the stream'));
        })
        .catch((err: unknown) => {
          if (!finished) controller.abort(err);
        });

      const stopHeartbeat = startHeartbeat(options.heartbeatIntervalMs, () => {
        if (live()) framed.write({ type: 'progress', fraction: progress.fraction }).catch(() => undefined);
      });
      let result: JobRunResult | undefined;
      let failure: unknown;
      try {
        result = await decision.run();
      } catch (err) {
        failure = err;
      } finally {
        stopHeartbeat();
      }
      finished = true;
      if (framed.error === undefined) {
        if (result !== undefined && !controller.signal.aborted) {
          await framed.write({ type: 'result', outputs: result.outputs, receipt: result.receipt });
        } else {
          await framed.write(errorFrameOf(failure, controller.signal.aborted));
        }
        linger = await closeAndLinger(framed);
      }
      await watcher;
    } catch (err) {
      controller.abort(err);
      onServeFailure(err, framed, remotePeer, options, 'job stream');
    } finally {
      if (linger !== undefined) clearTimeout(linger);
    }
  };

  await node.handle(
    JOB_PROTOCOL_ID,
    (stream, connection) => {
      void serve(stream, connection);
    },
    { maxInboundStreams: options.maxInboundStreams ?? DEFAULT_MAX_JOB_STREAMS },
  );
  await node.handle(
    JOB_BATCH_PROTOCOL_ID,
    (stream, connection) => {
      void serveJobBatch(stream, connection, options);
    },
    { maxInboundStreams: options.maxInboundStreams ?? DEFAULT_MAX_JOB_STREAMS },
  );
  return async () => {
    await node.unhandle([JOB_PROTOCOL_ID, JOB_BATCH_PROTOCOL_ID]);
  };
}
