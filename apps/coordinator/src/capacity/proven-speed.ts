// Proven speed from real work: a provider's credited GFLOP/s is the best of what its recent capacity
// probes and its recent verified jobs showed on the coordinator's clock. A probe is capped (tensor
// size, the coordinator's own budget for the answer), so on a fast GPU it mostly times the network;
// a big job whose result a check confirmed (known answer, agreement, the coordinator's reference)
// shows the real speed. Only work actually done, fast and right, can raise the figure.

/** How a verified job's timing is turned into a speed, and how long a figure stays credited. */
export interface CreditRule {
  /** Allowed for the round trip on top of the compute time (subtracted from the elapsed time). */
  overheadMs: number;
  /** Result bytes per second assumed for the result's transfer (its allowance is bytes / this). */
  transferBytesPerSecond: number;
  /** A job whose compute time (elapsed minus allowances) is shorter resolves no speed: ignored. */
  minComputeMs: number;
  /** A credited figure stands this long without being shown again; then a lower one replaces it. */
  windowMs: number;
  /** A figure at least this share of the credited one shows it again (refreshes its window)... */
  refreshShare: number;
  /** ...written at most once per this share of the window (writes stay rare). */
  refreshEveryShare: number;
  /** A higher figure is written only when it beats the credited one by this share (noise is not). */
  minRiseShare: number;
}

/** A provider's credited speed as stored (Provider.measuredGflops, measuredAt). */
export interface Credit {
  gflops: number;
  at: number;
}

/** What one timed, verified job showed. */
export interface JobTiming {
  /** Work units of the job (1 work unit = 1 MFLOP). */
  workUnits: number;
  /** From the provider's acceptance to its result, on the coordinator's clock. */
  elapsedMs: number;
  /** Bytes of the result that came back. */
  resultBytes: number;
}

/** The allowance for round trip and result transfer of a result of `resultBytes`. */
export function transferAllowanceMs(resultBytes: number, rule: CreditRule): number {
  const bytes = Number.isFinite(resultBytes) && resultBytes > 0 ? resultBytes : 0;
  return rule.overheadMs + (1000 * bytes) / rule.transferBytesPerSecond;
}

/**
 * GFLOP/s a verified job proves (work units per ms of compute time), or null when its compute time
 * (elapsed minus the allowance) is under `minComputeMs`: a short job times mostly the network.
 * Less elapsed time never proves less speed, and no job proves more than its work in minComputeMs.
 */
export function provenGflops(t: JobTiming, rule: CreditRule): number | null {
  if (!(t.workUnits > 0) || !Number.isFinite(t.workUnits) || !Number.isFinite(t.elapsedMs)) return null;
  const computeMs = t.elapsedMs - transferAllowanceMs(t.resultBytes, rule);
  if (!(computeMs >= rule.minComputeMs) || computeMs <= 0) return null;
  return t.workUnits / computeMs;
}

/**
 * The credit after an observation (a probe's or a verified job's figure at `at`), or null when
 * nothing needs writing. The credited figure is the best one shown within the window: a higher
 * figure (by minRiseShare) replaces it; one close to it (refreshShare) refreshes its window, at most
 * every refreshEveryShare of it; once the window passed without that, whatever is shown next
 * replaces it (a provider that got slower is not credited forever).
 */
export function nextCredit(
  current: Credit | null,
  observed: number,
  at: number,
  rule: CreditRule,
): Credit | null {
  if (!Number.isFinite(observed) || observed <= 0) return null;
  if (current === null) return { gflops: observed, at };
  const age = at - current.at;
  if (age > rule.windowMs) return { gflops: observed, at };
  if (observed > current.gflops * (1 + rule.minRiseShare)) return { gflops: observed, at };
  if (observed >= current.gflops * rule.refreshShare && age >= rule.windowMs * rule.refreshEveryShare) {
    return { gflops: Math.max(current.gflops, observed), at };
  }
  return null;
}

/** The credit after a probe: like nextCredit, but a probe always stores its time (it is rare). */
export function creditAfterProbe(
  current: Credit | null,
  observed: number,
  at: number,
  rule: CreditRule,
): Credit {
  return nextCredit(current, observed, at, rule) ?? current ?? { gflops: observed, at };
}
