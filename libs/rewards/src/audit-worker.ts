// The audit's second thread (started by EpochAuditor, epoch-auditor.ts): checks an epoch file's tree
// dump (tree-dump-check.ts) while the thread that sent it hashes the file and checks the leaves and
// receipts.
import { parentPort } from 'node:worker_threads';

import { decodeUtf8 } from './epoch-file-split.js';
import { checkTreeDumpText, type TreeDumpVerdict } from './tree-dump-check.js';

/** One tree dump to check: the bytes of its JSON value. */
export interface AuditWorkerJob {
  readonly id: number;
  readonly tree: Uint8Array;
}

export type AuditWorkerResult =
  | { readonly id: number; readonly verdict: TreeDumpVerdict }
  | { readonly id: number; readonly error: string };

parentPort?.on('message', (job: AuditWorkerJob) => {
  let result: AuditWorkerResult;
  try {
    result = { id: job.id, verdict: checkTreeDumpText(decodeUtf8(job.tree)) };
  } catch (err) {
    result = { id: job.id, error: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(result);
});
