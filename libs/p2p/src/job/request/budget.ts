// The result bytes one coordinator stream may buffer, reserved in the coordinator's shared budget.
import { JobProtocolError } from '../../errors.js';
import { FRAME_BUFFER_SLACK_BYTES } from '../../frames.js';
import { ResultBudgetError, type ResultByteBudget, type ResultReservation } from '../../result-budget.js';
import { describeError } from '../describe-error.js';
import { asJobError } from './errors.js';

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
      throw new JobProtocolError('BUDGET_EXHAUSTED', `result budget: ${describeError(err)}`, { cause: err });
    }
    this.held.push(reservation);
    this.reservedBytes += delta;
  }
}
