// "Why no match?": for a job, how many providers each reason excludes (every failing reason of every
// provider is counted, not just the first), and the cheapest single change to the job that would make it
// placeable on `redundancy` distinct operators. Pure: reads provider entries, changes nothing.
import {
  EXCLUSION_REASONS,
  reasonsOf,
  violations,
  type ExclusionReason,
  type JobContext,
} from './constraints.js';
import type { ProviderEntry } from './index/provider-entry.js';
import type { Backend, SchedulerConfig } from './types.js';
import { requiredStake } from './stake.js';

interface SuggestionBase {
  /** Distinct eligible operators after the change. */
  operatorsAfter: number;
  /** Size of the change relative to the job (0 = free); suggestions are sorted by it. */
  relativeCost: number;
  message: string;
}

export type Suggestion = SuggestionBase &
  (
    | { kind: 'wait-for-capacity'; providersBusy: number }
    | { kind: 'raise-max-price'; maxPricePerUnit: bigint }
    | { kind: 'lower-min-vram'; minVramMiB: number }
    | { kind: 'extend-deadline'; extendBySeconds: number; deadlineAt: number }
    | { kind: 'reduce-redundancy'; redundancy: number }
    | { kind: 'allow-backend'; backend: Backend }
    | { kind: 'allow-gpu-model'; gpuModel: string }
    | {
        kind: 'add-stake';
        /** Stake each of `peerIds` must add at least (the largest shortfall among them). */
        additionalStake: bigint;
        /** Providers (lacking nothing but stake) that must stake more, fewest shortfall first. */
        peerIds: string[];
      }
  );

export type SuggestionKind = Suggestion['kind'];

export interface Explanation {
  jobId: string;
  placeable: boolean;
  /** Providers considered (every provider in the index, banned and expired included). */
  providers: number;
  eligible: number;
  eligibleOperators: number;
  /** Distinct operators needed (the job's redundancy). */
  needed: number;
  deadlinePassed: boolean;
  /** Providers failing each reason (a provider failing several counts under each). */
  excluded: Record<ExclusionReason, number>;
  /** Providers failing this reason and nothing else. */
  excludedOnlyBy: Record<ExclusionReason, number>;
  /** Feasible single changes, cheapest first. */
  suggestions: Suggestion[];
  cheapest?: Suggestion;
  message: string;
}

function zeroCounts(): Record<ExclusionReason, number> {
  const out = {} as Record<ExclusionReason, number>;
  for (const r of EXCLUSION_REASONS) out[r] = 0;
  return out;
}

interface Candidate<V> {
  value: V;
  operatorId: string;
}

/**
 * Walks candidates (best first by the caller's order) adding their operators to `base` until `needed`
 * distinct operators are reached; returns the value of the candidate that completed the set.
 */
function reach<V>(
  base: ReadonlySet<string>,
  sorted: Candidate<V>[],
  needed: number,
): { value: V; ops: number } | null {
  const ops = new Set(base);
  for (const c of sorted) {
    ops.add(c.operatorId);
    if (ops.size >= needed) return { value: c.value, ops: ops.size };
  }
  return null;
}

export function explainJob(
  providers: Iterable<ProviderEntry>,
  ctx: JobContext,
  config: SchedulerConfig,
): Explanation {
  const job = ctx.job;
  const excluded = zeroCounts();
  const excludedOnlyBy = zeroCounts();
  const eligibleOps = new Set<string>();
  let total = 0;
  let eligible = 0;
  const priceOnly: Candidate<bigint>[] = [];
  const vramOnly: Candidate<number>[] = [];
  const speedOnly: Candidate<number>[] = [];
  const capacityOnly: Candidate<null>[] = [];
  const stakeOnly: Candidate<{ short: bigint; peerId: string }>[] = [];
  const backendOnly = new Map<Backend, Set<string>>();
  const modelOnly = new Map<string, Set<string>>();

  for (const e of providers) {
    total++;
    const mask = violations(e, ctx);
    if (mask === 0) {
      eligible++;
      eligibleOps.add(e.operatorId);
      continue;
    }
    for (const r of reasonsOf(mask)) excluded[r]++;
    if ((mask & (mask - 1)) !== 0) continue;
    const only = reasonsOf(mask)[0];
    excludedOnlyBy[only]++;
    switch (only) {
      case 'price':
        priceOnly.push({ value: e.price, operatorId: e.operatorId });
        break;
      case 'vram': {
        const usable = e.gpus.filter((g) => ctx.models === null || ctx.models.has(g.model));
        vramOnly.push({ value: Math.max(0, ...usable.map((g) => g.vramMiB)), operatorId: e.operatorId });
        break;
      }
      case 'speed':
        speedOnly.push({ value: e.gflops, operatorId: e.operatorId });
        break;
      case 'capacity':
        capacityOnly.push({ value: null, operatorId: e.operatorId });
        break;
      case 'stake': {
        const needed = requiredStake(e.inFlight, job.workUnits * e.price, config);
        const short = needed - (e.stake - e.frozenStake);
        stakeOnly.push({ value: { short, peerId: e.peerId }, operatorId: e.operatorId });
        break;
      }
      case 'backend':
        addTo(backendOnly, e.backend, e.operatorId);
        break;
      case 'gpu-model':
        for (const g of e.gpus) if (g.vramMiB >= ctx.minVramMiB) addTo(modelOnly, g.model, e.operatorId);
        break;
      default:
        break;
    }
  }

  const k = ctx.k;
  const have = eligibleOps.size;
  const placeable = have >= k;
  const suggestions: Suggestion[] = [];
  if (!placeable) {
    const cap = reach(eligibleOps, capacityOnly, k);
    if (cap) {
      suggestions.push({
        kind: 'wait-for-capacity',
        providersBusy: capacityOnly.length,
        operatorsAfter: cap.ops,
        relativeCost: 0,
        message: `wait: ${capacityOnly.length} otherwise suitable provider(s) are busy`,
      });
    }
    stakeOnly.sort((a, b) => (a.value.short < b.value.short ? -1 : a.value.short > b.value.short ? 1 : 0));
    const stake = reach(eligibleOps, stakeOnly, k);
    if (stake) {
      const used = stakeOnly.slice(0, stakeOnly.findIndex((c) => c.value === stake.value) + 1);
      // Only providers whose operator was not already counted need to stake.
      const ops = new Set(eligibleOps);
      const peerIds: string[] = [];
      for (const c of used) {
        if (ops.has(c.operatorId)) continue;
        ops.add(c.operatorId);
        peerIds.push(c.value.peerId);
      }
      const n = stake.value.short;
      suggestions.push({
        kind: 'add-stake',
        additionalStake: n,
        peerIds,
        operatorsAfter: stake.ops,
        relativeCost: 0,
        message:
          peerIds.length === 1
            ? `provider ${peerIds[0]} must stake at least ${n} more base units`
            : `${peerIds.length} providers must each stake at least ${n} more base units`,
      });
    }
    const price = reach(
      eligibleOps,
      priceOnly.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0)),
      k,
    );
    if (price) {
      const max = job.maxPricePerUnit;
      suggestions.push({
        kind: 'raise-max-price',
        maxPricePerUnit: price.value,
        operatorsAfter: price.ops,
        relativeCost: max > 0n ? Number(price.value - max) / Number(max) : Number(price.value),
        message: `raise maxPricePerUnit from ${max} to ${price.value}`,
      });
    }
    const vram = reach(
      eligibleOps,
      vramOnly.sort((a, b) => b.value - a.value),
      k,
    );
    if (vram) {
      suggestions.push({
        kind: 'lower-min-vram',
        minVramMiB: vram.value,
        operatorsAfter: vram.ops,
        relativeCost: (ctx.minVramMiB - vram.value) / ctx.minVramMiB,
        message: `lower minVramMiB from ${ctx.minVramMiB} to ${vram.value}`,
      });
    }
    const speed = reach(
      eligibleOps,
      speedOnly.sort((a, b) => b.value - a.value),
      k,
    );
    if (speed && speed.value > 0) {
      // At least 1 ms: a deadline equal to now places nothing, even for a job of no work.
      const neededMs = Math.max(1, Math.ceil(Number(job.workUnits) / speed.value));
      const deadlineAt = ctx.now + neededMs;
      const extendBySeconds = Math.max(1, Math.ceil((deadlineAt - job.deadlineAt) / 1000));
      const window = Math.max(1, job.deadlineAt - ctx.now);
      suggestions.push({
        kind: 'extend-deadline',
        extendBySeconds,
        deadlineAt: job.deadlineAt + extendBySeconds * 1000,
        operatorsAfter: speed.ops,
        relativeCost: (extendBySeconds * 1000) / window,
        message: `extend the deadline by ${extendBySeconds} s`,
      });
    }
    if (have >= 1) {
      suggestions.push({
        kind: 'reduce-redundancy',
        redundancy: have,
        operatorsAfter: have,
        relativeCost: (k - have) / k,
        message: `reduce redundancy from ${k} to ${have}`,
      });
    }
    for (const [backend, ops] of backendOnly) {
      const after = new Set([...eligibleOps, ...ops]).size;
      if (after >= k) {
        suggestions.push({
          kind: 'allow-backend',
          backend,
          operatorsAfter: after,
          relativeCost: 0.5,
          message: `allow backend ${backend}`,
        });
      }
    }
    for (const [gpuModel, ops] of modelOnly) {
      const after = new Set([...eligibleOps, ...ops]).size;
      if (after >= k) {
        suggestions.push({
          kind: 'allow-gpu-model',
          gpuModel,
          operatorsAfter: after,
          relativeCost: 0.5,
          message: `allow GPU model ${gpuModel}`,
        });
      }
    }
    suggestions.sort((a, b) => a.relativeCost - b.relativeCost || b.operatorsAfter - a.operatorsAfter);
  }

  const deadlinePassed = job.deadlineAt <= ctx.now;
  const cheapest = suggestions[0];
  const counts = EXCLUSION_REASONS.filter((r) => excluded[r] > 0)
    .map((r) => `${r} ${excluded[r]}`)
    .join(', ');
  const head = placeable
    ? `placeable: ${eligible} eligible provider(s) from ${have} operator(s), ${k} needed`
    : `no match: ${eligible} eligible provider(s) from ${have} operator(s) of ${total}, ${k} distinct operator(s) needed`;
  const tail = placeable
    ? ''
    : cheapest
      ? `; cheapest change: ${cheapest.message} (${cheapest.operatorsAfter} operator(s) then)`
      : '; no single change to the job makes it placeable';
  const message = `${head}${deadlinePassed ? '; the deadline has passed' : ''}${counts ? `; excluded by ${counts}` : ''}${tail}`;
  return {
    jobId: job.jobId,
    placeable,
    providers: total,
    eligible,
    eligibleOperators: have,
    needed: k,
    deadlinePassed,
    excluded,
    excludedOnlyBy,
    suggestions,
    cheapest,
    message,
  };
}

function addTo<K>(m: Map<K, Set<string>>, key: K, operatorId: string): void {
  let s = m.get(key);
  if (s === undefined) {
    s = new Set();
    m.set(key, s);
  }
  s.add(operatorId);
}
