// The tensor store's writer thread: hashes (SHA-256) and writes the bytes of uploads and job outputs
// by ref, so neither runs on the coordinator's event loop (hashing alone is ~4 ms a MiB on a busy
// core). Each file is one `open`, many `write` (an ArrayBuffer transferred, acknowledged once
// written), then `finish` (fsync, close, the digest) or `abort`.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

import type { WriterReply, WriterRequest } from './tensor-writer-messages.js';

const port = parentPort;
if (!port) throw new Error('tensor-writer-worker runs as a worker thread');

const files = new Map<number, { fd: number; hash: Hash }>();

function reply(msg: WriterReply): void {
  port?.postMessage(msg);
}

port.on('message', (msg: WriterRequest) => {
  try {
    switch (msg.type) {
      case 'open':
        files.set(msg.id, { fd: openSync(msg.path, 'w'), hash: createHash('sha256') });
        reply({ type: 'ok', id: msg.id });
        return;
      case 'write': {
        const file = files.get(msg.id);
        if (!file) throw new Error(`no open file ${msg.id}`);
        const bytes = new Uint8Array(msg.buffer, msg.offset, msg.length);
        file.hash.update(bytes);
        for (let written = 0; written < bytes.byteLength;) {
          written += writeSync(file.fd, bytes, written, bytes.byteLength - written);
        }
        reply({ type: 'ok', id: msg.id });
        return;
      }
      case 'finish': {
        const file = files.get(msg.id);
        if (!file) throw new Error(`no open file ${msg.id}`);
        files.delete(msg.id);
        fsyncSync(file.fd);
        closeSync(file.fd);
        reply({ type: 'done', id: msg.id, sha256: file.hash.digest('hex') });
        return;
      }
      case 'abort': {
        const file = files.get(msg.id);
        files.delete(msg.id);
        if (file) closeSync(file.fd);
        reply({ type: 'ok', id: msg.id });
        return;
      }
    }
  } catch (err) {
    reply({ type: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) });
  }
});
