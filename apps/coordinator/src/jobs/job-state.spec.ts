import { describe, expect, it } from 'vitest';
import { DomainError } from '../common/domain-error.js';
import { LIVE_JOB_STATES } from '../tensors/tensors.repository.js';
import {
  CORRECTABLE_STATES,
  JOB_STATES,
  TERMINAL_STATES,
  assertTransition,
  canTransition,
  statesLeadingTo,
} from './job-state.js';

describe('job state machine', () => {
  it('follows the happy path queued → dispatched → running → verifying → completed', () => {
    expect(canTransition('QUEUED', 'DISPATCHED')).toBe(true);
    expect(canTransition('DISPATCHED', 'RUNNING')).toBe(true);
    expect(canTransition('RUNNING', 'VERIFYING')).toBe(true);
    expect(canTransition('VERIFYING', 'COMPLETED')).toBe(true);
  });

  it('never leaves a terminal state', () => {
    for (const from of TERMINAL_STATES) {
      for (const to of JOB_STATES) expect(canTransition(from, to)).toBe(false);
    }
  });

  it('rejects skipping straight to completed and reports both states', () => {
    expect(() => assertTransition('QUEUED', 'COMPLETED')).toThrowError(DomainError);
    try {
      assertTransition('QUEUED', 'COMPLETED');
    } catch (err) {
      expect((err as DomainError).code).toBe('ILLEGAL_TRANSITION');
      expect((err as DomainError).message).toBe('a queued job cannot become completed');
    }
  });

  it('corrects the result of a completed job only, which stays completed', () => {
    expect(CORRECTABLE_STATES).toEqual(['COMPLETED']);
    for (const state of CORRECTABLE_STATES) expect(TERMINAL_STATES).toContain(state);
  });

  it("agrees with the tensors' list of jobs that have not finished (what retention never deletes from)", () => {
    expect([...LIVE_JOB_STATES].sort()).toEqual(
      JOB_STATES.filter((s) => !TERMINAL_STATES.includes(s)).sort(),
    );
  });

  it('lets only live jobs be cancelled', () => {
    expect(statesLeadingTo('CANCELLED').sort()).toEqual(['DISPATCHED', 'QUEUED', 'RUNNING']);
  });
});
