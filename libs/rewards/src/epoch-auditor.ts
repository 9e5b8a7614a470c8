import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

import { auditEpoch, auditParsedEpoch, type AuditOptions, type AuditReport } from './audit.js';
import type { AuditWorkerJob, AuditWorkerResult } from './audit-worker.js';
import { isWellFormedEpochFile, type EpochFile, type StandardTreeDump } from './epoch-file.js';
import { splitEpochFile, type EpochFileSplit } from './epoch-file-split.js';
import { leafValues, sameValues } from './tree-dump-check.js';

/** The native TypeScript transpiler the worker's loader uses when run from sources (vitest). */
const TS_TRANSPILER_PACKAGE = '@swc/core';

/**
 * Where the worker starts: compiled dist runs audit-worker.js; TypeScript sources (vitest) run a
 * bootstrap that installs the TypeScript loader in the thread. The loader's native addon is loaded
 * here first and kept: one loaded first by a thread that exits crashes the next thread to load it
 * (see libs/compute/src/worker-entry.ts).
 */
function auditWorker(): Worker {
  if (import.meta.url.endsWith('.ts')) {
    createRequire(import.meta.url)(TS_TRANSPILER_PACKAGE);
    return new Worker(new URL('./ts-worker-bootstrap.mjs', import.meta.url), {
      workerData: { entry: new URL('./audit-worker.ts', import.meta.url).href },
    });
  }
  return new Worker(new URL('./audit-worker.js', import.meta.url));
}

interface Pending {
  resolve(result: AuditWorkerResult | null): void;
}

/**
 * `auditEpoch` on two threads, for the watcher (one per process, reused across epochs; its worker
 * thread starts on the first audit and does not keep the process alive when idle). The file is cut
 * at its tree dump (`epoch-file-split.ts`); the worker hashes the bytes and checks the dump is the tree
 * of its own values (`tree-dump-check.ts`) while this thread parses the rest and checks leaves,
 * receipts and totals, then compares the leaves with the dump's values. The report is `auditEpoch`'s,
 * problem for problem (`epoch-auditor.spec.ts`): whenever the fast path is unsure (a dump that is not
 * the leaves' tree, a layout it cannot cut, a worker that failed) the whole audit runs on this thread.
 */
export class EpochAuditor {
  /** Audits done on two threads, and on one (the fast path unsure, or a parsed file given). */
  readonly stats = { twoThreads: 0, oneThread: 0 };
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private shared: SharedArrayBuffer | null = null;

  async audit(
    epochFile: EpochFile | Uint8Array | string | unknown,
    chainRoot: string,
    chainFileHash: string,
    options: AuditOptions = {},
  ): Promise<AuditReport> {
    const slow = (): AuditReport => {
      this.stats.oneThread++;
      return auditEpoch(epochFile, chainRoot, chainFileHash, options);
    };
    if (!(epochFile instanceof Uint8Array) && typeof epochFile !== 'string') return slow();
    const split = splitEpochFile(epochFile);
    if (!split) return slow();
    const checked = this.send(epochFile, split);

    let head: unknown;
    try {
      head = JSON.parse(split.head());
    } catch {
      head = null;
    }
    const leaves = isWellFormedEpochFile(head) && head.tree === null ? leafValues(head) : null;
    const result = await checked;
    if (
      leaves === null ||
      result === null ||
      'error' in result ||
      result.verdict.kind !== 'faithful' ||
      !sameValues(result.verdict, leaves)
    ) {
      return slow();
    }
    const file = withLazyTree(head as EpochFile, split);
    this.stats.twoThreads++;
    return auditParsedEpoch(file, result.fileHash, chainRoot, chainFileHash, options, result.verdict.root);
  }

  /** Stops the worker thread (a later audit starts another). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    this.failAll();
    this.shared = null;
    if (worker) await worker.terminate();
  }

  /** Gives the worker its job; resolves with its answer, or null when it failed. */
  private send(input: Uint8Array | string, split: EpochFileSplit): Promise<AuditWorkerResult | null> {
    let worker: Worker;
    try {
      worker = this.ensureWorker();
    } catch {
      return Promise.resolve(null);
    }
    const id = this.nextId++;
    const job: AuditWorkerJob = {
      id,
      input: typeof input === 'string' ? input : this.copyForWorker(input),
      treeAt: split.treeAt,
      endAt: split.endAt,
    };
    const answer = new Promise<AuditWorkerResult | null>((resolve) => this.pending.set(id, { resolve }));
    if (this.pending.size === 1) worker.ref();
    worker.postMessage(job);
    return answer;
  }

  /**
   * The bytes for the worker (the caller keeps its own): copied into a buffer shared with the worker
   * and reused from one audit to the next, since copying 80 MB into fresh memory costs more than the
   * copy itself (a page fault every 4 KiB). A second audit while one is running gets its own.
   */
  private copyForWorker(bytes: Uint8Array): Uint8Array {
    if (this.pending.size > 0) return new Uint8Array(bytes);
    if (!this.shared || this.shared.byteLength < bytes.byteLength) {
      this.shared = new SharedArrayBuffer(bytes.byteLength);
    }
    const copy = new Uint8Array(this.shared, 0, bytes.byteLength);
    copy.set(bytes);
    return copy;
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = auditWorker();
    worker.unref();
    worker.on('message', (result: AuditWorkerResult) => {
      const waiting = this.pending.get(result.id);
      this.pending.delete(result.id);
      if (this.pending.size === 0) worker.unref();
      waiting?.resolve(result);
    });
    const lost = (): void => {
      if (this.worker === worker) this.worker = null;
      this.failAll();
    };
    worker.on('error', lost);
    worker.on('exit', lost);
    this.worker = worker;
    return worker;
  }

  private failAll(): void {
    for (const waiting of this.pending.values()) waiting.resolve(null);
    this.pending.clear();
  }
}

/**
 * The head's file with its `tree` read from the dump's text when first used (the report's reader
 * rarely needs it, and parsing it again here would cost what the worker saved).
 */
function withLazyTree(head: EpochFile, split: EpochFileSplit): EpochFile {
  Object.defineProperty(head, 'tree', {
    configurable: true,
    enumerable: true,
    get(): StandardTreeDump {
      const tree = JSON.parse(split.tree()) as StandardTreeDump;
      Object.defineProperty(head, 'tree', {
        value: tree,
        configurable: true,
        enumerable: true,
        writable: true,
      });
      return tree;
    },
  });
  return head;
}
