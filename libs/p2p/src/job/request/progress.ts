// Progress as the request side passes it on to its caller.
import type { ProgressFrame } from '../frames.js';
import type { JobProgress } from '../types.js';

export function progressOf(frame: ProgressFrame): JobProgress {
  return frame.message === undefined
    ? { fraction: frame.fraction }
    : { fraction: frame.fraction, message: frame.message };
}

/**
 * Whether a progress frame tells the caller something new: a heartbeat repeats the last fraction
 * without a message, and is not passed on.
 */
export function isNewProgress(last: JobProgress | undefined, next: JobProgress): boolean {
  return next.message !== undefined || next.fraction !== (last?.fraction ?? 0);
}
