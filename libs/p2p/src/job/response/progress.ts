// Progress and heartbeats as the response side sends them.
import { DEFAULT_HEARTBEAT_INTERVAL_MS, PROGRESS_MIN_INTERVAL_MS } from '../constants.js';

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
