// The audit's second thread (started by EpochAuditor, epoch-auditor.ts): hashes an epoch file's
// bytes and checks its tree dump (tree-dump-check.ts) while the thread that sent them checks the
// leaves and receipts.
import { parentPort } from 'node:worker_threads';

import { decodeUtf8 } from './epoch-file-split.js';
import { keccak256Hex } from './keccak.js';
import { checkTreeDumpText, type TreeDumpVerdict } from './tree-dump-check.js';

/** One epoch file to hash and whose dump to check: the file and where its dump lies in it. */
export interface AuditWorkerJob {
  readonly id: number;
  readonly input: Uint8Array | string;
  readonly treeAt: number;
  readonly endAt: number;
}

export type AuditWorkerResult =
  | {
      readonly id: number;
      /** keccak256 of the file's bytes (of a text's UTF-8). */
      readonly fileHash: string;
      readonly verdict: TreeDumpVerdict;
    }
  | { readonly id: number; readonly error: string };

function runJob(job: AuditWorkerJob): AuditWorkerResult {
  const { input, treeAt, endAt } = job;
  const tree =
    typeof input === 'string' ? input.slice(treeAt, endAt) : decodeUtf8(input.subarray(treeAt, endAt));
  return { id: job.id, fileHash: keccak256Hex(input), verdict: checkTreeDumpText(tree) };
}

parentPort?.on('message', (job: AuditWorkerJob) => {
  let result: AuditWorkerResult;
  try {
    result = runJob(job);
  } catch (err) {
    result = { id: job.id, error: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(result);
});
