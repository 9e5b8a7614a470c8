import { describe, expect, it } from 'vitest';
import { AFTER_FAILED_ATTEMPTS_MS, dispatchBackoff, dispatchBackoffMs } from './dispatch-backoff.js';
import { AttemptsFailedError, NoCapacityError } from '../dispatch/dispatch-errors.js';
import { jobOptions, QueueJobName } from './queue.constants.js';

describe('dispatch backoff', () => {
  it('places a job again at once after its providers failed it, and backs off when nobody could take it', () => {
    const failed = new AttemptsFailedError('j', ['TIMEOUT: no result']);
    const full = new NoCapacityError('j', 'no free slot');
    for (const n of [1, 2, 5, 8]) expect(dispatchBackoffMs(n, failed, 1_000)).toBe(AFTER_FAILED_ATTEMPTS_MS);
    expect([1, 2, 3, 4].map((n) => dispatchBackoffMs(n, full, 1_000))).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(dispatchBackoffMs(3, new Error('database down'), 500)).toBe(2_000);
    expect(dispatchBackoffMs(1, failed, 20)).toBe(20); // never longer than the configured base
  });

  it('reads the base delay from the job options that dispatch jobs are added with', async () => {
    const opts = jobOptions(QueueJobName.Dispatch, { attempts: 8, backoffMs: 250 });
    expect(opts.backoff).toEqual({ type: 'dispatch', delay: 250 });
    const job = { opts } as unknown as Parameters<typeof dispatchBackoff>[3];
    expect(await dispatchBackoff(3, 'dispatch', new NoCapacityError('j', 'x'), job)).toBe(1_000);
    expect(await dispatchBackoff(3, 'dispatch', new AttemptsFailedError('j', ['x']), job)).toBe(100);
  });
});
