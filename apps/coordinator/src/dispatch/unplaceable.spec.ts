import { describe, expect, it } from 'vitest';
import { Scheduler, type JobRequest, type ProviderSnapshot } from '@gpumesh/scheduler';
import { unplaceableFailure } from './unplaceable.js';

const NOW = 1_750_000_000_000;
const GRACE_MS = 60_000;

function provider(i: number, over: Partial<ProviderSnapshot> = {}): ProviderSnapshot {
  return {
    peerId: `p${i}`,
    operatorId: `op${i}`,
    backend: 'wasm',
    gpus: [],
    gflops: 100,
    pricePerUnit: 10n,
    slots: 2,
    freeSlots: 2,
    reputation: 0.5,
    banned: false,
    draining: false,
    expiresAt: NOW + 60_000,
    firstSeenAt: NOW - 86_400_000,
    stake: 0n,
    inFlightValue: 0n,
    ...over,
  };
}

function job(over: Partial<JobRequest> = {}): JobRequest {
  return {
    jobId: 'j',
    accountId: 'a',
    priority: 'normal',
    workUnits: 10n,
    requirements: {},
    maxPricePerUnit: 100n,
    redundancy: 1,
    deadlineAt: NOW + 600_000,
    ...over,
  };
}

function explain(providers: ProviderSnapshot[], request: JobRequest): ReturnType<Scheduler['explain']> {
  const scheduler = new Scheduler({ explorationShare: 0 });
  for (const p of providers) scheduler.upsertProvider(p, NOW);
  return scheduler.explain(request, NOW);
}

describe('unplaceableFailure', () => {
  const twoOperators = [provider(1), provider(2)];

  it('never fails a placeable job, nor one still in its grace period, nor with the grace period off', () => {
    expect(unplaceableFailure(explain(twoOperators, job()), GRACE_MS * 10, GRACE_MS)).toBeNull();
    const k3 = explain(twoOperators, job({ redundancy: 3 }));
    expect(unplaceableFailure(k3, GRACE_MS - 1, GRACE_MS)).toBeNull();
    expect(unplaceableFailure(k3, GRACE_MS * 10, 0)).toBeNull();
  });

  it('fails redundancy 3 over 2 operators after the grace period, with the explanation', () => {
    const failure = unplaceableFailure(explain(twoOperators, job({ redundancy: 3 })), GRACE_MS, GRACE_MS);
    expect(failure?.code).toBe('UNPLACEABLE');
    expect(failure?.message).toContain('no provider could take this job for 60 s: no match');
    expect(failure?.message).toContain('reduce redundancy from 3 to 2');
    expect(failure?.details).toMatchObject({ providers: 2, eligibleOperators: 2, needed: 3 });
  });

  it('names the exclusions: a price cap below every provider, a backend nobody runs', () => {
    const cheap = unplaceableFailure(explain(twoOperators, job({ maxPricePerUnit: 1n })), GRACE_MS, GRACE_MS);
    expect(cheap?.details).toMatchObject({ excluded: { price: 2 } });
    expect(cheap?.message).toContain('raise maxPricePerUnit from 1 to 10');
    const gpu = unplaceableFailure(
      explain(twoOperators, job({ requirements: { backends: ['tensorflow-gpu'] } })),
      GRACE_MS,
      GRACE_MS,
    );
    expect(gpu?.details).toMatchObject({ excluded: { backend: 2 } });
  });

  it('keeps waiting while busy providers would place it', () => {
    const busy = [provider(1, { freeSlots: 0 }), provider(2, { freeSlots: 0 })];
    const why = explain(busy, job());
    expect(why.placeable).toBe(false);
    expect(unplaceableFailure(why, GRACE_MS * 10, GRACE_MS)).toBeNull();
  });

  it('fails with no provider at all, and quotes what providers that tried it reported', () => {
    const failure = unplaceableFailure(explain([], job()), GRACE_MS, GRACE_MS, ['BAD_INPUT: shapes']);
    expect(failure?.message).toMatch(/no match: 0 eligible provider\(s\) from 0 operator\(s\) of 0/);
    expect(failure?.message).toContain('providers that tried it reported: BAD_INPUT: shapes');
  });
});
