// Worker entry used when the executor runs from TypeScript sources (vitest, ts tooling): registers
// the TypeScript hooks for this thread, then imports the real worker module named in workerData.
import { register } from 'node:module';
import { workerData } from 'node:worker_threads';

register('./ts-loader.mjs', import.meta.url);
await import(workerData.entry);
