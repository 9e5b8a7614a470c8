// How the request side turns what went wrong on a stream into the caller's `JobProtocolError`.
import { JobProtocolError, StreamError, jobErrorFromStream } from '../../errors.js';
import { describeError } from '../describe-error.js';
import type { ErrorFrame } from '../frames.js';

export function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** The provider's `error` frame as the caller's error (`REMOTE_ERROR` with its code). */
export function remoteError(frame: ErrorFrame): JobProtocolError {
  return new JobProtocolError('REMOTE_ERROR', `provider error ${frame.code}: ${frame.message}`, {
    remoteCode: frame.code,
  });
}

/** Any failure of an attempt as a `JobProtocolError` (`CANCELLED` once the caller's signal aborted). */
export function asJobError(err: unknown, signal: AbortSignal | undefined): JobProtocolError {
  if (signal?.aborted === true && !(err instanceof JobProtocolError && err.code === 'REMOTE_ERROR')) {
    return new JobProtocolError('CANCELLED', 'cancelled by caller', { cause: err });
  }
  if (err instanceof JobProtocolError) return err;
  if (err instanceof StreamError) return jobErrorFromStream(err, 'job stream');
  return new JobProtocolError('STREAM_RESET', `job stream: ${describeError(err)}`, { cause: err });
}
