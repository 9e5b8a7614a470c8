// Scheduler benchmark: 10,000 providers, 100,000 queued jobs with mixed requirements, dispatched through
// the fair queue and placed by the indexed engine (select + reserve). A naive linear scan with the same
// constraints and scoring runs in the same process on a sample of the same decisions, against the same
// index state, and its choices are compared with the indexed engine's.
//   npm run bench -- --only scheduler
import { cpus, loadavg } from 'node:os';
import {
  createRng,
  FairQueue,
  Scheduler,
  type Backend,
  type GpuInfo,
  type JobRequest,
  type PriorityClass,
  type ProviderSnapshot,
  type Rng,
} from '@gpumesh/scheduler';

const PROVIDERS = 10_000;
const JOBS = 100_000;
const OPERATORS = 3_500;
const ACCOUNTS = 1_000;
const NAIVE_EVERY = 50;
const WARMUP = 3_000;
/** Jobs running at once; the oldest completes when more are out (keeps about half the slots busy). */
const IN_FLIGHT = 12_000;
/** One advert refresh per this many decisions (gossip keeps arriving while the worker places). */
const ADVERT_EVERY = 100;
const REGIONS = ['eu-west', 'eu-central', 'us-east', 'us-west', 'ap-south', 'ap-east'];
const T0 = 1_750_000_000_000;

const MODELS: { model: string; vramMiB: number; gflops: number; cc: string }[] = [
  { model: 'RTX 3060', vramMiB: 12288, gflops: 12_700, cc: '8.6' },
  { model: 'RTX 3070', vramMiB: 8192, gflops: 20_300, cc: '8.6' },
  { model: 'RTX 3080', vramMiB: 10240, gflops: 29_800, cc: '8.6' },
  { model: 'RTX 3090', vramMiB: 24576, gflops: 35_600, cc: '8.6' },
  { model: 'RTX 4070', vramMiB: 12288, gflops: 29_100, cc: '8.9' },
  { model: 'RTX 4080', vramMiB: 16384, gflops: 48_700, cc: '8.9' },
  { model: 'RTX 4090', vramMiB: 24576, gflops: 82_600, cc: '8.9' },
  { model: 'RTX A4000', vramMiB: 16384, gflops: 19_200, cc: '8.6' },
  { model: 'RTX A5000', vramMiB: 24576, gflops: 27_800, cc: '8.6' },
  { model: 'RTX A6000', vramMiB: 49152, gflops: 38_700, cc: '8.6' },
  { model: 'A100 40GB', vramMiB: 40960, gflops: 19_500, cc: '8.0' },
  { model: 'A100 80GB', vramMiB: 81920, gflops: 19_500, cc: '8.0' },
  { model: 'H100', vramMiB: 81920, gflops: 67_000, cc: '9.0' },
  { model: 'L4', vramMiB: 24576, gflops: 30_300, cc: '8.9' },
  { model: 'T4', vramMiB: 16384, gflops: 8_100, cc: '7.5' },
];

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

function logUniform(rng: Rng, lo: number, hi: number): number {
  return Math.exp(Math.log(lo) + rng.next() * (Math.log(hi) - Math.log(lo)));
}

function makeProvider(rng: Rng, i: number, now: number): ProviderSnapshot {
  const r = rng.next();
  const backend: Backend = r < 0.6 ? 'tensorflow-gpu' : r < 0.75 ? 'tensorflow' : r < 0.85 ? 'wasm' : 'cpu';
  const gpus: GpuInfo[] = [];
  let gflops: number;
  let price: number;
  let slots: number;
  if (backend === 'tensorflow-gpu' || (backend === 'tensorflow' && rng.next() < 0.3)) {
    const m = pick(rng, MODELS);
    const count = Math.floor(logUniform(rng, 1, 8.99));
    for (let g = 0; g < count; g++)
      gpus.push({ model: m.model, vramMiB: m.vramMiB, computeCapability: m.cc });
    if (rng.next() < 0.15) {
      const m2 = pick(rng, MODELS);
      gpus.push({ model: m2.model, vramMiB: m2.vramMiB, computeCapability: m2.cc });
    }
  }
  if (backend === 'tensorflow-gpu') {
    const m = MODELS.find((x) => x.model === gpus[0].model) ?? MODELS[0];
    gflops = m.gflops * (0.2 + 0.5 * rng.next());
    price = (gflops / 200) * (0.5 + rng.next());
    slots = Math.max(1, Math.min(8, gpus.length * (1 + rng.int(2))));
  } else {
    gflops =
      backend === 'tensorflow'
        ? 100 + rng.next() * 700
        : backend === 'wasm'
          ? 10 + rng.next() * 90
          : 20 + rng.next() * 180;
    price = 1 + rng.next() * 8;
    slots = 1 + rng.int(4);
  }
  const isNew = rng.next() < 0.03;
  return {
    peerId: `peer-${i}`,
    operatorId: `op-${rng.int(OPERATORS)}`,
    backend,
    gpus,
    gflops,
    pricePerUnit: BigInt(Math.max(1, Math.round(price))),
    slots,
    freeSlots: slots,
    reputation: isNew ? 0.5 : 0.3 + 0.7 * rng.next(),
    region: rng.next() < 0.05 ? undefined : pick(rng, REGIONS),
    latencyMs: 5 + rng.next() * 295,
    banned: rng.next() < 0.01,
    draining: rng.next() < 0.02,
    expiresAt: now + 3_600_000,
    firstSeenAt: isNew ? now - rng.int(3_600_000) : now - 2 * 86_400_000 - rng.int(30 * 86_400_000),
    completedJobs: isNew ? rng.int(5) : 10 + rng.int(5000),
    stake: 0n,
    inFlightValue: 0n,
  };
}

function makeJob(rng: Rng, i: number, now: number, peers: number): JobRequest {
  const r = rng.next();
  const requirements: JobRequest['requirements'] = {};
  let gpuJob = true;
  if (r < 0.3) {
    // anything goes
  } else if (r < 0.55) {
    requirements.backends = ['tensorflow-gpu'];
    requirements.minVramMiB = pick(rng, [8192, 12288, 16384, 24576, 40960, 81920]);
  } else if (r < 0.7) {
    const n = 1 + rng.int(3);
    requirements.gpuModels = Array.from({ length: n }, () => pick(rng, MODELS).model);
    if (rng.next() < 0.5) requirements.minVramMiB = pick(rng, [8192, 16384, 24576]);
  } else if (r < 0.8) {
    requirements.backends = ['cpu', 'wasm', 'tensorflow'];
    gpuJob = false;
  } else {
    requirements.backends = ['tensorflow-gpu', 'tensorflow'];
  }
  // Required speed between 1 and 20,000 GFLOP/s (GPU jobs) or up to 300 (CPU jobs).
  const required = logUniform(rng, 1, gpuJob ? 20_000 : 300);
  const windowMs = Math.round(logUniform(rng, 10_000, 3_600_000));
  const workUnits = BigInt(Math.max(1, Math.round(required * windowMs)));
  const maxPrice = rng.next() < 0.05 ? 1 : gpuJob ? logUniform(rng, 20, 600) : logUniform(rng, 2, 20);
  const k = rng.next();
  const accountId = `acct-${Math.floor(logUniform(rng, 1, ACCOUNTS + 1)) - 1}`;
  const pr = rng.next();
  const priority: PriorityClass = pr < 0.1 ? 'high' : pr < 0.8 ? 'normal' : 'low';
  return {
    jobId: `job-${i}`,
    accountId,
    priority,
    workUnits,
    requirements,
    maxPricePerUnit: BigInt(Math.round(maxPrice)),
    redundancy: k < 0.6 ? 1 : k < 0.9 ? 2 : 3,
    deadlineAt: now + windowMs,
    region: rng.next() < 0.4 ? pick(rng, REGIONS) : undefined,
    excludePeers: rng.next() < 0.05 ? [`peer-${rng.int(peers)}`, `peer-${rng.int(peers)}`] : undefined,
  };
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export async function run(): Promise<Record<string, unknown>> {
  const rng = createRng(20_240_601);
  const scheduler = new Scheduler({ seed: 7 });
  let now = T0;
  const providers: ProviderSnapshot[] = [];
  const buildStart = performance.now();
  for (let i = 0; i < PROVIDERS; i++) {
    const p = makeProvider(rng, i, now);
    providers.push(p);
    scheduler.upsertProvider(p, now);
  }
  const buildMs = performance.now() - buildStart;
  scheduler.tick(now);

  // Warm-up on throwaway jobs (JIT), leaving no reservations behind.
  for (let i = 0; i < WARMUP; i++) {
    const job = makeJob(rng, -1 - i, now, PROVIDERS);
    scheduler.place(job, now);
    scheduler.selectNaive(job, now);
    scheduler.cancel(job.jobId);
  }

  const queue = new FairQueue<JobRequest>();
  const jobs: JobRequest[] = [];
  for (let i = 0; i < JOBS; i++) jobs.push(makeJob(rng, i, now, PROVIDERS));
  const enqueueStart = performance.now();
  for (const j of jobs) queue.enqueue(j);
  const enqueueMs = performance.now() - enqueueStart;

  const times = new Float64Array(JOBS);
  const naiveTimes: number[] = [];
  const selectTimes: number[] = [];
  const inFlight: string[] = [];
  let inFlightHead = 0;
  let placed = 0;
  let explored = 0;
  let examined = 0;
  let agree = 0;
  let compared = 0;
  let advertTime = 0;
  let adverts = 0;
  let dequeueTime = 0;
  let decisions = 0;
  let placedMicros = 0;
  let failedMicros = 0;
  const loopStart = performance.now();
  for (;;) {
    const d0 = performance.now();
    const job = queue.dequeue();
    const t0 = performance.now();
    dequeueTime += t0 - d0;
    if (job === undefined) break;
    const result = scheduler.place(job, now);
    const t1 = performance.now();
    times[decisions] = (t1 - t0) * 1000;
    decisions++;
    if (result.ok) placedMicros += (t1 - t0) * 1000;
    else failedMicros += (t1 - t0) * 1000;
    examined += result.examined;
    if (result.ok) {
      placed++;
      if (result.placements.some((p) => p.explored)) explored++;
      for (const p of result.placements) scheduler.confirm(job.jobId, p.peerId, now);
      inFlight.push(job.jobId);
      if (inFlight.length - inFlightHead > IN_FLIGHT) scheduler.cancel(inFlight[inFlightHead++]);
    }
    if (decisions % NAIVE_EVERY === 0) {
      const n0 = performance.now();
      const naive = scheduler.selectNaive(job, now);
      const n1 = performance.now();
      const indexed = scheduler.select(job, now, { explore: false });
      const n2 = performance.now();
      naiveTimes.push(n1 - n0);
      selectTimes.push(n2 - n1);
      compared++;
      if (
        naive.ok === indexed.ok &&
        naive.placements.map((p) => p.peerId).join() === indexed.placements.map((p) => p.peerId).join()
      ) {
        agree++;
      }
    }
    if (decisions % ADVERT_EVERY === 0) {
      const p = providers[rng.int(PROVIDERS)];
      const usage = scheduler.usage(p.peerId);
      const refreshed: ProviderSnapshot = {
        ...p,
        reputation: Math.min(1, Math.max(0, p.reputation + (rng.next() - 0.5) * 0.02)),
        freeSlots: usage === undefined ? p.slots : Math.max(0, p.slots - usage.busy),
        expiresAt: now + 3_600_000,
      };
      const a0 = performance.now();
      scheduler.upsertProvider(refreshed, now);
      advertTime += performance.now() - a0;
      adverts++;
    }
    now += 0.05;
  }
  const loopMs = performance.now() - loopStart;

  const placeMs = times.reduce((a, b) => a + b, 0) / 1000;
  const sorted = times.slice(0, decisions).sort();
  const naiveMs = naiveTimes.reduce((a, b) => a + b, 0);
  const selectMs = selectTimes.reduce((a, b) => a + b, 0);
  const decisionsPerSecond = decisions / (placeMs / 1000);
  const naiveDecisionsPerSecond = naiveTimes.length / (naiveMs / 1000);
  const stats = scheduler.stats();
  return {
    providers: PROVIDERS,
    jobs: JOBS,
    decisions,
    decisionsPerSecond: Math.round(decisionsPerSecond),
    p50Micros: round(percentile(sorted, 0.5)),
    p99Micros: round(percentile(sorted, 0.99)),
    p50DecisionsPerSecond: Math.round(1e6 / Math.max(1e-9, percentile(sorted, 0.5))),
    maxMicros: round(sorted[sorted.length - 1] ?? 0),
    naiveDecisionsPerSecond: Math.round(naiveDecisionsPerSecond),
    naiveSamples: naiveTimes.length,
    naiveMeanMicros: round((naiveMs * 1000) / Math.max(1, naiveTimes.length)),
    speedup: round(decisionsPerSecond / naiveDecisionsPerSecond, 1),
    indexedSelectOnSampleDecisionsPerSecond: Math.round(selectTimes.length / (selectMs / 1000)),
    naiveAgreement: round(agree / Math.max(1, compared), 4),
    placedShare: round(placed / decisions, 4),
    placedMeanMicros: round(placedMicros / Math.max(1, placed)),
    unplaceableMeanMicros: round(failedMicros / Math.max(1, decisions - placed)),
    exploredShare: round(explored / Math.max(1, placed), 4),
    meanEntriesExamined: round(examined / decisions, 1),
    loopDecisionsPerSecond: Math.round(decisions / ((loopMs - naiveMs - selectMs) / 1000)),
    fairQueueEnqueuePerSecond: Math.round(JOBS / (enqueueMs / 1000)),
    fairQueueDequeuePerSecond: Math.round(decisions / (dequeueTime / 1000)),
    advertUpsertMicros: round((advertTime * 1000) / Math.max(1, adverts)),
    indexBuildMs: round(buildMs, 1),
    buckets: stats.buckets,
    regions: stats.regions,
    explorationPool: stats.explorationPool,
    reservationsAtEnd: stats.reservations,
    node: process.version,
    /** Other work on the machine skews wall-clock figures; the speedup (same run) is the stable one. */
    loadAverage1m: round(loadavg()[0]),
    cpus: cpus().length,
  };
}
