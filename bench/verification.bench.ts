// Adversarial verification at full size: ≥ 10 agents, 20% cheating (wrong values, noise, zeros,
// stale replays, a colluding pair), ≥ 2,000 matmul jobs under redundant(2) + canaries, through a
// real coordinator (PostgreSQL, Redis, libp2p). Prints paid wrong results (must be 0), jobs until
// each cheater was banned, honest providers penalised (must be 0), detection rate and the
// verification overhead (extra provider work per job).
import { runVerificationHarness } from '../test/verification/harness.js';
import type { BenchFigures } from './run.js';

export async function run(): Promise<BenchFigures> {
  const report = await runVerificationHarness({
    honest: Number(process.env.BENCH_VERIFICATION_HONEST ?? 24),
    adversaries: ['wrong', 'noise', 'zeros', 'stale', 'copy', 'copy'],
    jobs: Number(process.env.BENCH_VERIFICATION_JOBS ?? 2000),
    concurrency: Number(process.env.BENCH_VERIFICATION_CONCURRENCY ?? 24),
    policy: {
      mode: 'redundant',
      k: 2,
      canaryRate: Number(process.env.BENCH_VERIFICATION_CANARY_RATE ?? 0.1),
    },
    log: (line) => console.error(line),
  });
  return { ...report } as BenchFigures;
}
