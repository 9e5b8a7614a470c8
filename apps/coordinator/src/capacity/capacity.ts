// Proven capacity: the arithmetic of a capacity probe (a timed known-answer matmul). A provider's
// speed is what it shows on the coordinator's own clock, from its acceptance of the offer to its
// result, never what it advertises or reports in its receipt.
import { randomFillSync } from 'node:crypto';
import { encodeTensor, parseJobSpec, type JobSpec, type TensorWire } from '@gpumesh/protocol';

/** How a probe is sized: to take `targetMs` at the advertised speed, within [min, max] work units. */
export interface ProbeSizing {
  targetMs: number;
  minWorkUnits: number;
  maxWorkUnits: number;
}

/** When a probe's answer shows the advert far above the truth (see isOverstated). */
export interface OverstatementRule {
  /** The advert must be this many times what the probe allows for... */
  factor: number;
  /** ...after this much round trip and result transfer was allowed for. */
  overheadMs: number;
}

/**
 * A probe is square (m × m times m × m): for a given number of bytes sent, stored and sent back, that
 * is the most work a matmul carries (a long inner dimension adds input bytes as fast as work).
 */
export const PROBE_INNER_RATIO = 1;
/**
 * The largest side of a probe: 512 (each input 1 MiB of float32, about 1.4 MB on the wire; 268 MFLOP).
 * A probe's bytes cost every hop (the offer, the stored job and known answer, the result) while the
 * provider waits, and the coordinator's embedded database writes them on its own event loop: the
 * 16 MB probes of the first version held `npm start`'s API for over 10 s and timed out honest agents.
 * A probe therefore shows at most a few hundred GFLOP/s; verified real jobs prove more (proven-speed.ts).
 */
export const MAX_PROBE_SIDE = 512;
/** A probe's deadline allows this many times the time it needs at the speed the provider is credited with... */
export const PROBE_DEADLINE_FACTOR = 20;
/** ...and at least this long, at most this long. */
export const MIN_PROBE_DEADLINE_MS = 60_000;
export const MAX_PROBE_DEADLINE_MS = 600_000;
/** A random probe interval is at least this share of the mean (so probes never bunch up)... */
export const MIN_INTERVAL_SHARE = 0.1;
/** ...and at most this many means (so nobody waits forever). */
export const MAX_INTERVAL_MEANS = 5;
/** The key of the capacity-probe marker in a probe job's stored verification policy. */
export const PROBE_MARKER_KEY = 'capacityProbe';

/** What a probe job carries in its stored policy (never sent to the provider). */
export interface ProbeMarker {
  peerId: string;
  /** The advertised GFLOP/s the probe was sized from. */
  advertisedGflops: number;
}

/** Work units (MFLOP) of a probe: what `advertisedGflops` gets through in `targetMs`, within bounds. */
export function probeWorkUnits(advertisedGflops: number, sizing: ProbeSizing): number {
  const wanted =
    Number.isFinite(advertisedGflops) && advertisedGflops > 0 ? advertisedGflops * sizing.targetMs : 0;
  return Math.max(sizing.minWorkUnits, Math.min(sizing.maxWorkUnits, Math.ceil(wanted)));
}

/** The matmul shape of about `workUnits` (2·m·k·n FLOPs): a is m × k, b is k × n, square up to MAX_PROBE_SIDE. */
export function probeShape(workUnits: number): { m: number; k: number; n: number } {
  const flops = Math.max(1, workUnits) * 1e6;
  const m = Math.max(1, Math.min(MAX_PROBE_SIDE, Math.round(Math.cbrt(flops / (2 * PROBE_INNER_RATIO)))));
  return { m, k: PROBE_INNER_RATIO * m, n: m };
}

/** A float32 matrix of fresh random values in [-1, 1). */
export function randomMatrix(name: string, rows: number, cols: number): TensorWire {
  const values = new Float32Array(rows * cols);
  const bits = randomFillSync(new Uint32Array(values.length));
  for (let i = 0; i < values.length; i++) values[i] = bits[i] / 2 ** 31 - 1;
  return encodeTensor(name, 'float32', [rows, cols], values);
}

/** A probe's job spec: a fresh random matmul of about `workUnits`, priced at `pricePerUnit`. */
export function probeSpec(workUnits: number, pricePerUnit: bigint, deadlineMs: number): JobSpec {
  const { m, k, n } = probeShape(workUnits);
  return parseJobSpec({
    version: 1,
    kind: 'matmul',
    inputs: [randomMatrix('a', m, k), randomMatrix('b', k, n)],
    maxPricePerUnit: pricePerUnit.toString(),
    redundancy: 1,
    deadlineSeconds: Math.ceil(deadlineMs / 1000),
  });
}

/** How long a probe may take: PROBE_DEADLINE_FACTOR × its time at `creditedGflops`, within bounds. */
export function probeDeadlineMs(workUnits: number, creditedGflops: number): number {
  const needed = creditedGflops > 0 ? workUnits / creditedGflops : MAX_PROBE_DEADLINE_MS;
  return Math.max(
    MIN_PROBE_DEADLINE_MS,
    Math.min(MAX_PROBE_DEADLINE_MS, Math.ceil(PROBE_DEADLINE_FACTOR * needed)),
  );
}

/**
 * GFLOP/s shown by `workUnits` answered in `elapsedMs` (1 work unit = 1 MFLOP, so work units per ms
 * are GFLOP/s). It counts the round trip and the result's transfer, so it is a lower bound: a probe
 * capped at CAPACITY_PROBE_MAX_WORK_UNITS cannot show a fast GPU's full speed.
 */
export function measuredGflops(workUnits: number, elapsedMs: number): number {
  return workUnits / Math.max(1, elapsedMs);
}

/**
 * The GFLOP/s a probe vouches for (what placement credits, with the advert as ceiling): what it
 * showed; but an answer within the overhead allowance came too fast for the probe to resolve the
 * speed (a capped probe of a fast GPU), so it vouches for at least `probationGflops`: being measured
 * never leaves a provider credited with less than an unmeasured one.
 */
export function vouchedGflops(
  workUnits: number,
  elapsedMs: number,
  overheadMs: number,
  probationGflops: number,
): number {
  const shown = measuredGflops(workUnits, elapsedMs);
  return elapsedMs <= overheadMs ? Math.max(shown, probationGflops) : shown;
}

/**
 * Whether the advert is far above what the probe showed: the answer took more than `factor` times
 * the time the advert implies plus the allowed overhead. A fast answer to a capped probe proves
 * nothing against the advert (the overhead dominates), so it is never overstated.
 */
export function isOverstated(
  advertisedGflops: number,
  workUnits: number,
  elapsedMs: number,
  rule: OverstatementRule,
): boolean {
  if (!(advertisedGflops > 0)) return false;
  const expectedMs = workUnits / advertisedGflops;
  return elapsedMs > rule.factor * expectedMs + rule.overheadMs;
}

/**
 * Bounds of the random delay to a provider's next probe: exponential with mean `meanMs` (memoryless,
 * so nobody can time it), drawn in the claiming statement (CapacityRepository.claimDue).
 */
export function probeInterval(meanMs: number): { meanMs: number; minMs: number; maxMs: number } {
  return { meanMs, minMs: MIN_INTERVAL_SHARE * meanMs, maxMs: MAX_INTERVAL_MEANS * meanMs };
}

/** The probe marker of a stored job's policy, or null for any other job. */
export function probeMarker(verification: unknown): ProbeMarker | null {
  if (typeof verification !== 'object' || verification === null) return null;
  const marker = (verification as Record<string, unknown>)[PROBE_MARKER_KEY];
  if (typeof marker !== 'object' || marker === null) return null;
  const { peerId, advertisedGflops } = marker as Record<string, unknown>;
  if (typeof peerId !== 'string' || typeof advertisedGflops !== 'number') return null;
  return { peerId, advertisedGflops };
}
