// .npy files on the developer's disk, in and out, without holding them whole. An upload is read
// from the file as it is sent (its header checked first, so a wrong file fails before any byte
// leaves), by the SDK over a socket of its own for http and https (fetch's streamed and Blob bodies
// managed 135–230 MB/s on loopback). A download is written as it arrives to a temporary file that
// replaces the target only once complete. A tensor by ref is content-addressed (its ref is the
// sha256 of its element bytes), so a download is checked against the ref it was asked for: bytes
// that differ are never written where the developer asked.
import { createHash, randomBytes } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { readNpyHeader, NpyFormatError, type NpyHeader } from '@gpumesh/protocol/npy';
import type { DType } from '@gpumesh/protocol';
import type { GpumeshClient, NpyStream, UploadedTensorDto } from '@gpumesh/sdk';
import { CommandError, UsageError } from './command.js';

/** Bytes read from a file to find its header (headers are at most a few hundred bytes). */
const HEADER_PROBE_BYTES = 64 * 1024;
/** Downloads at least this large report their progress. */
const PROGRESS_FROM_BYTES = 64 * 1024 * 1024;
const MIB = 1024 * 1024;

export interface NpyFileInfo {
  dtype: DType;
  shape: number[];
  /** The whole file's length. */
  bytes: number;
}

/**
 * A `.npy` file to upload, its header checked (a tensor gpumesh takes, data as long as its shape
 * says). Errors name the file.
 */
export async function openNpyFile(path: string): Promise<NpyFileInfo & { path: string }> {
  let head: Buffer;
  let size: number;
  try {
    const file = await open(path, 'r');
    try {
      size = (await file.stat()).size;
      head = Buffer.alloc(Math.min(size, HEADER_PROBE_BYTES));
      await file.read(head, 0, head.length, 0);
    } finally {
      await file.close();
    }
  } catch (err) {
    throw new UsageError(`cannot read ${path} (${(err as Error).message})`);
  }
  let header;
  try {
    header = readNpyHeader(head);
  } catch (err) {
    if (err instanceof NpyFormatError) throw new UsageError(`${path}: ${err.message}`);
    throw err;
  }
  if ('need' in header) throw new UsageError(`${path}: .npy file is truncated inside its header`);
  const expected = header.dataOffset + header.dataLength;
  if (size !== expected) {
    throw new UsageError(
      `${path}: its header announces ${header.dtype}[${header.shape.join(',')}] (${expected} bytes with the header) but the file has ${size}`,
    );
  }
  return { path, dtype: header.dtype, shape: [...header.shape], bytes: size };
}

/**
 * POST /v1/tensors of a file `openNpyFile` checked, streamed from disk by the SDK (over its own
 * socket for http and https, 429 and 503 tried again after Retry-After, the file read again from its
 * start); its answer (the ref), or the API's error.
 */
export async function uploadNpyFile(
  client: GpumeshClient,
  file: NpyFileInfo & { path: string },
): Promise<UploadedTensorDto> {
  return client.uploadNpy(await openAsBlob(file.path, { type: 'application/x-npy' }));
}

/**
 * Writes a downloaded `.npy` to `path` as it arrives: to a temporary file beside it, flushed to disk,
 * then renamed over `path`. With `ref` (`sha256:…`), the element bytes must hash to it, else nothing
 * is written and the download fails. `progress` gets a line per tenth of a large download.
 */
export async function saveNpy(
  download: NpyStream,
  path: string,
  options: { ref?: string; progress?: (line: string) => void } = {},
): Promise<NpyFileInfo & { sha256: string }> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.part`);
  const hash = createHash('sha256');
  let head = Buffer.alloc(0);
  const found: { header: NpyHeader | null } = { header: null };
  let received = 0;
  let nextReport = 0.1;
  const total = download.bytes;
  const report =
    options.progress && total !== null && total >= PROGRESS_FROM_BYTES ? options.progress : undefined;
  async function* hashed(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      received += chunk.byteLength;
      if (found.header === null) {
        head = Buffer.concat([head, chunk]);
        const read = readNpyHeader(head);
        if (!('need' in read)) {
          found.header = read;
          hash.update(head.subarray(read.dataOffset));
        }
      } else {
        hash.update(chunk);
      }
      if (report && total !== null && received / total >= nextReport) {
        report(`${path}: ${Math.floor(received / MIB)} of ${Math.floor(total / MIB)} MiB`);
        while (received / total >= nextReport) nextReport += 0.1;
      }
      yield chunk;
    }
  }
  // The temporary file is opened (and so exists) before any byte is read: a stream left to open it
  // itself could create it after a failed download's clean-up. The stream closes it; it is flushed to
  // disk before it replaces the target (Node 20's write streams have no `flush`).
  const file = await open(tmp, 'wx', 0o644);
  try {
    await pipeline(
      Readable.fromWeb(download.body as WebReadableStream<Uint8Array>),
      hashed,
      file.createWriteStream(),
    );
    const got = found.header;
    if (got === null) throw new CommandError(`the download ended inside the .npy header (${received} bytes)`);
    if (received !== got.dataOffset + got.dataLength) {
      throw new CommandError(
        `the download has ${received} bytes; its header announces ${got.dataOffset + got.dataLength}`,
      );
    }
    const sha256 = hash.digest('hex');
    if (options.ref !== undefined && `sha256:${sha256}` !== options.ref) {
      throw new CommandError(
        `the bytes received hash to sha256:${sha256}, not ${options.ref}: ${path} not written`,
      );
    }
    const written = await open(tmp, 'r');
    try {
      await written.sync();
    } finally {
      await written.close();
    }
    await rename(tmp, path);
    return { dtype: got.dtype, shape: [...got.shape], bytes: received, sha256 };
  } catch (err) {
    await rm(tmp, { force: true });
    if (err instanceof NpyFormatError)
      throw new CommandError(`the download is not a .npy file: ${err.message}`);
    throw err;
  }
}
