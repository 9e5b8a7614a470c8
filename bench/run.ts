// Runs the benchmarks and writes their figures to bench/results/latest.json, and a readable table
// (each headline figure beside its baseline from the same run) to bench/results/latest.md.
//   npm run bench                      every benchmark
//   npm run bench -- --only scheduler  one (comma-separate several)
//   node dist/bench/run.js --table     only rewrite latest.md from latest.json
// Each benchmark module exports `run(): Promise<BenchFigures>` and compares variants in the same run.
// Figures of benchmarks not run this time are kept from the previous file (each has its measuredAt).
// A benchmark that throws is recorded with its error and the others still run (exit code 1).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { renderTable } from './support/table.js';

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
  scaleout: './scaleout.bench.js',
  'p2p-attack': './p2p-attack.bench.js',
  'job-offer': './job-offer.bench.js',
  tensors: './tensors.bench.js',
  'webgpu-matmul': './webgpu-matmul.bench.js',
};

const here = dirname(fileURLToPath(import.meta.url));
const resultsFile = join(here, '..', '..', 'bench', 'results', 'latest.json');
const tableFile = join(here, '..', '..', 'bench', 'results', 'latest.md');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { only: { type: 'string' }, table: { type: 'boolean' }, help: { type: 'boolean' } },
  });
  if (values.help) {
    console.log(
      `usage: npm run bench [-- --only ${Object.keys(BENCHMARKS).join('|')}]\n` +
        '       node dist/bench/run.js --table   rewrite latest.md from latest.json, running nothing',
    );
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
  const failed: string[] = [];
  const save = async (): Promise<void> => {
    await mkdir(dirname(resultsFile), { recursive: true });
    await writeFile(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
    await writeFile(
      tableFile,
      `# Benchmark figures\n\nWritten by \`npm run bench\` (bench/run.ts) from \`latest.json\`; each row's figure and\n` +
        `baseline come from the same run of that benchmark. Reproduce one with \`npm run bench -- --only <name>\`.\n\n` +
        renderTable(results, Object.keys(BENCHMARKS)),
    );
  };
  if (values.table) {
    await save();
    console.error(`bench: ${tableFile} written from ${resultsFile}`);
    return;
  }
  for (const name of names) {
    const modulePath = BENCHMARKS[name];
    console.error(`bench: running ${name} ...`);
    const started = performance.now();
    try {
      const mod = (await import(pathToFileURL(join(here, modulePath)).href)) as {
        run: () => Promise<BenchFigures>;
      };
      const figures = await mod.run();
      results[name] = {
        ...figures,
        measuredAt: new Date().toISOString(),
        benchSeconds: Math.round((performance.now() - started) / 1000),
      };
    } catch (err) {
      failed.push(name);
      results[name] = {
        error: err instanceof Error ? err.message.slice(0, 2000) : String(err),
        measuredAt: new Date().toISOString(),
      };
      console.error(`bench: ${name} failed:`, err);
    }
    console.log(JSON.stringify({ [name]: results[name] }, null, 2));
    await save(); // a long run keeps what it measured so far
  }
  console.error(`bench: figures written to ${resultsFile} and ${tableFile}`);
  if (failed.length > 0) {
    console.error(`bench: failed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

main()
  // A benchmark that leaves a handle open (a Redis connection, a timer) must not keep the run alive
  // after the figures are written: the full run once sat idle on one Redis socket.
  .then(() => process.exit(process.exitCode ?? 0))
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
