/**
 * Who was right about a job's results: pure judgement, no I/O. The coordinator gathers the results
 * (and, when they disagree, a tie-break run and its own reference) and records the convictions and
 * the job's fate (its dispatch Adjudicator); this decides.
 */

/** A result nobody can argue with: a canary's known answer or the coordinator's own recompute. */
export interface KnownResult<O> {
  source: 'canary' | 'coordinator';
  outputs: O;
}

/** What the judge is given; `R` is the caller's result (handed back as is), `O` its outputs. */
export interface VerdictInput<R, O> {
  /** The results that came back (every attempt succeeded on the wire). */
  results: readonly R[];
  /** The results' outputs. */
  outputsOf: (result: R) => O;
  /** The agreement policy: whether two outputs of this job agree within its tolerance. */
  agree: (a: O, b: O) => boolean;
  /** A known answer, when there is one (a canary's, or the coordinator's reference). */
  known: KnownResult<O> | null;
  /**
   * The disagreement was already escalated (a tie-break run placed, a reference tried): the
   * results are final, so a majority decides when nothing is known.
   */
  escalated: boolean;
}

/** What a decided verdict rests on. */
export type VerdictBasis<R, O> =
  /** All results agree and nothing else was known: no reference, nobody convicted. */
  | { source: 'agreement' }
  | KnownResult<O>
  /** A strict majority (at least two) of agreeing results, after escalation. */
  | { source: 'providers'; outputs: O; backers: R[] }
  /** Nothing could decide: nobody wins and nobody is convicted. */
  | { source: 'none' };

export type Verdict<R, O> =
  /** The results disagree and nothing decides it yet: run a tie-break and try a reference. */
  | { kind: 'escalate'; results: R[] }
  | {
      kind: 'decided';
      /** The results accepted (paid unless banned meanwhile). */
      winners: R[];
      /** The results rejected as wrong (none when nothing could decide). */
      losers: R[];
      /** Those with a result proven wrong by the basis (their receipts are evidence). */
      convict: R[];
      basis: VerdictBasis<R, O>;
      /** Not every result agreed (with each other or with the known answer). */
      disagreed: boolean;
      /** How many results were judged. */
      results: number;
    };

export type DecidedVerdict<R, O> = Extract<Verdict<R, O>, { kind: 'decided' }>;

/** What becomes of the job once a decided verdict meets the bans that landed meanwhile. */
export type VerdictAction<R> =
  | { kind: 'complete'; winners: R[]; dropped: R[] }
  | { kind: 'fail'; reason: string; dropped: R[] }
  | { kind: 'requeue'; reason: string; dropped: R[] };

export const CANARY_MISSED = 'no result matched the known answer';
export const REFERENCE_MISSED = 'no result matched the reference; running it again';
export const UNDECIDED = 'results disagree and no reference could decide; running it again';

/**
 * Groups results that agree within tolerance, each with the first member of a group, in the order
 * the results came.
 */
export function clusterResults<R, O>(
  results: readonly R[],
  outputsOf: (result: R) => O,
  agree: (a: O, b: O) => boolean,
): R[][] {
  const clusters: R[][] = [];
  for (const r of results) {
    const home = clusters.find((c) => agree(outputsOf(c[0]), outputsOf(r)));
    if (home) home.push(r);
    else clusters.push([r]);
  }
  return clusters;
}

function decided<R, O>(
  results: readonly R[],
  winners: R[],
  basis: VerdictBasis<R, O>,
  disagreed: boolean,
): DecidedVerdict<R, O> {
  // Undecided: every result is set aside, but none is a loser (nothing proved it wrong).
  const losers = basis.source === 'none' ? [] : results.filter((r) => !winners.includes(r));
  return {
    kind: 'decided',
    winners,
    losers,
    convict: basis.source === 'agreement' ? [] : losers,
    basis,
    disagreed,
    results: results.length,
  };
}

/**
 * Who was right. With a known answer (a canary's, or the coordinator's reference): whoever matches
 * it. Otherwise, when all agree, all. A disagreement not yet escalated asks for a tie-break run and
 * a reference. Once escalated and with no reference, a strict majority (two or more) of agreeing
 * results decides, else nobody (the job runs again and nobody is penalised).
 */
export function decideVerdict<R, O>(input: VerdictInput<R, O>): Verdict<R, O> {
  const { results, outputsOf, agree, known, escalated } = input;
  if (known) {
    const winners = results.filter((r) => agree(outputsOf(r), known.outputs));
    return decided(results, winners, known, escalated || winners.length !== results.length);
  }
  const clusters = clusterResults(results, outputsOf, agree);
  if (!escalated) {
    if (clusters.length <= 1) return decided(results, [...results], { source: 'agreement' }, false);
    return { kind: 'escalate', results: [...results] };
  }
  const [top, second] = [...clusters].sort((a, b) => b.length - a.length);
  if (top && top.length >= 2 && (!second || top.length > second.length)) {
    return decided(results, top, { source: 'providers', outputs: outputsOf(top[0]), backers: top }, true);
  }
  return decided(results, [], { source: 'none' }, true);
}

/**
 * The job's fate under a decided verdict: winners banned meanwhile (caught on another job) are
 * dropped, unpaid; with nobody left a canary fails and any other job runs again.
 */
export function verdictAction<R, O>(
  verdict: DecidedVerdict<R, O>,
  job: { canary: boolean },
  isBanned: (result: R) => boolean,
): VerdictAction<R> {
  const dropped = verdict.winners.filter(isBanned);
  const winners = verdict.winners.filter((w) => !isBanned(w));
  if (winners.length > 0) return { kind: 'complete', winners, dropped };
  if (job.canary) return { kind: 'fail', reason: CANARY_MISSED, dropped };
  const referenced = verdict.basis.source !== 'agreement' && verdict.basis.source !== 'none';
  return { kind: 'requeue', reason: referenced ? REFERENCE_MISSED : UNDECIDED, dropped };
}
