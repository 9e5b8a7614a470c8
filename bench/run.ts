// Runs the benchmarks and writes their figures to bench/results/latest.json.
//   npm run bench                      every benchmark
//   npm run bench -- --only scheduler  one (comma-separate several)
// Each benchmark module exports `run(): Promise<BenchFigures>` and compares variants in the same run.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export type BenchFigures = Record<string, unknown>;

/** Benchmark name → module beside this file (compiled to dist/bench). */
const BENCHMARKS: Record<string, string> = {
  api: './api.bench.js',
  scheduler: './scheduler.bench.js',
  compute: './compute.bench.js',
  settlement: './settlement.bench.js',
  marketplace: './marketplace.bench.js',
  tolerance: './tolerance.bench.js',
  verification: './verification.bench.js',
  chaos: './chaos.bench.js',
};

const here = dirname(fileURLToPath(import.meta.url));
const resultsFile = join(here, '..', '..', 'bench', 'results', 'latest.json');

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { only: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    console.log(`usage: npm run bench [-- --only ${Object.keys(BENCHMARKS).join('|')}]`);
    return;
  }
  const names = values.only ? values.only.split(',').map((n) => n.trim()) : Object.keys(BENCHMARKS);
  const unknown = names.filter((n) => !(n in BENCHMARKS));
  if (unknown.length > 0) {
    throw new Error(
      `unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHMARKS).join(', ')}`,
    );
  }
  let previous: Record<string, unknown> = {};
  try {
    previous = JSON.parse(await readFile(resultsFile, 'utf8')) as Record<string, unknown>;
  } catch {
    previous = {};
  }
  const results: Record<string, unknown> = { ...previous };
  for (const name of names) {
    const modulePath = BENCHMARKS[name];
    console.error(`bench: running ${name} ...`);
    const mod = (await import(pathToFileURL(join(here, modulePath)).href)) as {
      run: () => Promise<BenchFigures>;
    };
    const figures = await mod.run();
    results[name] = { ...figures, measuredAt: new Date().toISOString() };
    console.log(JSON.stringify({ [name]: results[name] }, null, 2));
  }
  await mkdir(dirname(resultsFile), { recursive: true });
  await writeFile(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  console.error(`bench: figures written to ${resultsFile}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
