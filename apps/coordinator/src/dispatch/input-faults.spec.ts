import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JobProtocolError } from '@gpumesh/p2p';
import {
  INPUT_FAULT_OPERATORS,
  claimDisprovedNote,
  claimsByJob,
  disprovedClaims,
  inputFaultFailure,
  inputFaultOf,
  type InputFaultClaim,
  type InputFaultReport,
} from './input-faults.js';
import { CLAIM_DISPROVED_EVENT, type DisprovedAttempt } from '../jobs/attempts.repository.js';

const report = (providerId: string, operator: string, error = 'BAD_INPUT: dtype'): InputFaultReport => ({
  providerId,
  operator,
  error,
});

describe('inputFaultFailure', () => {
  it('needs two distinct operators', () => {
    expect(INPUT_FAULT_OPERATORS).toBe(2);
    expect(inputFaultFailure([])).toBeNull();
    expect(inputFaultFailure([report('p1', 'op1')])).toBeNull();
    // Two peers of one operator are one voice: a lying operator cannot fail a job alone.
    expect(inputFaultFailure([report('p1', 'op1'), report('p2', 'op1')])).toBeNull();
    const failure = inputFaultFailure([report('p1', 'op1'), report('p2', 'op2')]);
    expect(failure?.code).toBe('INPUT_REJECTED');
    expect(failure?.message).toBe(
      'providers of 2 distinct operators could not run this job: BAD_INPUT: dtype',
    );
    expect(failure?.details).toEqual({
      reports: [
        { provider: 'p1', error: 'BAD_INPUT: dtype' },
        { provider: 'p2', error: 'BAD_INPUT: dtype' },
      ],
    });
  });

  it('quotes each distinct error once', () => {
    const failure = inputFaultFailure([
      report('p1', 'op1', 'BAD_INPUT: a'),
      report('p2', 'op2', 'MODEL_LOAD_FAILED: b'),
      report('p3', 'op3', 'BAD_INPUT: a'),
    ]);
    expect(failure?.message).toBe(
      'providers of 3 distinct operators could not run this job: BAD_INPUT: a | MODEL_LOAD_FAILED: b',
    );
  });

  it('fails exactly when the reports span the quorum of operators (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            providerId: fc.string(),
            operator: fc.constantFrom('a', 'b', 'c'),
            error: fc.string(),
          }),
        ),
        (reports) => {
          const operators = new Set(reports.map((r) => r.operator)).size;
          expect(inputFaultFailure(reports) !== null).toBe(operators >= INPUT_FAULT_OPERATORS);
        },
      ),
    );
  });
});

describe('inputFaultOf', () => {
  const remote = (code: string): JobProtocolError =>
    new JobProtocolError('REMOTE_ERROR', `provider error ${code}: it says so`, { remoteCode: code });

  it('reads the provider’s input-fault codes, and nothing else, as the input’s fault', () => {
    expect(inputFaultOf(remote('BAD_INPUT'))).toBe('BAD_INPUT: it says so');
    expect(inputFaultOf(remote('MODEL_LOAD_FAILED'))).toBe('MODEL_LOAD_FAILED: it says so');
    expect(inputFaultOf(remote('EXECUTION_FAILED'))).toBeNull();
    expect(inputFaultOf(remote('TIMEOUT'))).toBeNull();
    expect(inputFaultOf(new JobProtocolError('TIMEOUT', 'silent'))).toBeNull();
    expect(inputFaultOf(new Error('BAD_INPUT: not from a provider'))).toBeNull();
  });
});

describe('disprovedClaims', () => {
  const claim = fc.record({
    attemptId: fc.uuid(),
    attempt: fc.integer({ min: 1, max: 50 }),
    providerId: fc.string(),
    operator: fc.constantFrom('a', 'b', 'c'),
    error: fc.string(),
  });

  it('disproves every claim of a job whose result was verified, and none otherwise (property)', () => {
    fc.assert(
      fc.property(fc.array(claim), fc.boolean(), (claims, verified) => {
        expect(disprovedClaims(claims, verified)).toEqual(verified ? claims : []);
      }),
    );
  });

  it("tells the job's owner which attempt's claim was disproved and whose result ran the job", () => {
    const c: InputFaultClaim = {
      attemptId: 'a1',
      attempt: 2,
      providerId: 'liar',
      operator: 'op1',
      error: 'BAD_INPUT: dtype',
    };
    expect(claimDisprovedNote(c, ['honest'])).toEqual({
      type: CLAIM_DISPROVED_EVENT,
      data: { attempt: 2, provider: 'liar', claim: 'BAD_INPUT: dtype', ranBy: ['honest'] },
    });
  });
});

describe('claimsByJob', () => {
  const claimOfJob = fc.record({
    jobId: fc.constantFrom('j1', 'j2', 'j3'),
    attemptId: fc.uuid(),
    attempt: fc.integer({ min: 1, max: 50 }),
    providerId: fc.string(),
    operator: fc.constantFrom('a', 'b', 'c'),
    error: fc.string(),
  });

  it('groups claims by job in the order of their first claim, each in the order given', () => {
    const c = (jobId: string, attempt: number): DisprovedAttempt => ({
      jobId,
      attemptId: `${jobId}-${attempt}`,
      attempt,
      providerId: 'liar',
      operator: 'op1',
      error: 'BAD_INPUT: dtype',
    });
    expect([...claimsByJob([])]).toEqual([]);
    expect([...claimsByJob([c('j2', 1), c('j1', 1), c('j2', 3)])]).toEqual([
      ['j2', [c('j2', 1), c('j2', 3)]],
      ['j1', [c('j1', 1)]],
    ]);
  });

  it('keeps every claim once, under its own job, in the order given (property)', () => {
    fc.assert(
      fc.property(fc.array(claimOfJob), (claims) => {
        const byJob = claimsByJob(claims);
        expect([...byJob.keys()]).toEqual([...new Set(claims.map((x) => x.jobId))]);
        for (const [jobId, ofJob] of byJob) {
          expect(ofJob).toEqual(claims.filter((x) => x.jobId === jobId));
        }
        expect([...byJob.values()].flat()).toHaveLength(claims.length);
      }),
    );
  });
});
