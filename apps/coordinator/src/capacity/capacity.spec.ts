import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_TENSOR_BYTES, workUnitsForSpec, type TensorWire } from '@gpumesh/protocol';
import {
  MAX_PROBE_DEADLINE_MS,
  MAX_PROBE_SIDE,
  MIN_PROBE_DEADLINE_MS,
  PROBE_MARKER_KEY,
  isOverstated,
  measuredGflops,
  probeDeadlineMs,
  probeInterval,
  probeMarker,
  probeShape,
  probeSpec,
  probeWorkUnits,
  vouchedGflops,
} from './capacity.js';

const SIZING = { targetMs: 1_500, minWorkUnits: 20, maxWorkUnits: 4_000 };
const RULE = { factor: 3, overheadMs: 1_000 };

describe('capacity probes', () => {
  it('are sized to take the target time at the advertised speed, within bounds', () => {
    expect(probeWorkUnits(1, SIZING)).toBe(1_500); // 1 GFLOP/s × 1.5 s = 1,500 MFLOP
    expect(probeWorkUnits(0.001, SIZING)).toBe(20);
    expect(probeWorkUnits(400_000, SIZING)).toBe(4_000);
    expect(probeWorkUnits(Number.NaN, SIZING)).toBe(20);
  });

  it('are matmuls of about the asked work whose inputs stay within the tensor limits', () => {
    for (const wu of [1, 20, 1_500, 4_000, 10_000_000]) {
      const { m, k, n } = probeShape(wu);
      expect(m).toBeGreaterThanOrEqual(1);
      expect(m).toBeLessThanOrEqual(MAX_PROBE_SIDE);
      expect(m * k * 4).toBeLessThanOrEqual(MAX_TENSOR_BYTES);
      expect(k * n * 4).toBeLessThanOrEqual(MAX_TENSOR_BYTES);
    }
    const spec = probeSpec(200, 7n, 60_000);
    const wu = Number(workUnitsForSpec(spec));
    expect(wu).toBeGreaterThan(200 * 0.9);
    expect(wu).toBeLessThan(200 * 1.1);
    // However much work is asked for, a probe's bytes stay small (see MAX_PROBE_SIDE).
    const big = probeSpec(1_000_000, 7n, 60_000);
    const bytes = big.inputs.reduce((sum, t) => sum + ('data' in t ? t.data.length : 0), 0);
    expect(bytes).toBeLessThan(3_000_000); // base64 of two 1 MiB float32 matrices
    expect(Number(workUnitsForSpec(big))).toBeGreaterThan(250);
    expect(spec.maxPricePerUnit).toBe('7');
    expect(spec.deadlineSeconds).toBe(60);
    // Fresh values every time: a provider cannot replay an earlier answer.
    const first = (): unknown => (probeSpec(20, 1n, 60_000).inputs[0] as TensorWire).data;
    expect(first()).not.toBe(first());
  });

  it('measure GFLOP/s on the coordinator clock (1 work unit = 1 MFLOP)', () => {
    expect(measuredGflops(4_000, 2_000)).toBe(2);
    expect(measuredGflops(4_000, 0)).toBe(4_000);
  });

  it('vouch for what they showed, and for at least the probation figure when too fast to resolve', () => {
    expect(vouchedGflops(2_000, 4_000, 1_000, 100)).toBe(0.5); // resolved: a slow provider
    expect(vouchedGflops(2_000, 40, 1_000, 100)).toBe(100); // a fast GPU on a capped probe
    expect(vouchedGflops(2_000, 10, 1_000, 100)).toBe(200);
  });

  it('find an advert overstated only when the answer took far longer than it implies plus the overhead', () => {
    // The liar: 8 H100s "at 400,000 GFLOP/s" answered 4,000 work units in 4 s.
    expect(isOverstated(400_000, 4_000, 4_000, RULE)).toBe(true);
    // A fast GPU answering a capped probe within the overhead proves nothing against its advert.
    expect(isOverstated(400_000, 4_000, 400, RULE)).toBe(false);
    // Honest at 1 GFLOP/s: 1,500 work units in 1.6 s.
    expect(isOverstated(1, 1_500, 1_600, RULE)).toBe(false);
    // 3× slower is still allowed, 6× is not.
    expect(isOverstated(1, 1_500, 5_400, RULE)).toBe(false);
    expect(isOverstated(1, 1_500, 9_000, RULE)).toBe(true);
  });

  it('an honest provider (at least as fast as it advertises) is never found overstated (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.001, max: 1e6, noNaN: true }),
        fc.double({ min: 1, max: 1e3, noNaN: true }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 1_000 }),
        (advertised, speedup, workUnits, overheadMs) => {
          const elapsedMs = workUnits / (advertised * speedup) + overheadMs;
          expect(isOverstated(advertised, workUnits, elapsedMs, RULE)).toBe(false);
        },
      ),
    );
  });

  it('deadlines leave room at the credited speed, within bounds', () => {
    expect(probeDeadlineMs(20, 100)).toBe(MIN_PROBE_DEADLINE_MS);
    expect(probeDeadlineMs(4_000, 0.01)).toBe(MAX_PROBE_DEADLINE_MS);
    expect(probeDeadlineMs(4_000, 1)).toBe(80_000);
  });

  it('come at random intervals around the mean, never bunched or endless', () => {
    expect(probeInterval(10_000)).toEqual({ meanMs: 10_000, minMs: 1_000, maxMs: 50_000 });
  });

  it('are recognised by the marker in their stored policy only', () => {
    const marker = { peerId: 'p1', advertisedGflops: 400_000 };
    expect(probeMarker({ mode: 'none', [PROBE_MARKER_KEY]: marker })).toEqual(marker);
    expect(probeMarker({ mode: 'none' })).toBeNull();
    expect(probeMarker(null)).toBeNull();
    expect(probeMarker({ [PROBE_MARKER_KEY]: { peerId: 1 } })).toBeNull();
  });
});
