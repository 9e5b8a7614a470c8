// Entry of a worker thread (the agent's executor, the @gpumesh/compute reference) run from TypeScript
// sources (vitest, ts tooling): registers the TypeScript hooks for this thread, then imports the real
// worker module named in workerData. Compiled dist starts the .js worker directly (worker-entry.ts).
import { register } from 'node:module';
import { workerData } from 'node:worker_threads';

register('./ts-worker-loader.mjs', import.meta.url);
await import(workerData.entry);
