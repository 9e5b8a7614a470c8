// Pieces both job protocols share (one offer per stream, and batches): not part of the library's API.
import type { ProtocolErrorCode } from '#protocol';
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';

import { JobProtocolError, StreamError, jobErrorFromStream } from './errors.js';
import { DATA_FRAME_MAX_BYTES, FRAME_BUFFER_SLACK_BYTES, type FramedStream } from './frames.js';
import type { P2pLogger } from './gossip.js';
import type { ErrorFrame, ProgressFrame } from './job-frames.js';
import type { CodedError, HandleJobOffersOptions, JobProgress } from './job-protocol.js';
import { ResultBudgetError, type ResultByteBudget, type ResultReservation } from './result-budget.js';

/** Progress frames are sent at most this often (the last one before the result always goes). */
export const PROGRESS_MIN_INTERVAL_MS = 100;
/** After sending its result, an agent gives the coordinator this long to close the stream. */
export const RESULT_LINGER_MS = 30_000;
/**
 * While a job runs, an agent sends a heartbeat this often: a `progress` frame repeating the last
 * fraction it reported (0 before any), so coordinators that predate heartbeats read it as progress.
 */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;
/**
 * After acceptance, a coordinator gives up on an attempt (`TIMEOUT`) when not one byte arrived for
 * this long: four heartbeats missed. Bytes count, not frames, so a large result arriving slowly is
 * not cut, while a provider that stops in the middle of a frame is.
 */
export const DEFAULT_SILENCE_TIMEOUT_MS = 20_000;
export type OfferVerificationErrorCode = ProtocolErrorCode | 'COORDINATOR_PEER_MISMATCH' | 'REPLAY' | 'STALE';
/** An offer the agent will not consider; `code` goes into the `reject` reason. */
export class OfferVerificationError extends Error {
  readonly code: OfferVerificationErrorCode;

  constructor(code: OfferVerificationErrorCode, message: string) {
    super(message);
    this.name = 'OfferVerificationError';
    this.code = code;
  }
}

export const SILENT_LOGGER: P2pLogger = { debug: () => undefined, warn: () => undefined };

export function toPeerId(peer: string | PeerId): PeerId {
  return typeof peer === 'string' ? peerIdFromString(peer) : peer;
}

export function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function progressOf(frame: ProgressFrame): JobProgress {
  return frame.message === undefined
    ? { fraction: frame.fraction }
    : { fraction: frame.fraction, message: frame.message };
}

export function remoteError(frame: ErrorFrame): JobProtocolError {
  return new JobProtocolError('REMOTE_ERROR', `provider error ${frame.code}: ${frame.message}`, {
    remoteCode: frame.code,
  });
}

export function asJobError(err: unknown, signal: AbortSignal | undefined): JobProtocolError {
  if (signal?.aborted === true && !(err instanceof JobProtocolError && err.code === 'REMOTE_ERROR')) {
    return new JobProtocolError('CANCELLED', 'cancelled by caller', { cause: err });
  }
  if (err instanceof JobProtocolError) return err;
  if (err instanceof StreamError) return jobErrorFromStream(err, 'job stream');
  return new JobProtocolError('STREAM_RESET', `job stream: ${describe(err)}`, { cause: err });
}

export const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

export function errorFrameOf(err: unknown, cancelled: boolean): ErrorFrame {
  if (cancelled) return { type: 'error', code: 'CANCELLED', message: 'cancelled' };
  const coded = err as Partial<CodedError> | undefined;
  const code =
    typeof coded?.code === 'string' && ERROR_CODE.test(coded.code) ? coded.code : 'EXECUTION_FAILED';
  return { type: 'error', code, message: describe(err).slice(0, 1000) };
}

/** Largest offer frame taken from `remotePeer`, decided before anything is read. */
export function offerCap(options: HandleJobOffersOptions, remotePeer: string): number {
  return Math.min(options.maxOfferBytes?.(remotePeer) ?? DATA_FRAME_MAX_BYTES, DATA_FRAME_MAX_BYTES);
}

/** The `reject` reason for an offer that failed `verifyOffer`, and its code. */
export function rejectReason(err: unknown): { code: string; reason: string } {
  const code = err instanceof OfferVerificationError ? err.code : 'INVALID_OFFER';
  return { code, reason: `${code}: ${describe(err)}`.slice(0, 1000) };
}

type ProgressOut = { type: 'progress'; fraction: number; message?: string };

/** The last fraction a progress reporter sent (what its heartbeats repeat). */
export interface ProgressState {
  fraction: number;
}

/**
 * An `OfferContext.reportProgress`: sends while `live()`, at most every PROGRESS_MIN_INTERVAL_MS
 * (a fraction of 1 always goes), with the fraction clamped to [0, 1] and the message capped; the
 * fraction sent is kept in `state`.
 */
export function progressReporter(
  live: () => boolean,
  send: (frame: ProgressOut) => void,
  state: ProgressState = { fraction: 0 },
): (fraction: number, message?: string) => void {
  let lastAt = 0;
  return (fraction, message) => {
    if (!live()) return;
    const at = performance.now();
    if (fraction < 1 && at - lastAt < PROGRESS_MIN_INTERVAL_MS) return;
    lastAt = at;
    const clamped = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
    state.fraction = clamped;
    send(
      message === undefined
        ? { type: 'progress', fraction: clamped }
        : { type: 'progress', fraction: clamped, message: message.slice(0, 1000) },
    );
  };
}

/**
 * Calls `beat` every `intervalMs` (default DEFAULT_HEARTBEAT_INTERVAL_MS; 0 sends none) until the
 * returned function is called.
 */
export function startHeartbeat(intervalMs: number | undefined, beat: () => void): () => void {
  const ms = intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  if (ms <= 0) return () => undefined;
  const timer = setInterval(beat, ms);
  timer.unref?.();
  return () => clearInterval(timer);
}

/**
 * Whether a progress frame tells the caller something new: a heartbeat repeats the last fraction
 * without a message, and is not passed on.
 */
export function isNewProgress(last: JobProgress | undefined, next: JobProgress): boolean {
  return next.message !== undefined || next.fraction !== (last?.fraction ?? 0);
}

/**
 * What a coordinator's result stream reserves before its offer is sent: its frame cap up to this,
 * plus FRAME_BUFFER_SLACK_BYTES. A small result (a 2×2 matmul) is covered at once; a larger frame
 * reserves the rest when its length prefix arrives (the stream paused until there is room), so a
 * long job holds only this much while it runs.
 */
export const RESULT_BYTES_RESERVED_UPFRONT = 64 * 1024;

/**
 * The result-byte budget of one coordinator stream to one provider: `reserveUpfront` before the offer
 * goes out, `admit` (for FramedStream) when a frame needs more, `release` when the stream is done.
 * Fails with `BUDGET_EXHAUSTED` (no room before `waitMs`: this coordinator's load, not the peer's
 * fault) or `CANCELLED`.
 */
export class ResultStreamBudget {
  /** Bytes the stream may buffer before it needs `admit`. */
  readonly upfrontBytes: number;
  /** Why `admit` failed, if it did (the stream then fails with FRAME_TOO_LARGE; report this instead). */
  failure: JobProtocolError | undefined;
  private readonly held: ResultReservation[] = [];
  private reservedBytes = 0;

  constructor(
    private readonly budget: ResultByteBudget | undefined,
    private readonly peer: string,
    frameCap: number,
    private readonly deadlineAt: () => number,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.upfrontBytes = Math.min(frameCap, RESULT_BYTES_RESERVED_UPFRONT) + FRAME_BUFFER_SLACK_BYTES;
  }

  async reserveUpfront(): Promise<void> {
    await this.reserve(this.upfrontBytes);
  }

  /** `FramedStreamOptions.admit`: reserves up to `bufferBytes` in all. */
  readonly admit = async (bufferBytes: number): Promise<void> => {
    try {
      await this.reserve(bufferBytes);
    } catch (err) {
      this.failure ??= err instanceof JobProtocolError ? err : asJobError(err, this.signal);
      throw err;
    }
  };

  release(): void {
    for (const r of this.held.splice(0)) r.release();
    this.reservedBytes = 0;
  }

  private async reserve(totalBytes: number): Promise<void> {
    const delta = totalBytes - this.reservedBytes;
    if (this.budget === undefined || delta <= 0) {
      this.reservedBytes = Math.max(this.reservedBytes, totalBytes);
      return;
    }
    let reservation: ResultReservation;
    try {
      reservation = await this.budget.reserve(this.peer, delta, {
        signal: this.signal,
        timeoutMs: Math.max(0, this.deadlineAt() - Date.now()),
      });
    } catch (err) {
      if (err instanceof ResultBudgetError && err.code === 'ABORTED') {
        throw new JobProtocolError('CANCELLED', 'cancelled while waiting for result budget', { cause: err });
      }
      throw new JobProtocolError('BUDGET_EXHAUSTED', `result budget: ${describe(err)}`, { cause: err });
    }
    this.held.push(reservation);
    this.reservedBytes += delta;
  }
}

/** Ends the agent's side after its last frame and gives the coordinator RESULT_LINGER_MS to close. */
export async function closeAndLinger(framed: FramedStream): Promise<ReturnType<typeof setTimeout>> {
  await framed.close();
  const linger = setTimeout(
    () => framed.abort(new StreamError('TIMEOUT', 'coordinator did not close')),
    RESULT_LINGER_MS,
  );
  linger.unref?.();
  return linger;
}

/**
 * A serving handler failed: a failure the peer caused (garbage, oversize, silence) feeds its
 * penalties; anything else is this side's bug, logged, and the stream is aborted.
 */
export function onServeFailure(
  err: unknown,
  framed: FramedStream,
  remotePeer: string,
  options: Pick<HandleJobOffersOptions, 'onStreamError' | 'logger'>,
  what: string,
): void {
  const logger = options.logger ?? SILENT_LOGGER;
  if (err instanceof StreamError) {
    logger.debug({ remotePeer, code: err.code, err: err.message }, `${what} failed`);
    if (err.code === 'BAD_FRAME' || err.code === 'FRAME_TOO_LARGE' || err.code === 'TIMEOUT') {
      options.onStreamError?.(remotePeer, err);
    }
  } else {
    logger.warn({ remotePeer, err: describe(err) }, `${what} handler failed`);
    framed.abort(new StreamError('ABORTED', 'handler failed'));
  }
}
