import { describe, expect, it } from 'vitest';
import type { Job, JobAttempt } from '#prisma';
import { encodeTensor, hashOutputs } from '@gpumesh/protocol';
import type { AttemptOutcome } from './attempt-runner.service.js';
import type { Adjudication } from './adjudicator.service.js';
import { singleCompletion, verifiedCompletion, verifiedResult } from './completion.js';
import { type InputFaultClaim } from './input-faults.js';
import { CLAIM_DISPROVED_EVENT } from '../jobs/attempts.repository.js';

const outputs = [encodeTensor('y', 'float32', [2], Float32Array.from([1, 2]))];
const terms = { feeBps: 250, hold: true };
const claim: InputFaultClaim = {
  attemptId: 'att-0',
  attempt: 1,
  providerId: 'liar',
  operator: 'op-liar',
  error: 'BAD_INPUT: dtype',
};

function job(canary = false): Job {
  return { id: 'job-1', workUnits: 10n, canary } as unknown as Job;
}

function outcome(peerId: string, attempt: number, extra: Partial<AttemptOutcome> = {}): AttemptOutcome {
  return {
    attempt: { id: `att-${attempt}`, attempt } as unknown as JobAttempt,
    peerId,
    pricePerUnit: 3n,
    ok: true,
    outputs,
    outputHash: hashOutputs(outputs),
    ...extra,
  };
}

describe('singleCompletion', () => {
  const delivered = {
    kind: 'deliver' as const,
    check: null,
    passKind: 'completion' as const,
    verified: false,
  };

  it('completes from RUNNING and pays the provider its price for the work', () => {
    const req = singleCompletion(job(), outcome('p', 1), delivered, terms);
    expect(req).toMatchObject({
      jobId: 'job-1',
      from: ['RUNNING'],
      to: 'COMPLETED',
      eventType: 'job.completed',
    });
    expect(req.via).toEqual({ state: 'VERIFYING', eventType: 'job.verifying', eventData: { results: 1 } });
    expect(req.effect).toEqual({
      kind: 'settle',
      payments: [{ peerId: 'p', amount: 30n }],
      feeBps: 250,
      hold: true,
    });
    expect(req.patch).toEqual({ result: { outputs }, resultHash: hashOutputs(outputs) });
    expect(req.attempt).toMatchObject({ id: 'att-1', to: 'SUCCEEDED', startedAt: undefined });
  });

  it('folds an unrecorded acceptance into the same commit (from DISPATCHED, through RUNNING)', () => {
    const at = Date.parse('2026-12-06T00:00:00Z');
    const req = singleCompletion(job(), outcome('p', 2, { acceptedAt: at }), delivered, terms);
    expect(req.from).toEqual(['DISPATCHED']);
    expect(req.via).toEqual([
      { state: 'RUNNING', eventType: 'job.running', eventData: { attempt: 2, provider: 'p' } },
      { state: 'VERIFYING', eventType: 'job.verifying', eventData: { results: 1 } },
    ]);
    expect(req.attempt?.startedAt).toEqual(new Date(at));
  });

  it("pays a check's split and records its outcome when a check ran", () => {
    const payments = [
      { peerId: 'p', amount: 20n },
      { peerId: 'checker', amount: 10n },
    ];
    const check = {
      kind: 'deliver' as const,
      outcome: {
        method: 'redundant' as const,
        verified: true,
        checkedBy: 'checker',
        tier: 'probation' as const,
      },
      passKind: 'verified_pass' as const,
      payments,
      ranExtra: true,
    };
    const req = singleCompletion(job(), outcome('p', 1), { ...delivered, check, verified: true }, terms);
    expect(req.effect).toMatchObject({ payments });
    expect(req.eventData).toEqual({ providers: ['p'], verification: check.outcome });
    expect(req.patch?.result).toEqual({ outputs, verification: check.outcome });
  });

  it('records the claims its verified result disproved with the completion, before job.completed', () => {
    const succeeded = { type: 'attempt.succeeded', data: { attempt: 2 } };
    const verified = { ...delivered, verified: true };
    const req = singleCompletion(job(), outcome('p', 2, { succeeded }), verified, terms, [claim]);
    expect(req.notes).toEqual([
      succeeded,
      {
        type: CLAIM_DISPROVED_EVENT,
        data: { attempt: 1, provider: 'liar', claim: 'BAD_INPUT: dtype', ranBy: ['p'] },
      },
    ]);
    expect(singleCompletion(job(), outcome('p', 2), verified, terms).notes).toEqual([]);
  });
});

describe('verifiedResult', () => {
  const completed = (result: unknown, canary = false): Job =>
    ({ state: 'COMPLETED', canary, result }) as unknown as Job;

  it('is true for a completion its record says was verified, and for a canary (its known answer)', () => {
    expect(
      verifiedResult(completed({ outputs, verification: { method: 'reference', verified: true } })),
    ).toBe(true);
    expect(verifiedResult(completed({ outputs }, true))).toBe(true);
  });

  it('is false for a spot-checked delivery, an old result without a record, or a job not completed', () => {
    expect(
      verifiedResult(completed({ outputs, verification: { method: 'spot-check', verified: false } })),
    ).toBe(false);
    expect(verifiedResult(completed({ outputs }))).toBe(false);
    expect(verifiedResult(completed(null))).toBe(false);
    expect(verifiedResult({ state: 'FAILED', canary: true, result: null })).toBe(false);
  });
});

describe('verifiedCompletion', () => {
  const a = outcome('a', 1);
  const b = outcome('b', 2);
  const c = outcome('c', 3);

  function adjudication(
    basis: Adjudication['verdict']['basis'],
    losers: AttemptOutcome[] = [],
  ): Adjudication {
    const winners = [a, b];
    return {
      verdict: {
        kind: 'decided',
        winners,
        losers,
        convict: losers,
        basis,
        disagreed: losers.length > 0,
        results: winners.length + losers.length,
      },
      action: { kind: 'complete', winners, dropped: [] },
      tiebreak: losers.length > 0 ? 'c' : undefined,
    };
  }

  it('pays every winner and names the providers as the reference when they simply agreed', () => {
    const req = verifiedCompletion(job(), adjudication({ source: 'agreement' }), [a, b], terms);
    expect(req).toMatchObject({ from: ['VERIFYING'], to: 'COMPLETED' });
    expect(req.eventData).toEqual({
      providers: ['a', 'b'],
      verification: { results: 2, disagreed: false, tiebreak: null, reference: 'providers', rejected: [] },
    });
    expect(req.effect).toEqual({
      kind: 'settle',
      payments: [
        { peerId: 'a', amount: 30n },
        { peerId: 'b', amount: 30n },
      ],
      ...terms,
    });
    expect(req.patch?.result).toEqual({ outputs, verification: { method: 'redundant', verified: true } });
  });

  it('records a reference decision, its tie-break and who was rejected; banned winners are not paid', () => {
    const req = verifiedCompletion(job(), adjudication({ source: 'coordinator', outputs }, [c]), [a], terms);
    expect(req.eventData).toEqual({
      providers: ['a'],
      verification: { results: 3, disagreed: true, tiebreak: 'c', reference: 'coordinator', rejected: ['c'] },
    });
    expect(req.effect).toMatchObject({ payments: [{ peerId: 'a', amount: 30n }] });
    expect(req.patch?.result).toEqual({ outputs, verification: { method: 'reference', verified: true } });
  });

  it('names the canary as the reference of a canary', () => {
    const req = verifiedCompletion(job(true), adjudication({ source: 'canary', outputs }), [a, b], terms);
    expect(req.eventData?.verification).toMatchObject({ reference: 'canary' });
  });

  it('records the claims the winners disproved with the completion, naming the winners', () => {
    const req = verifiedCompletion(job(), adjudication({ source: 'agreement' }), [a, b], terms, [claim]);
    expect(req.notes).toEqual([
      {
        type: CLAIM_DISPROVED_EVENT,
        data: { attempt: 1, provider: 'liar', claim: 'BAD_INPUT: dtype', ranBy: ['a', 'b'] },
      },
    ]);
  });
});
