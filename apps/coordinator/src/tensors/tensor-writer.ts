// Writing a tensor file off the event loop: one shared writer thread (tensor-writer-worker.ts) hashes
// and writes every file of the store; the event loop only copies socket chunks into 1 MiB batch
// buffers and hands them over (transferred, not copied). The thread transfers each buffer back once
// its bytes are written (or copied into a block it writes with O_DIRECT), and the next batch is
// copied into it: a fresh 1 MiB buffer costs 256 page faults, and on
// this VM allocating and filling fresh ones took 40–190 ms per 64 MiB against 2–3 ms for reused ones.
// At most MAX_IN_FLIGHT_BYTES wait per file, so a slow disk holds the upload back (the caller awaits
// `append`).
import { Worker } from 'node:worker_threads';
import { workerEntry } from '@gpumesh/compute';

import type { NonFinite, WriterReply, WriterRequest } from './tensor-writer-messages.js';

/** Bytes handed to the writer thread and not yet written, per file, before `append` waits. */
export const MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024;
/** Bytes the event loop gathers into one buffer before handing it to the writer thread. */
export const WRITE_BATCH_BYTES = 1024 * 1024;
/** Batch buffers kept for reuse when no file needs them (32 MiB): four uploads at full speed. */
const IDLE_BATCHES_KEPT = 32;

const idleBatches: ArrayBuffer[] = [];

function takeBatch(): Uint8Array {
  return new Uint8Array(idleBatches.pop() ?? new ArrayBuffer(WRITE_BATCH_BYTES));
}

function returnBatch(buffer: ArrayBuffer): void {
  if (buffer.byteLength === WRITE_BATCH_BYTES && idleBatches.length < IDLE_BATCHES_KEPT) {
    idleBatches.push(buffer);
  }
}

interface Waiter {
  resolve: (reply: WriterReply) => void;
}

let shared: WriterThread | undefined;

/** The process's writer thread (started on first use, never keeps the process alive). */
function writerThread(): WriterThread {
  if (!shared || shared.dead) shared = new WriterThread();
  return shared;
}

/**
 * Starts the writer thread now rather than on the first upload (which would pay its start-up, tens
 * of milliseconds on a busy machine).
 */
export function startTensorWriter(): void {
  writerThread();
}

class WriterThread {
  readonly worker: Worker;
  dead = false;
  private nextId = 1;
  /** Replies awaited, in order, per file id. */
  private readonly waiting = new Map<number, Waiter[]>();

  constructor() {
    const { url, entry } = workerEntry(import.meta.url, 'tensor-writer-worker');
    this.worker = new Worker(url, { workerData: entry ? { entry } : {} });
    this.worker.unref();
    this.worker.on('message', (msg: WriterReply) => {
      if (msg.type === 'ok' && msg.buffer) returnBatch(msg.buffer);
      this.waiting.get(msg.id)?.shift()?.resolve(msg);
    });
    const gone = (why: string): void => {
      this.dead = true;
      for (const [id, waiters] of this.waiting) {
        for (const w of waiters) w.resolve({ type: 'error', id, message: why });
      }
      this.waiting.clear();
    };
    this.worker.on('error', (err: Error) => gone(`the tensor writer thread failed: ${err.message}`));
    this.worker.on('exit', (code: number) => gone(`the tensor writer thread exited with code ${code}`));
  }

  id(): number {
    const id = this.nextId++;
    this.waiting.set(id, []);
    return id;
  }

  forget(id: number): void {
    this.waiting.delete(id);
  }

  send(msg: WriterRequest, transfer: ArrayBuffer[] = []): Promise<WriterReply> {
    const waiters = this.waiting.get(msg.id);
    if (this.dead || !waiters) {
      return Promise.resolve({ type: 'error', id: msg.id, message: 'the tensor writer thread is gone' });
    }
    return new Promise((resolve) => {
      waiters.push({ resolve });
      this.worker.postMessage(msg, transfer);
    });
  }
}

function check(reply: WriterReply): WriterReply {
  if (reply.type === 'error') throw new Error(reply.message);
  return reply;
}

/** One file being written by the writer thread: `append` in order, then `finish` or `abort`. */
export class TensorFileWriter {
  private readonly thread = writerThread();
  private readonly id = this.thread.id();
  private inFlight: Promise<WriterReply>[] = [];
  private inFlightBytes: number[] = [];
  private opened: Promise<WriterReply>;
  /** The batch being filled, and how much of it is. */
  private batch: Uint8Array | null = null;
  private batchBytes = 0;

  /** `directIo`: full 1 MiB blocks written with O_DIRECT where the file system takes it (see TensorFiles). */
  constructor(path: string, options: { directIo: boolean }) {
    this.opened = this.thread.send({ type: 'open', id: this.id, path, directIo: options.directIo });
  }

  /**
   * Copies `bytes` into the file's batch buffer (the caller may reuse `bytes` at once) and hands each
   * full batch to the writer thread. Resolves once fewer than MAX_IN_FLIGHT_BYTES wait; rejects with
   * an earlier failure.
   */
  async append(bytes: Uint8Array): Promise<void> {
    for (let offset = 0; offset < bytes.byteLength;) {
      this.batch ??= takeBatch();
      const n = Math.min(bytes.byteLength - offset, this.batch.byteLength - this.batchBytes);
      this.batch.set(bytes.subarray(offset, offset + n), this.batchBytes);
      this.batchBytes += n;
      offset += n;
      if (this.batchBytes === this.batch.byteLength) await this.flush();
    }
  }

  /** Hands the batch (full or not) to the writer thread; waits while too much is in flight. */
  private async flush(): Promise<void> {
    if (this.batch === null || this.batchBytes === 0) return;
    const buffer = this.batch.buffer as ArrayBuffer;
    const length = this.batchBytes;
    this.batch = null;
    this.batchBytes = 0;
    this.inFlight.push(this.thread.send({ type: 'write', id: this.id, buffer, offset: 0, length }, [buffer]));
    this.inFlightBytes.push(length);
    let waiting = this.inFlightBytes.reduce((n, b) => n + b, 0);
    while (waiting > MAX_IN_FLIGHT_BYTES) {
      check(await (this.inFlight.shift() as Promise<WriterReply>));
      waiting -= this.inFlightBytes.shift() ?? 0;
    }
  }

  /**
   * Checks every byte appended from now on as float32 (for NaN and ±Infinity), in the writer thread;
   * `finish` reports the first one found.
   */
  scanFloat32(): void {
    this.inFlight.push(this.thread.send({ type: 'scan-float32', id: this.id }));
    this.inFlightBytes.push(0);
  }

  /**
   * Writes what is left, waits for every write, fsyncs and closes the file; resolves the SHA-256,
   * after `scanFloat32` the first element that is not finite (null: none), and how many bytes went
   * past the page cache (O_DIRECT).
   */
  async finish(): Promise<{ sha256: string; nonFinite?: NonFinite | null; directBytes: number }> {
    try {
      await this.flush();
      check(await this.opened);
      for (const p of this.inFlight) check(await p);
      this.inFlight = [];
      this.inFlightBytes = [];
      const done = check(await this.thread.send({ type: 'finish', id: this.id }));
      if (done.type !== 'done') throw new Error('the tensor writer thread did not finish the file');
      return { sha256: done.sha256, nonFinite: done.nonFinite, directBytes: done.directBytes };
    } finally {
      this.thread.forget(this.id);
    }
  }

  /** Drops the file's handle (the caller deletes the file); never throws. */
  async abort(): Promise<void> {
    if (this.batch !== null) returnBatch(this.batch.buffer as ArrayBuffer);
    this.batch = null;
    await Promise.allSettled([this.opened, ...this.inFlight]);
    await this.thread.send({ type: 'abort', id: this.id });
    this.thread.forget(this.id);
  }
}
