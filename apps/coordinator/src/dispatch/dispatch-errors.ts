// What one dispatch ends in: its outcome, or an error that makes BullMQ retry it with backoff.

export type DispatchOutcome = 'completed' | 'skipped' | 'expired' | 'failed';

/** Thrown to make BullMQ retry with backoff: nothing can take the job right now. */
export class NoCapacityError extends Error {
  constructor(jobId: string, detail: string) {
    super(`no provider can take job ${jobId} now: ${detail}`);
    this.name = 'NoCapacityError';
  }
}

/** Thrown to make BullMQ retry with backoff: an attempt failed and the job went back to the queue. */
export class AttemptsFailedError extends Error {
  constructor(jobId: string, reasons: string[]) {
    super(`job ${jobId}: ${reasons.join('; ')}`);
    this.name = 'AttemptsFailedError';
  }
}
