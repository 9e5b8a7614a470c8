// Worker entry used when a #compute worker runs from TypeScript sources (vitest, ts tooling):
// registers the TypeScript hooks for this thread, then imports the real worker module named in
// workerData. Compiled dist starts the sibling .js worker directly and never loads this file.
import { register } from 'node:module';
import { workerData } from 'node:worker_threads';

register('./ts-worker-loader.mjs', import.meta.url);
await import(workerData.entry);
