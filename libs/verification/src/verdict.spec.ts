import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeTensor, type TensorWire } from '@gpumesh/protocol';
import { compareOutputs } from './compare.js';
import {
  CANARY_MISSED,
  REFERENCE_MISSED,
  UNDECIDED,
  decideVerdict,
  verdictAction,
  type DecidedVerdict,
  type KnownResult,
  type Verdict,
} from './verdict.js';

interface Result {
  peerId: string;
  value: number;
}

/** Results are single numbers here; two agree within 0.5 (the tolerance policy under test). */
const within = (a: number, b: number): boolean => Math.abs(a - b) <= 0.5;
const exact = (a: number, b: number): boolean => a === b;

function judge(
  results: Result[],
  options: { known?: KnownResult<number> | null; escalated?: boolean; agree?: typeof within } = {},
): Verdict<Result, number> {
  return decideVerdict({
    results,
    outputsOf: (r) => r.value,
    agree: options.agree ?? within,
    known: options.known ?? null,
    escalated: options.escalated ?? false,
  });
}

function decided(verdict: Verdict<Result, number>): DecidedVerdict<Result, number> {
  if (verdict.kind !== 'decided') throw new Error(`expected a decided verdict, got ${verdict.kind}`);
  return verdict;
}

const peers = (rs: readonly Result[]): string[] => rs.map((r) => r.peerId);

/** Distinct peers with small integer results (so exact agreement happens often). */
const resultsArb = fc
  .array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 7 })
  .map((values) => values.map((value, i) => ({ peerId: `p${i}`, value })));

describe('decideVerdict', () => {
  it('accepts agreeing results, all of them, with nobody convicted', () => {
    const v = decided(
      judge([
        { peerId: 'a', value: 1 },
        { peerId: 'b', value: 1.2 },
      ]),
    );
    expect(peers(v.winners)).toEqual(['a', 'b']);
    expect(v).toMatchObject({ losers: [], convict: [], basis: { source: 'agreement' }, disagreed: false });
    expect(v.results).toBe(2);
  });

  it('asks for a tie-break when results disagree and nothing is known yet', () => {
    const v = judge([
      { peerId: 'a', value: 1 },
      { peerId: 'b', value: 5 },
    ]);
    expect(v.kind).toBe('escalate');
  });

  it('judges a canary by its known answer and convicts whoever missed it', () => {
    const v = decided(
      judge(
        [
          { peerId: 'a', value: 1 },
          { peerId: 'b', value: 5 },
        ],
        {
          known: { source: 'canary', outputs: 5 },
        },
      ),
    );
    expect(peers(v.winners)).toEqual(['b']);
    expect(peers(v.convict)).toEqual(['a']);
    expect(v.basis).toEqual({ source: 'canary', outputs: 5 });
    expect(v.disagreed).toBe(true);
    const right = decided(judge([{ peerId: 'a', value: 5 }], { known: { source: 'canary', outputs: 5 } }));
    expect(right.disagreed).toBe(false);
  });

  it("lets the coordinator's reference decide an escalated disagreement", () => {
    const v = decided(
      judge(
        [
          { peerId: 'a', value: 1 },
          { peerId: 'b', value: 5 },
          { peerId: 'tiebreak', value: 1 },
        ],
        { known: { source: 'coordinator', outputs: 5 }, escalated: true },
      ),
    );
    expect(peers(v.winners)).toEqual(['b']);
    expect(peers(v.losers)).toEqual(['a', 'tiebreak']);
    expect(peers(v.convict)).toEqual(['a', 'tiebreak']);
    expect(v.disagreed).toBe(true);
    expect(v.results).toBe(3);
  });

  it('lets a strict majority of two or more decide an escalated disagreement without a reference', () => {
    const v = decided(
      judge(
        [
          { peerId: 'a', value: 1 },
          { peerId: 'b', value: 5 },
          { peerId: 'tiebreak', value: 5.1 },
        ],
        { escalated: true },
      ),
    );
    expect(peers(v.winners)).toEqual(['b', 'tiebreak']);
    expect(peers(v.convict)).toEqual(['a']);
    expect(v.basis).toMatchObject({ source: 'providers', outputs: 5 });
    if (v.basis.source !== 'providers') throw new Error('expected a providers basis');
    expect(peers(v.basis.backers)).toEqual(['b', 'tiebreak']);
  });

  it('decides nothing (and convicts nobody) on a tie or when every result stands alone', () => {
    for (const results of [
      [
        { peerId: 'a', value: 1 },
        { peerId: 'b', value: 5 },
      ],
      [
        { peerId: 'a', value: 1 },
        { peerId: 'b', value: 1 },
        { peerId: 'c', value: 5 },
        { peerId: 'd', value: 5 },
      ],
    ]) {
      const v = decided(judge(results, { escalated: true }));
      expect(v).toMatchObject({ winners: [], losers: [], convict: [], basis: { source: 'none' } });
      expect(v.disagreed).toBe(true);
    }
  });

  it('judges real tensors with the float tolerance policy', () => {
    const tensor = (x: number): TensorWire[] => [
      encodeTensor('y', 'float32', [2], Float32Array.from([x, 1])),
    ];
    const agree = (a: TensorWire[], b: TensorWire[]): boolean => compareOutputs(a, b).agree;
    const judgeTensors = (
      values: number[],
    ): Verdict<{ peerId: string; outputs: TensorWire[] }, TensorWire[]> =>
      decideVerdict({
        results: values.map((x, i) => ({ peerId: `p${i}`, outputs: tensor(x) })),
        outputsOf: (r) => r.outputs,
        agree,
        known: null,
        escalated: false,
      });
    expect(judgeTensors([1, 1.0000001]).kind).toBe('decided'); // last-bit differences agree
    expect(judgeTensors([1, 1.1]).kind).toBe('escalate');
  });

  it('property: a decided verdict splits the results it judged, and convicts only its losers', () => {
    fc.assert(
      fc.property(
        resultsArb,
        fc.option(
          fc.record({
            source: fc.constantFrom('canary' as const, 'coordinator' as const),
            outputs: fc.integer({ min: 0, max: 3 }),
          }),
        ),
        fc.boolean(),
        (results, known, escalated) => {
          const v = judge(results, { known, escalated, agree: exact });
          if (v.kind === 'escalate') {
            expect(known).toBeNull();
            expect(escalated).toBe(false);
            return;
          }
          for (const w of v.winners) expect(v.losers).not.toContain(w);
          for (const r of [...v.winners, ...v.losers]) expect(results).toContain(r);
          for (const c of v.convict) expect(v.losers).toContain(c);
          expect(v.results).toBe(results.length);
          if (v.basis.source !== 'none') expect(v.winners.length + v.losers.length).toBe(results.length);
          if (v.basis.source === 'agreement' || v.basis.source === 'none') expect(v.convict).toEqual([]);
          else expect(v.convict).toEqual(v.losers);
        },
      ),
    );
  });

  it('property: with a known answer, the winners are exactly the results that match it', () => {
    fc.assert(
      fc.property(resultsArb, fc.integer({ min: 0, max: 3 }), fc.boolean(), (results, answer, escalated) => {
        const v = decided(
          judge(results, { known: { source: 'canary', outputs: answer }, escalated, agree: exact }),
        );
        expect(v.winners).toEqual(results.filter((r) => r.value === answer));
        expect(v.disagreed).toBe(escalated || v.winners.length !== results.length);
      }),
    );
  });

  it('property: unescalated and unknown, agreement is accepted whole and any disagreement escalates', () => {
    fc.assert(
      fc.property(resultsArb, (results) => {
        const v = judge(results, { agree: exact });
        const distinct = new Set(results.map((r) => r.value)).size;
        if (distinct === 1) expect(decided(v).winners).toEqual(results);
        else expect(v.kind).toBe('escalate');
      }),
    );
  });

  it('property: a majority winner is a strict plurality of at least two agreeing results, whatever their order', () => {
    fc.assert(
      fc.property(
        resultsArb.chain((results) =>
          fc.tuple(fc.constant(results), fc.shuffledSubarray(results, { minLength: results.length })),
        ),
        ([results, shuffled]) => {
          const v = decided(judge(results, { escalated: true, agree: exact }));
          const counts = new Map<number, number>();
          for (const r of results) counts.set(r.value, (counts.get(r.value) ?? 0) + 1);
          if (v.winners.length > 0) {
            const value = v.winners[0].value;
            expect(v.winners.every((w) => w.value === value)).toBe(true);
            expect(v.winners.length).toBe(counts.get(value));
            expect(v.winners.length).toBeGreaterThanOrEqual(2);
            for (const [other, n] of counts) if (other !== value) expect(n).toBeLessThan(v.winners.length);
          } else {
            const sizes = [...counts.values()].sort((a, b) => b - a);
            expect(sizes[0] < 2 || sizes[0] === sizes[1]).toBe(true);
          }
          const again = decided(judge(shuffled, { escalated: true, agree: exact }));
          expect(new Set(peers(again.winners))).toEqual(new Set(peers(v.winners)));
        },
      ),
    );
  });
});

describe('verdictAction', () => {
  const a = { peerId: 'a', value: 1 };
  const b = { peerId: 'b', value: 1 };

  it('completes with the winners that were not banned meanwhile, and drops the banned ones', () => {
    const v = decided(judge([a, b]));
    expect(verdictAction(v, { canary: false }, (r) => r.peerId === 'b')).toEqual({
      kind: 'complete',
      winners: [a],
      dropped: [b],
    });
  });

  it('fails a canary nobody answered right, and runs any other job again', () => {
    const missed = decided(judge([a], { known: { source: 'canary', outputs: 7 } }));
    expect(verdictAction(missed, { canary: true }, () => false)).toEqual({
      kind: 'fail',
      reason: CANARY_MISSED,
      dropped: [],
    });
    const wrong = decided(judge([a, b], { known: { source: 'coordinator', outputs: 7 }, escalated: true }));
    expect(verdictAction(wrong, { canary: false }, () => false)).toMatchObject({
      kind: 'requeue',
      reason: REFERENCE_MISSED,
    });
    const tie = decided(judge([a, { peerId: 'c', value: 5 }], { escalated: true }));
    expect(verdictAction(tie, { canary: false }, () => false)).toMatchObject({
      kind: 'requeue',
      reason: UNDECIDED,
    });
    const allBanned = decided(judge([a, b]));
    expect(verdictAction(allBanned, { canary: false }, () => true)).toEqual({
      kind: 'requeue',
      reason: UNDECIDED,
      dropped: [a, b],
    });
  });

  it('property: nobody banned is ever paid, and every winner is either paid or dropped', () => {
    fc.assert(
      fc.property(resultsArb, fc.boolean(), fc.func(fc.boolean()), (results, canary, banned) => {
        const v = decided(judge(results, { known: { source: 'canary', outputs: 1 }, agree: exact }));
        const isBanned = (r: Result): boolean => banned(r.peerId);
        const action = verdictAction(v, { canary }, isBanned);
        expect(action.dropped.every(isBanned)).toBe(true);
        if (action.kind === 'complete') {
          expect(action.winners.some(isBanned)).toBe(false);
          expect([...action.winners, ...action.dropped].length).toBe(v.winners.length);
        } else {
          expect(action.dropped).toEqual(v.winners);
          expect(action.kind).toBe(canary ? 'fail' : 'requeue');
        }
      }),
    );
  });
});
