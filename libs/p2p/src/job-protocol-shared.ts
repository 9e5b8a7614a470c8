// Pieces both job protocols share (one offer per stream, and batches): not part of the library's API.
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';

import { JobProtocolError, StreamError, jobErrorFromStream } from './errors.js';
import type { P2pLogger } from './gossip.js';
import type { ErrorFrame, ProgressFrame } from './job-frames.js';
import type { CodedError, JobProgress } from './job-protocol.js';

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
