// fast-check generators shared by the scheduler's specs.
import fc from 'fast-check';
import type { Backend, JobRequest, PriorityClass, ProviderSnapshot } from '../src/types.js';

export const NOW = 1_750_000_000_000;
export const MODELS = ['RTX 3090', 'RTX 4090', 'A100', 'T4', 'L4'];
export const REGIONS = ['eu', 'us', 'ap'];
const BACKEND_LIST: Backend[] = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

export function provider(i: number, over: Partial<ProviderSnapshot> = {}): ProviderSnapshot {
  return {
    peerId: `p${i}`,
    operatorId: `op${i}`,
    backend: 'tensorflow-gpu',
    gpus: [{ model: 'RTX 4090', vramMiB: 24576 }],
    gflops: 10_000,
    pricePerUnit: 10n,
    slots: 2,
    freeSlots: 2,
    reputation: 0.9,
    region: 'eu',
    latencyMs: 20,
    banned: false,
    draining: false,
    expiresAt: NOW + 60_000,
    firstSeenAt: NOW - 30 * 86_400_000,
    completedJobs: 100,
    stake: 0n,
    inFlightValue: 0n,
    ...over,
  };
}

export function job(id: string, over: Partial<JobRequest> = {}): JobRequest {
  return {
    jobId: id,
    accountId: 'acct',
    priority: 'normal',
    workUnits: 1_000_000n,
    requirements: {},
    maxPricePerUnit: 100n,
    redundancy: 1,
    deadlineAt: NOW + 600_000,
    ...over,
  };
}

export const providerArb = (i: number): fc.Arbitrary<ProviderSnapshot> =>
  fc
    .record({
      operator: fc.integer({ min: 0, max: 12 }),
      backend: fc.constantFrom(...BACKEND_LIST),
      gpus: fc.array(
        fc.record({
          model: fc.constantFrom(...MODELS),
          vramMiB: fc.constantFrom(8192, 16384, 24576, 40960, 81920),
        }),
        { maxLength: 3 },
      ),
      gflops: fc.integer({ min: 1, max: 50_000 }),
      price: fc.bigInt({ min: 0n, max: 200n }),
      slots: fc.integer({ min: 0, max: 4 }),
      free: fc.integer({ min: 0, max: 4 }),
      reputation: fc.double({ min: 0, max: 1, noNaN: true }),
      region: fc.option(fc.constantFrom(...REGIONS), { nil: undefined }),
      latencyMs: fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined }),
      banned: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
      draining: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
      ttl: fc.integer({ min: -10_000, max: 120_000 }),
      age: fc.integer({ min: 0, max: 60 * 86_400_000 }),
      completed: fc.option(fc.integer({ min: 0, max: 50 }), { nil: undefined }),
      // Job values (workUnits × price) reach 2e13 base units: stakes straddle them.
      stake: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 10n ** 14n })),
      frozen: fc.option(fc.bigInt({ min: 0n, max: 10n ** 13n }), { nil: undefined }),
      inFlight: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 10n ** 13n })),
    })
    .map((r) => ({
      peerId: `p${i}`,
      operatorId: `op${r.operator}`,
      backend: r.backend,
      gpus: r.gpus,
      gflops: r.gflops,
      pricePerUnit: r.price,
      slots: r.slots,
      freeSlots: Math.min(r.free, r.slots),
      reputation: r.reputation,
      region: r.region,
      latencyMs: r.latencyMs,
      banned: r.banned,
      draining: r.draining,
      expiresAt: NOW + r.ttl,
      firstSeenAt: NOW - r.age,
      completedJobs: r.completed,
      stake: r.stake,
      frozenStake: r.frozen,
      inFlightValue: r.inFlight,
    }));

export const providersArb = (min: number, max: number): fc.Arbitrary<ProviderSnapshot[]> =>
  fc.integer({ min, max }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => providerArb(i))));

export const jobArb = (id: string): fc.Arbitrary<JobRequest> =>
  fc
    .record({
      backends: fc.option(fc.subarray(BACKEND_LIST, { minLength: 1 }), { nil: undefined }),
      gpuModels: fc.option(fc.subarray(MODELS, { minLength: 1 }), { nil: undefined }),
      minVramMiB: fc.option(fc.constantFrom(0, 8192, 16384, 24576, 40960, 81920), { nil: undefined }),
      maxPrice: fc.bigInt({ min: 0n, max: 250n }),
      redundancy: fc.integer({ min: 1, max: 3 }),
      windowMs: fc.integer({ min: -1000, max: 3_600_000 }),
      workUnits: fc.bigInt({ min: 0n, max: 100_000_000_000n }),
      region: fc.option(fc.constantFrom(...REGIONS), { nil: undefined }),
      exclude: fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 3 }),
      account: fc.integer({ min: 0, max: 3 }),
      priority: fc.constantFrom<PriorityClass>('high', 'normal', 'low'),
    })
    .map((r) => ({
      jobId: id,
      accountId: `a${r.account}`,
      priority: r.priority,
      workUnits: r.workUnits,
      requirements: { backends: r.backends, gpuModels: r.gpuModels, minVramMiB: r.minVramMiB },
      maxPricePerUnit: r.maxPrice,
      redundancy: r.redundancy,
      deadlineAt: NOW + r.windowMs,
      region: r.region,
      excludePeers: r.exclude.map((x) => `p${x}`),
    }));
