// The readable side of bench/results/latest.json: one markdown row per benchmark, its headline
// figure beside the baseline measured in the same run (bench/results/latest.md).

type Figures = Record<string, unknown>;

/** Reads a dotted path of a figures object; '?' when absent. */
function at(f: Figures, path: string): string {
  let v: unknown = f;
  for (const key of path.split('.')) {
    if (v === null || typeof v !== 'object') return '?';
    v = (v as Record<string, unknown>)[key];
  }
  if (v === undefined || v === null) return '?';
  if (typeof v === 'number') return v.toLocaleString('en-US', { maximumFractionDigits: 2 });
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

const percent = (v: unknown): string => (typeof v === 'number' ? `${Math.round(v * 1000) / 10}%` : '?');

interface Row {
  figure: string;
  baseline: string;
}

const ROWS: Record<string, (f: Figures) => Row> = {
  api: (f) => ({
    figure: `${at(f, 'acceptedJobsPerSecond')} accepted jobs/s, p50 ${at(f, 'p50Ms')} ms, p99 ${at(f, 'p99Ms')} ms (${at(f, 'concurrency')} concurrent clients, REST → PostgreSQL → BullMQ)`,
    baseline: `raw BullMQ \`addBulk\`: ${at(f, 'rawBullmqAddBulkJobsPerSecond')} jobs/s (ratio ${at(f, 'ratioToRawBullmq')})`,
  }),
  scheduler: (f) => ({
    figure: `${at(f, 'decisionsPerSecond')} decisions/s mean, p50 ${at(f, 'p50Micros')} µs, p99 ${at(f, 'p99Micros')} µs; ${at(f, 'providers')} providers, ${at(f, 'jobs')} jobs`,
    baseline: `naive scan: ${at(f, 'naiveDecisionsPerSecond')}/s (${at(f, 'speedup')}× slower)`,
  }),
  compute: (f) =>
    f.kernelWorkers === undefined
      ? {
          figure: `wasm matmul ${at(f, 'matmulSize')}²: ${at(f, 'backends.wasm.gflops')} GFLOP/s sustained, ${at(f, 'backends.wasm.peakGflops')} peak; 2 workers ${at(f, 'workers.scaling')}× one`,
          baseline: `ceiling ≈ ${at(f, 'wasmSimdCeilingGflopsPerCore')} GFLOP/s a core (${at(f, 'backends.wasm.ratioOfCeiling')})`,
        }
      : {
          figure: `wasm matmul ${at(f, 'matmulSize')}²: ${at(f, 'backends.wasm.gflops')} GFLOP/s; in 2 workers at once ${at(f, 'kernelWorkers.two.matmulGflops')} GFLOP/s, ${at(f, 'kernelWorkers.two.ratioOfCeiling')} of the ceiling each, ×${at(f, 'kernelWorkers.scaling')} one worker; ${at(f, 'matmulSize')}² jobs through the executor (wire decoding and encoding included): ${at(f, 'workers.one.jobsPerSecond')} → ${at(f, 'workers.two.jobsPerSecond')} jobs/s with 2 slots (×${at(f, 'workers.scaling')})${at(f, 'trainMlp.gemmSamplesPerSecond') !== '?' ? `; MLP training on wasm: ${at(f, 'trainMlp.gemmSamplesPerSecond')} samples/s (XNNPACK ${at(f, 'trainMlp.xnnpackSamplesPerSecond')})` : ''}`,
          baseline: `wasm SIMD ceiling measured here: ${at(f, 'measuredWasmSimdCeiling.gflopsPerCore')} GFLOP/s a core, ×${at(f, 'measuredWasmSimdCeiling.twoThreadsScaling')} on 2 (nominal ${at(f, 'wasmSimdCeilingGflopsPerCore')})${at(f, 'backends.wasm.xnnpackGflops') !== '?' ? `; tfjs's XNNPACK kernel: ${at(f, 'backends.wasm.xnnpackGflops')} GFLOP/s, ${at(f, 'kernelWorkers.two.xnnpackRatioOfCeiling')} of the ceiling in 2 workers (gemm ×${at(f, 'kernelWorkers.two.gemmOverXnnpack')})` : ''}`,
        },
  settlement: (f) => ({
    figure: `${at(f, 'ledgerCreditsPerSecond')} ledger credits/s; Merkle tree of ${at(f, 'providers')} providers in ${at(f, 'merkleBuildMs')} ms; post root ${at(f, 'gasPostRoot')} gas; claim ${at(f, 'gasClaimSteadyStateAvg')} gas; watcher audit ${at(f, 'watcherAuditMs')} ms, veto in ${at(f, 'watcherVetoMs')} ms; coordinator gone: ${at(f, 'coordinatorGoneDrill.recoveredPercentOfPosted')} % of posted epochs recovered`,
    baseline: `${at(f, 'gasPerJobSettlementOnly')} gas per paid job vs ${at(f, 'gasErc20TransferExistingRecipient')}–${at(f, 'gasErc20TransferFreshRecipient')} for an ERC20 transfer per job`,
  }),
  marketplace: (f) => ({
    figure: `${at(f, 'endToEndJobsPerSecond')} tiny jobs/s end to end with ${at(f, 'agents')} local agents (${at(f, 'concurrency')} concurrent submitters: p50 ${at(f, 'p50SubmitToResultMs')} ms, p99 ${at(f, 'p99SubmitToResultMs')} ms submit to result, queueing included); coordinator ${at(f, 'coordinatorCpuMsPerJob')} ms CPU a job; adverts of ${at(f, 'gossipAgents')} agents: ${percent(f.advertDeliveryShare)} delivered, p50 ${at(f, 'advertPropagationP50Ms')} ms, p99 ${at(f, 'advertPropagationP99Ms')} ms`,
    baseline:
      f.unloadedP50SubmitToResultMs !== undefined
        ? `unloaded (${at(f, 'sequentialJobs')} jobs one at a time): p50 ${at(f, 'unloadedP50SubmitToResultMs')} ms, p99 ${at(f, 'unloadedP99SubmitToResultMs')} ms`
        : '—',
  }),
  tolerance: (f) => {
    const summary = (f.summary ?? {}) as Record<string, { minMargin?: number; allAgree?: boolean }>;
    const parts = Object.entries(summary).map(
      ([kind, s]) => `${kind} ${s.minMargin === undefined ? '?' : s.minMargin.toFixed(2)}`,
    );
    return {
      figure: `smallest margin (bound / observed spread between backends) per kind: ${parts.join(', ') || '?'}`,
      baseline: 'margin ≥ 1 required',
    };
  },
  verification: (f) => ({
    figure: `${at(f, 'paidWrongResults')} paid wrong results, ${at(f, 'wrongResultsDelivered')} wrong delivered, ${at(f, 'honestPenalised')} honest penalised, ${at(f, 'cheatersBanned')}/${at(f, 'cheatersWhoCheated')} cheaters banned; ${at(f, 'jobs.completed')} jobs, ${at(f, 'agents.honest')} honest + ${at(f, 'agents.adversarial')} cheating agents`,
    baseline: `extra provider work per job ${at(f, 'overhead.extraProviderWorkPerJob')} (redundant(2) alone: 1)`,
  }),
  chaos: (f) => ({
    figure: `${at(f, 'accepted')} jobs through ${at(f, 'faultsTotal')} random faults: ${at(f, 'lost')} lost, ${at(f, 'notCompleted')} not completed, ${at(f, 'completedTwice')} completed twice, ${at(f, 'paidTwice')} paid twice, ledger sum ${at(f, 'ledgerSum')}, ${at(f, 'balanceMismatches')} balance mismatches, stranded reservation ${at(f, 'strandedReservation')}${f.onChain === true ? `; on anvil: off chain = on chain ${at(f, 'offChainEqualsOnChain')} (largest difference ${at(f, 'largestDifferenceBaseUnits')}, unfunded ${at(f, 'unfundedBaseUnits')}, ${at(f, 'epochsFinalized')} epochs finalized)` : ''}; ${at(f, 'jobsPerSecondThroughFaults')} jobs/s`,
    baseline: 'required: every count and difference 0, off chain = on chain true',
  }),
  scaleout: (f) => ({
    figure: `two coordinators: ${at(f, 'twoCoordinators.jobsPerSecond')} jobs/s (×${at(f, 'ratio')}), coordinators ${at(f, 'twoCoordinators.cores.coordinators')} cores, machine idle ${at(f, 'twoCoordinators.cores.idle')}; placed twice ${at(f, 'audit.placedTwice')}, completed twice ${at(f, 'audit.completedTwice')}, paid twice ${at(f, 'audit.paidTwice')}, ledger sum ${at(f, 'audit.ledgerSum')}; ${at(f, 'audit.dispatchedTwice')} placed again after an agent refused a slot both workers offered`,
    baseline: `one coordinator: ${at(f, 'oneCoordinator.jobsPerSecond')} jobs/s, ${at(f, 'oneCoordinator.cores.coordinators')} cores, machine idle ${at(f, 'oneCoordinator.cores.idle')} (same ${at(f, 'agents')} agents, ${at(f, 'jobsPerPhase')} jobs)`,
  }),
  tensors: (f) => {
    // BENCH_TENSORS_PART runs a part: each part says what it measured
    const figure: string[] = [];
    const baseline: string[] = [];
    if (f['256MiB'] !== undefined) {
      figure.push(
        `\`.npy\` by the SDK on loopback, 64 / 256 MiB: upload ${at(f, '64MiB.uploadMBps')} / ${at(f, '256MiB.uploadMBps')} MB/s, download ${at(f, '64MiB.downloadMBps')} / ${at(f, '256MiB.downloadMBps')} MB/s; \`/health/live\` p99 ${at(f, 'healthLiveDuringTransfers.p99Ms')} ms meanwhile`,
      );
      baseline.push(
        `download by curl ${at(f, '64MiB.downloadMBpsCurl')} / ${at(f, '256MiB.downloadMBpsCurl')} MB/s, by \`node:http\` ${at(f, '64MiB.downloadMBpsHttpClient')} / ${at(f, '256MiB.downloadMBpsHttpClient')}`,
      );
    }
    if (f.directIoVersusPageCache !== undefined) {
      baseline.push(
        `uploads through the page cache (TENSOR_DIRECT_IO=false) 64 / 256 MiB: ${at(f, 'directIoVersusPageCache.64MiB.uploadMBpsPageCache')} / ${at(f, 'directIoVersusPageCache.256MiB.uploadMBpsPageCache')} MB/s (direct ×${at(f, 'directIoVersusPageCache.64MiB.uploadRatio')} / ×${at(f, 'directIoVersusPageCache.256MiB.uploadRatio')}; their first download ×${at(f, 'directIoVersusPageCache.64MiB.firstDownloadRatio')} / ×${at(f, 'directIoVersusPageCache.256MiB.firstDownloadRatio')})`,
      );
    }
    if (f.jsonVersusNpy !== undefined) {
      baseline.push(
        `the same inputs as JSON: ${at(f, 'jsonVersusNpy.npyOverJsonSpeedup')}× slower than \`.npy\` + refs`,
      );
    }
    if (f.matmul4096EndToEnd !== undefined) {
      figure.push(
        `4096² matmul end to end ${at(f, 'matmul4096EndToEnd.endToEndMs')} ms, \`/health/live\` p99 ${at(f, 'matmul4096EndToEnd.healthLiveDuringJob.p99Ms')} ms during it`,
      );
    }
    return {
      figure: figure.join('; ') || 'see latest.json',
      baseline: baseline.join('; ') || '—',
    };
  },
  'job-offer': (f) => ({
    figure: `one offer as a batch of one: p50 ${at(f, 'sequential.batchOfOne.p50Ms')} ms one at a time, ${at(f, 'concurrent.batchOfOne.offersPerSecond')} offers/s with ${at(f, 'concurrent.inFlight')} in flight`,
    baseline: `one offer on its own stream: p50 ${at(f, 'sequential.single.p50Ms')} ms, ${at(f, 'concurrent.single.offersPerSecond')} offers/s (p50 ratio ${at(f, 'sequentialP50Ratio')}, throughput ratio ${at(f, 'concurrentThroughputRatio')})`,
  }),
  'p2p-attack': (f) => {
    const attacks = (f.attacks ?? {}) as Record<
      string,
      { passed?: boolean; goals?: Record<string, { value: unknown }> }
    >;
    const parts = Object.entries(attacks).map(([name, a]) => {
      const g = a.goals ?? {};
      const ghosts = g.ghostsGoneSeconds
        ? `, ghosts gone ${String(g.ghostsGoneSeconds.value ?? 'never')} s`
        : '';
      return `${name} ${a.passed === true ? 'PASS' : 'FAIL'} (${String(g.completedFraction?.value ?? '?')} done, p50 ×${String(g.p50RatioToClean?.value ?? '?')}, RSS +${String(g.rssGrowthMB?.value ?? '?')} MB${ghosts})`;
    });
    return {
      figure: `${at(f, 'attacksPassed')}/${at(f, 'attacksRun')} attacks meet every goal: ${parts.join('; ') || '?'}`,
      baseline: `clean run: ${at(f, 'clean.honest.completed')}/${at(f, 'clean.honest.submitted')} done, p50 ${at(f, 'clean.honest.p50AllMs')} ms, RSS +${at(f, 'clean.rssGrowthMB')} MB; goals ≥ 0.99 done, p50 ≤ 2×, RSS ≤ 256 MB, ghosts gone within an advert lifetime`,
    };
  },
};

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** A markdown table of every benchmark in `results` (as written to latest.json). */
export function renderTable(results: Record<string, unknown>, order: readonly string[]): string {
  const names = [
    ...order.filter((n) => n in results),
    ...Object.keys(results).filter((n) => !order.includes(n)),
  ];
  const lines = ['| benchmark | figure | baseline in the same run | measured |', '| --- | --- | --- | --- |'];
  for (const name of names) {
    const f = (results[name] ?? {}) as Figures;
    const measured = typeof f.measuredAt === 'string' ? f.measuredAt.slice(0, 16).replace('T', ' ') : '?';
    const row: Row =
      typeof f.error === 'string'
        ? { figure: `failed: ${f.error}`, baseline: '—' }
        : (ROWS[name]?.(f) ?? { figure: 'see latest.json', baseline: '—' });
    lines.push(`| \`${name}\` | ${cell(row.figure)} | ${cell(row.baseline)} | ${measured} UTC |`);
  }
  return `${lines.join('\n')}\n`;
}
