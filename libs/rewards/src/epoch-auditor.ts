import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

import { auditEpoch, auditParsedEpoch, type AuditOptions, type AuditReport } from './audit.js';
import type { AuditWorkerJob, AuditWorkerResult } from './audit-worker.js';
import {
  isWellFormedEpochFile,
  type EpochFile,
  type EpochLeaf,
  type StandardTreeDump,
} from './epoch-file.js';
import { decodeUtf8, NULL_TREE, splitEpochFile, type EpochFileSplit } from './epoch-file-split.js';
import { scanEpochLeaves, type ScannedLeaves } from './epoch-leaves-scan.js';
import { keccak256Hex } from './keccak.js';
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
 * at its tree dump (`epoch-file-split.ts`); the worker checks the dump is the tree of its own values
 * (`tree-dump-check.ts`) while this thread reads the rest (`readHead`: the leaves scanned from the
 * bytes, their receipts summed and checked for repeats without being parsed), hashes the bytes and
 * checks leaves, receipts and totals, then compares the leaves with the dump's values. The report is `auditEpoch`'s,
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
    // One path for both: a text is read as its UTF-8 bytes (what its hash is taken over anyway).
    const bytes = typeof epochFile === 'string' ? Buffer.from(epochFile, 'utf8') : epochFile;
    const split = splitEpochFile(bytes);
    if (!split) return slow();
    const checked = this.send(bytes.subarray(split.treeAt, split.endAt));
    const read = readHead(bytes, split);
    const fileHash = read === null ? null : keccak256Hex(bytes);
    const result = await checked;
    if (
      read === null ||
      result === null ||
      'error' in result ||
      result.verdict.kind !== 'faithful' ||
      !sameValues(
        result.verdict,
        leafValues({
          chainId: read.file.chainId,
          distributor: read.file.distributor,
          leaves: read.scanned.positions,
        }),
      )
    ) {
      return slow();
    }
    const file = lazyMember(read.file, 'tree', () => JSON.parse(split.tree()) as StandardTreeDump);
    this.stats.twoThreads++;
    return auditParsedEpoch(file, fileHash, chainRoot, chainFileHash, options, {
      treeRoot: result.verdict.root,
      scanned: read.scanned,
    });
  }

  /** Stops the worker thread (a later audit starts another). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    this.failAll();
    this.shared = null;
    if (worker) await worker.terminate();
  }

  /** Gives the worker a tree dump to check; resolves with its answer, or null when it failed. */
  private send(tree: Uint8Array): Promise<AuditWorkerResult | null> {
    let worker: Worker;
    try {
      worker = this.ensureWorker();
    } catch {
      return Promise.resolve(null);
    }
    const id = this.nextId++;
    const job: AuditWorkerJob = { id, tree: this.copyForWorker(tree) };
    const answer = new Promise<AuditWorkerResult | null>((resolve) => this.pending.set(id, { resolve }));
    if (this.pending.size === 1) worker.ref();
    worker.postMessage(job);
    return answer;
  }

  /**
   * The bytes for the worker (the caller keeps its own): copied into a buffer shared with the worker
   * and reused from one audit to the next, since copying 25 MB into fresh memory costs more than the
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

const LEAVES_MEMBER = Buffer.from('"leaves":[', 'latin1');

/** The file but its tree, read by `readHead`; its `leaves` are parsed only when first read. */
export interface HeadRead {
  readonly file: EpochFile;
  readonly scanned: ScannedLeaves;
}

/**
 * The file but its tree, read on this thread without parsing its leaves (`scanEpochLeaves`): the
 * text around them, with the leaves and the tree replaced by placeholders, is parsed as JSON. Null
 * when unsure (the audit then parses the whole file).
 *
 * Why this is what `JSON.parse` makes of the whole file: the text before the leaves' value leaves the
 * parser expecting a value, and the placeholder and the scanned array are each one whole JSON value,
 * so the text after them is parsed alike (as the tree's cut, `epoch-file-split.ts`). The placeholder
 * holds a fresh random string no file can contain: the top-level `leaves` parses to it only when the
 * scanned value is the last `leaves` member of the outermost object, and no other member can be named
 * `leaves` without breaking the file's exact shape (`isWellFormedEpochFile`).
 */
export function readHead(bytes: Uint8Array, split: EpochFileSplit): HeadRead | null {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const memberAt = buf.indexOf(LEAVES_MEMBER);
  if (memberAt < 0) return null;
  const valueAt = memberAt + LEAVES_MEMBER.length - 1;
  const scanned = scanEpochLeaves(bytes, valueAt, split.memberAt);
  if (scanned === null) return null;
  const placeholder = randomUUID();
  let head: unknown;
  try {
    head = JSON.parse(
      `${decodeUtf8(bytes.subarray(0, valueAt))}["${placeholder}"]` +
        `${decodeUtf8(bytes.subarray(scanned.end, split.memberAt))}${NULL_TREE}`,
    );
  } catch {
    return null;
  }
  if (typeof head !== 'object' || head === null) return null;
  const fields = head as Record<string, unknown>;
  const leaves = fields.leaves;
  if (!Array.isArray(leaves) || leaves.length !== 1 || leaves[0] !== placeholder) return null;
  fields.leaves = [];
  if (!isWellFormedEpochFile(fields)) return null;
  return { file: lazyMember(fields, 'leaves', () => JSON.parse(scanned.json()) as EpochLeaf[]), scanned };
}

/**
 * `object` with its `key` read when first used, then kept (the report's reader rarely needs the
 * leaves' receipts or the tree, and parsing them here would cost what the fast path saved).
 */
function lazyMember<T extends object, K extends keyof T>(object: T, key: K, read: () => T[K]): T {
  Object.defineProperty(object, key, {
    configurable: true,
    enumerable: true,
    get(): T[K] {
      const value = read();
      Object.defineProperty(object, key, { value, configurable: true, enumerable: true, writable: true });
      return value;
    },
  });
  return object;
}
