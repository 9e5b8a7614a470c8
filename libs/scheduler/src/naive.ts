// Reference placer: the same constraints and scoring, but scans every provider. The benchmark compares
// against it and the property tests use it as the oracle for the indexed engine.
import { isEligible, type JobContext } from './constraints.js';
import type { ProviderEntry } from './index/provider-entry.js';
import { scoreFor, toSelection } from './placement.js';
import { TopK } from './top-k.js';
import type { Selection } from './types.js';

export function naiveSelect(providers: Iterable<ProviderEntry>, ctx: JobContext): Selection {
  const top = new TopK(ctx.k);
  let examined = 0;
  for (const e of providers) {
    examined++;
    if (isEligible(e, ctx)) top.offer(e, scoreFor(e, ctx));
  }
  return toSelection(top, false, examined);
}
