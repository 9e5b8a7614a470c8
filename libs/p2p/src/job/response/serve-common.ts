// What both response handlers (one offer per stream, and batches) do the same way.
import { StreamError } from '../../errors.js';
import { DATA_FRAME_MAX_BYTES, type FramedStream } from '../../frames.js';
import type { P2pLogger } from '../../gossip.js';
import { RESULT_LINGER_MS } from '../constants.js';
import { describeError } from '../describe-error.js';
import type { ErrorFrame } from '../frames.js';
import type { CodedError, HandleJobOffersOptions } from '../types.js';
import { OfferVerificationError } from './verify-offer.js';

export const SILENT_LOGGER: P2pLogger = { debug: () => undefined, warn: () => undefined };

const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/** The `error` frame for a run that failed with `err` (or was cancelled). */
export function errorFrameOf(err: unknown, cancelled: boolean): ErrorFrame {
  if (cancelled) return { type: 'error', code: 'CANCELLED', message: 'cancelled' };
  const coded = err as Partial<CodedError> | undefined;
  const code =
    typeof coded?.code === 'string' && ERROR_CODE.test(coded.code) ? coded.code : 'EXECUTION_FAILED';
  return { type: 'error', code, message: describeError(err).slice(0, 1000) };
}

/** Largest offer frame taken from `remotePeer`, decided before anything is read. */
export function offerCap(options: HandleJobOffersOptions, remotePeer: string): number {
  return Math.min(options.maxOfferBytes?.(remotePeer) ?? DATA_FRAME_MAX_BYTES, DATA_FRAME_MAX_BYTES);
}

/** The `reject` reason for an offer that failed `verifyOffer`, and its code. */
export function rejectReason(err: unknown): { code: string; reason: string } {
  const code = err instanceof OfferVerificationError ? err.code : 'INVALID_OFFER';
  return { code, reason: `${code}: ${describeError(err)}`.slice(0, 1000) };
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
    logger.warn({ remotePeer, err: describeError(err) }, `${what} handler failed`);
    framed.abort(new StreamError('ABORTED', 'handler failed'));
  }
}
