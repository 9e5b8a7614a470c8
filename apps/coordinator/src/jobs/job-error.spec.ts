import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JOB_ERROR_CODES, MAX_JOB_ERROR_MESSAGE, jobErrorOf, storedJobError } from './job-error.js';
import { JOB_STATES } from './job-state.js';

describe('job errors', () => {
  it('round-trips every code and message through the stored column', () => {
    fc.assert(
      fc.property(fc.constantFrom(...JOB_ERROR_CODES), fc.string({ maxLength: 200 }), (code, message) => {
        expect(jobErrorOf('FAILED', storedJobError({ code, message }))).toEqual({ code, message });
      }),
    );
  });

  it('gives every FAILED and EXPIRED job an error, and no other job one', () => {
    for (const state of JOB_STATES) {
      const error = jobErrorOf(state, null);
      if (state === 'FAILED') expect(error).toEqual({ code: 'FAILED', message: 'no reason was recorded' });
      else if (state === 'EXPIRED') expect(error?.code).toBe('DEADLINE_PASSED');
      else expect(error).toBeNull();
    }
  });

  it('reads a message stored before codes with its state’s code', () => {
    expect(jobErrorOf('EXPIRED', 'the deadline passed before a provider finished the job')).toEqual({
      code: 'DEADLINE_PASSED',
      message: 'the deadline passed before a provider finished the job',
    });
    expect(jobErrorOf('FAILED', 'REMOTE_ERROR: provider error X')).toEqual({
      code: 'FAILED',
      message: 'REMOTE_ERROR: provider error X',
    });
  });

  it('cuts a long message', () => {
    const stored = storedJobError({ code: 'UNPLACEABLE', message: 'x'.repeat(MAX_JOB_ERROR_MESSAGE * 2) });
    expect(jobErrorOf('FAILED', stored)?.message).toHaveLength(MAX_JOB_ERROR_MESSAGE);
  });
});
