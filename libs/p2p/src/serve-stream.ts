import { StreamError } from './errors.js';
import type { FramedStream, WriteOptions } from './frames.js';
import type { P2pLogger } from './gossip.js';

/** Writes `bytes` as data frames of at most `chunkBytes` each. */
export async function writeChunked(
  framed: FramedStream,
  bytes: Uint8Array,
  chunkBytes: number,
  options: WriteOptions = {},
): Promise<void> {
  for (let offset = 0; offset < bytes.byteLength; offset += chunkBytes) {
    await framed.writeBytes(bytes.subarray(offset, offset + chunkBytes), options);
  }
}

/**
 * What a fetch protocol's server does when serving one stream failed: a stream fault that is the
 * peer's doing (a bad or oversize frame, a timeout) is logged and reported through
 * `onStreamError`; anything else is the handler's own failure, logged as such, and the stream is
 * aborted.
 */
export function serveFailed(
  err: unknown,
  framed: FramedStream,
  ctx: {
    readonly remotePeer: string;
    /** What was served, for the log: `artifact`, `epoch file`. */
    readonly what: string;
    readonly logger?: P2pLogger;
    readonly onStreamError?: (remotePeer: string, err: StreamError) => void;
  },
): void {
  const { remotePeer, what, logger } = ctx;
  if (err instanceof StreamError) {
    logger?.debug({ remotePeer, code: err.code, err: err.message }, `${what} stream failed`);
    if (err.code === 'BAD_FRAME' || err.code === 'FRAME_TOO_LARGE' || err.code === 'TIMEOUT') {
      ctx.onStreamError?.(remotePeer, err);
    }
  } else {
    logger?.warn({ remotePeer, err: String(err) }, `${what} handler failed`);
    framed.abort(new StreamError('ABORTED', 'handler failed'));
  }
}
