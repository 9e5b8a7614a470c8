// Writing a tensor file off the event loop: one shared writer thread (tensor-writer-worker.ts) hashes
// and writes every file of the store; the event loop only batches socket chunks into 1 MiB buffers
// and hands them over (transferred, not copied). At most MAX_IN_FLIGHT_BYTES wait per file, so a
// slow disk holds the upload back (the caller awaits `write`).
import { Worker } from 'node:worker_threads';
import { workerEntry } from '@gpumesh/compute';

import type { WriterReply, WriterRequest } from './tensor-writer-messages.js';

/** Bytes handed to the writer thread and not yet written, per file, before `write` waits. */
export const MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024;

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
    this.worker.on('message', (msg: WriterReply) => this.waiting.get(msg.id)?.shift()?.resolve(msg));
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

/** One file being written by the writer thread: `write` in order, then `finish` or `abort`. */
export class TensorFileWriter {
  private readonly thread = writerThread();
  private readonly id = this.thread.id();
  private inFlight: Promise<WriterReply>[] = [];
  private inFlightBytes: number[] = [];
  private opened: Promise<WriterReply>;

  constructor(path: string) {
    this.opened = this.thread.send({ type: 'open', id: this.id, path });
  }

  /**
   * Hands `bytes` to the writer thread: its ArrayBuffer is transferred when `bytes` spans all of it
   * (the caller must not use it again), else copied. Resolves once fewer than MAX_IN_FLIGHT_BYTES
   * wait; rejects with an earlier failure.
   */
  async write(bytes: Uint8Array): Promise<void> {
    const owned =
      bytes.byteOffset === 0 &&
      bytes.buffer.byteLength === bytes.byteLength &&
      bytes.buffer instanceof ArrayBuffer;
    const buffer = owned ? (bytes.buffer as ArrayBuffer) : new Uint8Array(bytes).buffer;
    this.inFlight.push(
      this.thread.send({ type: 'write', id: this.id, buffer, offset: 0, length: bytes.byteLength }, [buffer]),
    );
    this.inFlightBytes.push(bytes.byteLength);
    let waiting = this.inFlightBytes.reduce((n, b) => n + b, 0);
    while (waiting > MAX_IN_FLIGHT_BYTES) {
      check(await (this.inFlight.shift() as Promise<WriterReply>));
      waiting -= this.inFlightBytes.shift() ?? 0;
    }
  }

  /** Waits for every write, fsyncs and closes the file; resolves the SHA-256 of all bytes written. */
  async finish(): Promise<string> {
    try {
      check(await this.opened);
      for (const p of this.inFlight) check(await p);
      this.inFlight = [];
      this.inFlightBytes = [];
      const done = check(await this.thread.send({ type: 'finish', id: this.id }));
      if (done.type !== 'done') throw new Error('the tensor writer thread did not finish the file');
      return done.sha256;
    } finally {
      this.thread.forget(this.id);
    }
  }

  /** Drops the file's handle (the caller deletes the file); never throws. */
  async abort(): Promise<void> {
    await Promise.allSettled([this.opened, ...this.inFlight]);
    await this.thread.send({ type: 'abort', id: this.id });
    this.thread.forget(this.id);
  }
}
