// When a job nothing can place stops waiting: after UNPLACEABLE_GRACE_SECONDS of the placement
// explanation (the dry run's) saying no set of providers can take it, and waiting for busy ones
// would not help, the job fails with that explanation as its reason.
import type { Explanation } from '@gpumesh/scheduler';
import type { JobError } from '../jobs/job-error.js';

/**
 * The job's error when it has waited `waitedMs` (since it was queued last) of a `graceMs` grace
 * period and the explanation still finds no placement (0 = never fail for this), else null. Busy
 * providers that would complete the set (the `wait-for-capacity` suggestion) keep it waiting.
 */
export function unplaceableFailure(
  why: Explanation,
  waitedMs: number,
  graceMs: number,
  reported: readonly string[] = [],
): JobError | null {
  if (why.placeable || graceMs <= 0 || waitedMs < graceMs) return null;
  if (why.suggestions.some((s) => s.kind === 'wait-for-capacity')) return null;
  const seconds = Math.round(graceMs / 1000);
  const tried = reported.length > 0 ? `; providers that tried it reported: ${reported.join(' | ')}` : '';
  return {
    code: 'UNPLACEABLE',
    message: `no provider could take this job for ${seconds} s: ${why.message}${tried}`,
    details: {
      providers: why.providers,
      eligible: why.eligible,
      eligibleOperators: why.eligibleOperators,
      needed: why.needed,
      excluded: Object.fromEntries(Object.entries(why.excluded).filter(([, n]) => n > 0)),
      suggestions: why.suggestions.map((s) => s.message),
      ...(reported.length > 0 ? { reported } : {}),
    },
  };
}
