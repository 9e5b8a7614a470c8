/**
 * Typed errors of the p2p layer. Each carries a string `code` so callers (the dispatch worker, the
 * agent daemon, metrics) branch on it without parsing messages.
 */

/** Why a framed stream failed. Any of these aborts that stream only. */
export type StreamErrorCode =
  | 'BAD_FRAME' // undecodable length prefix, JSON or schema mismatch, truncated frame
  | 'FRAME_TOO_LARGE' // length prefix (or buffered data) above the cap
  | 'TIMEOUT' // no complete frame in time
  | 'STREAM_RESET' // the remote (or the transport) reset the stream
  | 'STREAM_CLOSED' // the remote closed its write end before the expected frame
  | 'ABORTED'; // the local caller aborted

export class StreamError extends Error {
  readonly code: StreamErrorCode;

  constructor(code: StreamErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StreamError';
    this.code = code;
  }
}

/** How a job attempt failed on the coordinator side (a rejection is a result, not an error). */
export type JobProtocolErrorCode =
  | 'DIAL_FAILED' // could not open a stream to the provider
  | 'TIMEOUT' // no accept/reject or no result in time, or silence (no byte) for the silence window
  | 'STREAM_RESET' // the provider reset the stream
  | 'DISCONNECTED' // the provider closed the stream or the connection without a result
  | 'BAD_FRAME' // a frame did not decode or was out of order, or the stream ended inside a frame
  | 'FRAME_TOO_LARGE' // a frame (or the unread data) above what the offered spec's result may take
  | 'BUDGET_EXHAUSTED' // this coordinator had no result-byte budget before the deadline: nothing was sent
  | 'BAD_RECEIPT' // the receipt failed signature, signer, job/attempt or output-hash checks
  | 'REMOTE_ERROR' // the provider reported an `error` frame
  | 'CANCELLED'; // the caller's signal aborted

export class JobProtocolError extends Error {
  readonly code: JobProtocolErrorCode;
  /** The provider's own error code, for `REMOTE_ERROR`. */
  readonly remoteCode?: string;

  constructor(
    code: JobProtocolErrorCode,
    message: string,
    options?: { cause?: unknown; remoteCode?: string },
  ) {
    super(message, options);
    this.name = 'JobProtocolError';
    this.code = code;
    this.remoteCode = options?.remoteCode;
  }
}

export type ArtifactErrorCode =
  | 'DIAL_FAILED'
  | 'NOT_FOUND' // the coordinator does not have the artifact
  | 'FORBIDDEN' // the coordinator refused: no open offer of a job that uses the artifact
  | 'HASH_MISMATCH' // the bytes received do not hash to the requested hash
  | 'TOO_LARGE' // the announced artifact exceeds the caller's cap
  | 'TIMEOUT'
  | 'STREAM_RESET'
  | 'DISCONNECTED'
  | 'BAD_FRAME'
  | 'REMOTE_ERROR'
  | 'CANCELLED';

export class ArtifactError extends Error {
  readonly code: ArtifactErrorCode;

  constructor(code: ArtifactErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ArtifactError';
    this.code = code;
  }
}

/**
 * The code a request/response protocol gives a stream failure: the same for every protocol but for
 * an oversize frame, which each names its own way (`oversize`).
 */
function codeOfStreamFailure<C extends string>(
  err: StreamError,
  oversize: C,
): 'TIMEOUT' | 'STREAM_RESET' | 'DISCONNECTED' | 'CANCELLED' | 'BAD_FRAME' | C {
  switch (err.code) {
    case 'TIMEOUT':
    case 'STREAM_RESET':
      return err.code;
    case 'STREAM_CLOSED':
      return 'DISCONNECTED';
    case 'ABORTED':
      return 'CANCELLED';
    case 'FRAME_TOO_LARGE':
      return oversize;
    default:
      return 'BAD_FRAME';
  }
}

/** Maps a stream failure to the job protocol's codes. */
export function jobErrorFromStream(err: StreamError, during: string): JobProtocolError {
  return new JobProtocolError(codeOfStreamFailure(err, 'FRAME_TOO_LARGE'), `${during}: ${err.message}`, {
    cause: err,
  });
}

/** Maps a stream failure to the artifact protocol's codes. */
export function artifactErrorFromStream(err: StreamError, during: string): ArtifactError {
  return new ArtifactError(codeOfStreamFailure(err, 'BAD_FRAME'), `${during}: ${err.message}`, {
    cause: err,
  });
}

export type EpochFileErrorCode =
  | 'DIAL_FAILED'
  | 'NOT_FOUND' // the peer does not hold a file with that hash
  | 'HASH_MISMATCH' // the bytes received do not hash to the requested file hash
  | 'TOO_LARGE' // the announced size exceeds the caller's cap
  | 'TIMEOUT'
  | 'STREAM_RESET'
  | 'DISCONNECTED'
  | 'BAD_FRAME'
  | 'REMOTE_ERROR'
  | 'CANCELLED';

export class EpochFileError extends Error {
  readonly code: EpochFileErrorCode;

  constructor(code: EpochFileErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EpochFileError';
    this.code = code;
  }
}

/** Maps a stream failure to the epoch-file protocol's codes. */
export function epochFileErrorFromStream(err: StreamError, during: string): EpochFileError {
  return new EpochFileError(codeOfStreamFailure(err, 'TOO_LARGE'), `${during}: ${err.message}`, {
    cause: err,
  });
}
