// Entry of the audit's worker thread (epoch-auditor.ts) when run from TypeScript sources (vitest):
// registers the repository's TypeScript hooks for this thread (libs/compute's loader, a dev-only
// path: compiled dist starts audit-worker.js directly), then imports the worker module named in
// workerData.
import { register } from 'node:module';
import { workerData } from 'node:worker_threads';

register('../../compute/src/ts-worker-loader.mjs', import.meta.url);
await import(workerData.entry);
