import { describe, expect, it } from 'vitest';
import { deadlineError } from './deadline.js';

describe('deadlineError', () => {
  it('says the deadline passed, quoting the latest distinct attempt errors', () => {
    expect(deadlineError([])).toEqual({
      code: 'DEADLINE_PASSED',
      message: 'the deadline passed before a provider finished the job',
    });
    const error = deadlineError([
      { attempt: 1, error: 'TIMEOUT: silent' },
      { attempt: 2, error: null },
      { attempt: 3, error: 'input fault: BAD_INPUT: shapes' },
      { attempt: 4, error: 'TIMEOUT: silent' },
    ]);
    expect(error.message).toBe(
      'the deadline passed before a provider finished the job; its attempts ended with: TIMEOUT: silent | input fault: BAD_INPUT: shapes',
    );
    expect(error.details).toEqual({
      attemptErrors: ['TIMEOUT: silent', 'input fault: BAD_INPUT: shapes', 'TIMEOUT: silent'],
    });
  });
});
