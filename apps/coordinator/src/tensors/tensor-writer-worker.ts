// The tensor store's writer thread: hashes (SHA-256) and writes the bytes of uploads and job outputs
// by ref, so neither runs on the coordinator's event loop (hashing alone is ~4 ms a MiB on a busy
// core). A float32 upload is also checked for NaN and ±Infinity as it passes (`scan-float32`), so a
// job naming it later need not read it again (≈ 50 ms per 64 MiB on the event loop). Each file is one `open`, many `write` (an ArrayBuffer transferred, acknowledged once
// written, and transferred back for reuse), then `finish` (fsync, close, the digest) or `abort`.
//
// A batch is hashed (and scanned) here while the one before it is written by the thread pool
// (`fs.write`, one at a time per file, in order): on these VMs a 1 MiB write into a new file takes
// 0.5–3.5 ms (fresh page-cache pages), about as long as hashing and scanning it, so the two overlap
// instead of adding up (docs/benchmarks.md, twelfth session).
//
// Every SYNC_EVERY_BYTES written, a background `fdatasync` (the thread pool) starts the disk on what
// is written so far while more arrives: the `fsync` of `finish` then waits only for the tail. Left
// to `finish` alone, syncing 64 MiB took 0.1–0.3 s on the bench machine, after the last byte.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, fdatasync, fsyncSync, openSync, write } from 'node:fs';
import { parentPort } from 'node:worker_threads';

import { Float32FiniteScan } from './float32-scan.js';
import type { WriterReply, WriterRequest } from './tensor-writer-messages.js';

const port = parentPort;
if (!port) throw new Error('tensor-writer-worker runs as a worker thread');

/** Bytes written to a file between two background syncs. */
const SYNC_EVERY_BYTES = 16 * 1024 * 1024;

interface OpenFile {
  fd: number;
  hash: Hash;
  unsynced: number;
  /** The background sync in progress, if any (the file is not closed before it ends). */
  syncing: Promise<void> | null;
  /** The float32 check, when asked for. */
  scan: Float32FiniteScan | null;
  /** Where the next batch goes. */
  position: number;
  /** The writes handed to the thread pool, chained: resolves once every one so far is written (never rejects). */
  written: Promise<void>;
}

const files = new Map<number, OpenFile>();

function syncInBackground(file: OpenFile): void {
  if (file.syncing) return;
  file.unsynced = 0;
  // its failure is left to the fsync of `finish`, which reports it
  file.syncing = new Promise<void>((resolve) => fdatasync(file.fd, () => resolve())).then(() => {
    file.syncing = null;
  });
}

/** Waits for a file's writes and background sync (before its fd is synced or closed). */
async function settled(file: OpenFile): Promise<void> {
  await file.written;
  while (file.syncing) await file.syncing;
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

function reply(msg: WriterReply): void {
  port?.postMessage(msg);
}

port.on('message', (msg: WriterRequest) => {
  try {
    switch (msg.type) {
      case 'open':
        files.set(msg.id, {
          fd: openSync(msg.path, 'w'),
          hash: createHash('sha256'),
          unsynced: 0,
          syncing: null,
          scan: null,
          position: 0,
          written: Promise.resolve(),
        });
        reply({ type: 'ok', id: msg.id });
        return;
      case 'scan-float32': {
        const file = files.get(msg.id);
        if (!file) throw new Error(`no open file ${msg.id}`);
        file.scan = new Float32FiniteScan();
        reply({ type: 'ok', id: msg.id });
        return;
      }
      case 'write': {
        const file = files.get(msg.id);
        if (!file) throw new Error(`no open file ${msg.id}`);
        const bytes = new Uint8Array(msg.buffer, msg.offset, msg.length);
        file.hash.update(bytes);
        file.scan?.update(bytes);
        const position = file.position;
        file.position += bytes.byteLength;
        const { id, buffer } = msg;
        file.written = file.written.then(() =>
          writeAll(file.fd, bytes, position).then(
            () => {
              file.unsynced += bytes.byteLength;
              if (file.unsynced >= SYNC_EVERY_BYTES) syncInBackground(file);
              // the buffer goes back to the event loop's pool: refilled there without fresh pages
              port?.postMessage({ type: 'ok', id, buffer } satisfies WriterReply, [buffer]);
            },
            (err: unknown) =>
              reply({ type: 'error', id, message: err instanceof Error ? err.message : String(err) }),
          ),
        );
        return;
      }
      case 'finish': {
        const file = files.get(msg.id);
        if (!file) throw new Error(`no open file ${msg.id}`);
        files.delete(msg.id);
        const sha256 = file.hash.digest('hex');
        const nonFinite = file.scan?.result();
        void settled(file).then(() => {
          try {
            fsyncSync(file.fd);
            reply({ type: 'done', id: msg.id, sha256, nonFinite });
          } catch (err) {
            reply({ type: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) });
          } finally {
            closeSync(file.fd);
          }
        });
        return;
      }
      case 'abort': {
        const file = files.get(msg.id);
        files.delete(msg.id);
        if (!file) {
          reply({ type: 'ok', id: msg.id });
          return;
        }
        void settled(file).then(() => {
          closeSync(file.fd);
          reply({ type: 'ok', id: msg.id });
        });
        return;
      }
    }
  } catch (err) {
    reply({ type: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) });
  }
});
