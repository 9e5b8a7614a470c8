// The tensor store's writer thread: hashes (SHA-256) and writes the bytes of uploads and job outputs
// by ref, so neither runs on the coordinator's event loop (hashing alone is ~4 ms a MiB on a busy
// core). A float32 upload is also checked for NaN and ±Infinity as it passes (`scan-float32`), so a
// job naming it later need not read it again (≈ 50 ms per 64 MiB on the event loop). Each file is one
// `open`, many `write` (an ArrayBuffer transferred, and transferred back for reuse once its bytes are
// copied or written), then `finish` (fsync, close, the digest) or `abort`. Replies to one file's
// requests go back in the order the requests came.
//
// Direct I/O. On these VMs a buffered 1 MiB write into a new file took 0.5–3.5 ms: the page cache
// takes fresh pages, which the hypervisor backs on first touch (`dd` of 256 MiB: 417 MB/s into a new
// file, 7 GB/s over an existing one), and that bounded uploads at 250–300 MB/s. So where the file
// system takes O_DIRECT, the bytes are copied into page-aligned 1 MiB blocks (WebAssembly memory:
// V8 maps it on whole pages) and written from there to the disk without the page cache (`dd
// oflag=direct`: 1.4–1.5 GB/s here), up to DIRECT_WRITES_PER_FILE at once per file, while the next
// batch is hashed. What cannot go direct (the tail of a file, a range begun off a block boundary,
// a moment with every block taken by other files, a file system that refuses O_DIRECT) is written
// through the page cache as before; nothing waits on another file's blocks. `finish` fsyncs either way.
//
// Every SYNC_EVERY_BYTES written through the page cache, a background `fdatasync` (the thread pool)
// starts the disk on them while more arrives: the `fsync` of `finish` then waits only for the tail.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, fdatasync, fsyncSync, openSync, write } from 'node:fs';
import { parentPort } from 'node:worker_threads';

import { Float32FiniteScan } from './float32-scan.js';
import type { WriterReply, WriterRequest } from './tensor-writer-messages.js';

// WebAssembly's memory, declared here: the project's lib (ES2023, no DOM) leaves out WebAssembly.
declare const WebAssembly: { Memory: new (size: { initial: number }) => { readonly buffer: ArrayBuffer } };

const port = parentPort;
if (!port) throw new Error('tensor-writer-worker runs as a worker thread');

/** Bytes written through the page cache between two background syncs. */
const SYNC_EVERY_BYTES = 16 * 1024 * 1024;
/** One direct write: its memory, file offset and length are multiples of it. */
const DIRECT_BLOCK_BYTES = 1024 * 1024;
/** Aligned blocks of the thread, shared by every file (16 MiB, mapped once, reused). */
const DIRECT_BLOCKS = 16;
/** Direct writes one file has in flight before its next block waits for one of them. */
const DIRECT_WRITES_PER_FILE = 3;

/** Off where O_DIRECT does not exist, or once the file system refused it (files may also ask not to). */
let directIo = typeof constants.O_DIRECT === 'number' && constants.O_DIRECT > 0;

/** The aligned blocks: made on the first direct write (one WebAssembly memory, page-aligned). */
let blocks: Uint8Array[] | null = null;
const freeBlocks: number[] = [];

function takeBlock(): number | undefined {
  if (blocks === null) {
    const memory = new WebAssembly.Memory({ initial: (DIRECT_BLOCKS * DIRECT_BLOCK_BYTES) / 65_536 });
    const all = memory.buffer;
    blocks = Array.from(
      { length: DIRECT_BLOCKS },
      (_, i) => new Uint8Array(all, i * DIRECT_BLOCK_BYTES, DIRECT_BLOCK_BYTES),
    );
    for (let i = DIRECT_BLOCKS - 1; i >= 0; i--) freeBlocks.push(i);
  }
  return freeBlocks.pop();
}

function blockBytes(index: number): Uint8Array {
  return (blocks as Uint8Array[])[index];
}

interface FillingBlock {
  index: number;
  /** Where in the file the block goes. */
  position: number;
  filled: number;
}

interface OpenFile {
  fd: number;
  /** The same file opened with O_DIRECT, or null (every write through `fd`; also once `directIo` is off). */
  directFd: number | null;
  hash: Hash;
  /** The float32 check, when asked for. */
  scan: Float32FiniteScan | null;
  /** Where the next byte goes. */
  position: number;
  /** The aligned block being filled, if any. */
  block: FillingBlock | null;
  /** Direct writes in flight, oldest first (each resolves once written and its block is free). */
  direct: Promise<void>[];
  /** Every write handed to the thread pool (resolve once written; never reject). */
  writes: Set<Promise<void>>;
  /** The requests of this file, one after the other. */
  work: Promise<void>;
  /** The replies of this file, in order. */
  replies: Promise<void>;
  /** The first write that failed. */
  failure: string | null;
  /** Bytes written with O_DIRECT. */
  directBytes: number;
  bufferedUnsynced: number;
  /** The background sync in progress, if any (the file is not closed before it ends). */
  syncing: Promise<void> | null;
}

const files = new Map<number, OpenFile>();

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Writes all of `bytes` at `position` (a write may take less than it was given). */
function writeAll(fd: number, bytes: Uint8Array, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const next = (done: number): void => {
      if (done === bytes.byteLength) return resolve();
      write(fd, bytes, done, bytes.byteLength - done, position + done, (err, n) =>
        err ? reject(err) : next(done + n),
      );
    };
    next(0);
  });
}

/** A write the file waits for before it is synced or closed; its failure is kept as the file's. */
function track(file: OpenFile, writing: Promise<void>): Promise<void> {
  const tracked = writing.catch((err: unknown) => {
    file.failure ??= message(err);
  });
  file.writes.add(tracked);
  void tracked.then(() => file.writes.delete(tracked));
  return tracked;
}

function syncInBackground(file: OpenFile): void {
  if (file.syncing) return;
  file.bufferedUnsynced = 0;
  // its failure is left to the fsync of `finish`, which reports it
  file.syncing = new Promise<void>((resolve) => fdatasync(file.fd, () => resolve())).then(() => {
    file.syncing = null;
  });
}

/** `bytes` at `position` through the page cache (a background sync once enough is unsynced). */
function writeBuffered(file: OpenFile, bytes: Uint8Array, position: number): Promise<void> {
  return track(
    file,
    writeAll(file.fd, bytes, position).then(() => {
      file.bufferedUnsynced += bytes.byteLength;
      if (file.bufferedUnsynced >= SYNC_EVERY_BYTES) syncInBackground(file);
    }),
  );
}

/** The full block written with O_DIRECT; its block is free again once written. */
function writeDirect(file: OpenFile, block: FillingBlock, directFd: number): void {
  const bytes = blockBytes(block.index);
  const written = writeAll(directFd, bytes, block.position).then(
    () => {
      file.directBytes += DIRECT_BLOCK_BYTES;
    },
    (err: unknown) => {
      // a file system that takes O_DIRECT at open but not these writes: this block and every later
      // one go through the page cache
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      directIo = false;
      return writeAll(file.fd, bytes, block.position);
    },
  );
  const done = track(file, written).then(() => {
    freeBlocks.push(block.index);
  });
  file.direct.push(done);
  void done.then(() => {
    file.direct = file.direct.filter((writing) => writing !== done);
  });
}

/**
 * Puts `bytes` (the next ones of the file) on their way: copied into aligned blocks written direct
 * where that is possible, the rest written through the page cache straight from `bytes`. Resolves
 * once `bytes` may be reused: at once when all were copied, else once their writes are done.
 */
async function place(file: OpenFile, bytes: Uint8Array): Promise<void> {
  const inPlace: Promise<void>[] = [];
  for (let offset = 0; offset < bytes.byteLength;) {
    const position = file.position;
    if (file.block === null && file.directFd !== null && directIo && position % DIRECT_BLOCK_BYTES === 0) {
      while (file.direct.length >= DIRECT_WRITES_PER_FILE) await file.direct[0];
      const index = takeBlock();
      if (index !== undefined) file.block = { index, position, filled: 0 };
    }
    const block = file.block;
    if (block !== null) {
      const n = Math.min(bytes.byteLength - offset, DIRECT_BLOCK_BYTES - block.filled);
      blockBytes(block.index).set(bytes.subarray(offset, offset + n), block.filled);
      block.filled += n;
      offset += n;
      file.position += n;
      if (block.filled === DIRECT_BLOCK_BYTES) {
        file.block = null;
        if (directIo && file.directFd !== null) writeDirect(file, block, file.directFd);
        else inPlace.push(writeAndFree(file, block));
      }
    } else {
      // up to the next block boundary, from where a block may be free again
      const n = Math.min(bytes.byteLength - offset, DIRECT_BLOCK_BYTES - (position % DIRECT_BLOCK_BYTES));
      inPlace.push(writeBuffered(file, bytes.subarray(offset, offset + n), position));
      offset += n;
      file.position += n;
    }
  }
  await Promise.all(inPlace);
}

/** A block's filled part written through the page cache, then the block freed. */
async function writeAndFree(file: OpenFile, block: FillingBlock): Promise<void> {
  await writeBuffered(file, blockBytes(block.index).subarray(0, block.filled), block.position);
  freeBlocks.push(block.index);
}

/** Waits for every write and background sync of the file (before its fds are synced or closed). */
async function settled(file: OpenFile): Promise<void> {
  while (file.writes.size > 0) await Promise.all(file.writes);
  while (file.syncing) await file.syncing;
}

function closeFile(file: OpenFile): void {
  closeSync(file.fd);
  if (file.directFd !== null) closeSync(file.directFd);
}

/** Opens `path` for direct writes beside `fd`, or null where the file system does not take them. */
function openDirect(path: string): number | null {
  if (!directIo) return null;
  try {
    return openSync(path, constants.O_WRONLY | constants.O_DIRECT);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') directIo = false;
    return null;
  }
}

function reply(msg: WriterReply, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(msg, transfer);
}

/** Runs `step` after the file's earlier requests, and replies what it returns after their replies. */
function inOrder(file: OpenFile, id: number, step: () => Promise<WriterReply>): void {
  const result = file.work.then(step);
  file.work = result.then(
    () => undefined,
    () => undefined,
  );
  file.replies = file.replies.then(() =>
    result.then(
      (msg) => reply(msg, msg.type === 'ok' && msg.buffer ? [msg.buffer] : []),
      (err: unknown) => reply({ type: 'error', id, message: message(err) }),
    ),
  );
}

port.on('message', (msg: WriterRequest) => {
  try {
    if (msg.type === 'open') {
      const fd = openSync(msg.path, 'w');
      files.set(msg.id, {
        fd,
        directFd: msg.directIo ? openDirect(msg.path) : null,
        hash: createHash('sha256'),
        scan: null,
        position: 0,
        block: null,
        direct: [],
        writes: new Set(),
        work: Promise.resolve(),
        replies: Promise.resolve(),
        failure: null,
        directBytes: 0,
        bufferedUnsynced: 0,
        syncing: null,
      });
      reply({ type: 'ok', id: msg.id });
      return;
    }
    const file = files.get(msg.id);
    if (!file) {
      // an abort of a file never opened (its open failed) has nothing to drop
      if (msg.type === 'abort') reply({ type: 'ok', id: msg.id });
      else reply({ type: 'error', id: msg.id, message: `no open file ${msg.id}` });
      return;
    }
    const { id } = msg;
    switch (msg.type) {
      case 'scan-float32':
        file.scan = new Float32FiniteScan();
        inOrder(file, id, () => Promise.resolve({ type: 'ok', id }));
        return;
      case 'write': {
        const { buffer } = msg;
        const bytes = new Uint8Array(buffer, msg.offset, msg.length);
        inOrder(file, id, async () => {
          file.hash.update(bytes);
          file.scan?.update(bytes);
          await place(file, bytes);
          if (file.failure !== null) throw new Error(file.failure);
          // the buffer goes back to the event loop's pool: refilled there without fresh pages
          return { type: 'ok', id, buffer };
        });
        return;
      }
      case 'finish':
        files.delete(id);
        inOrder(file, id, async () => {
          try {
            if (file.block !== null) {
              const tail = file.block;
              file.block = null;
              await writeAndFree(file, tail);
            }
            await settled(file);
            if (file.failure !== null) throw new Error(file.failure);
            fsyncSync(file.fd);
            return {
              type: 'done',
              id,
              sha256: file.hash.digest('hex'),
              nonFinite: file.scan?.result(),
              directBytes: file.directBytes,
            };
          } finally {
            closeFile(file);
          }
        });
        return;
      case 'abort':
        files.delete(id);
        inOrder(file, id, async () => {
          await settled(file);
          if (file.block !== null) freeBlocks.push(file.block.index);
          file.block = null;
          closeFile(file);
          return { type: 'ok', id };
        });
        return;
    }
  } catch (err) {
    reply({ type: 'error', id: msg.id, message: message(err) });
  }
});
