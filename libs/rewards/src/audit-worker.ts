// The audit's second thread (started by EpochAuditor, epoch-auditor.ts): checks an epoch file's tree
// dump (tree-dump-scan.ts, or tree-dump-check.ts when its bytes are not canonical) while the thread that sent it hashes the file and checks the leaves and
// receipts.
import { parentPort } from 'node:worker_threads';

import { decodeUtf8 } from './epoch-file-split.js';
import { checkTreeDumpText, type TreeDumpVerdict } from './tree-dump-check.js';
import { scanTreeDump } from './tree-dump-scan.js';

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
    // The canonical bytes are read as they are; anything else is parsed as JSON.
    const verdict = scanTreeDump(job.tree) ?? checkTreeDumpText(decodeUtf8(job.tree));
    result = { id: job.id, verdict };
  } catch (err) {
    result = { id: job.id, error: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(result);
});
