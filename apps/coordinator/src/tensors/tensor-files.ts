import { randomUUID } from 'node:crypto';
import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { BYTES_PER_ELEMENT, NpyFormatError, readNpyHeader, type DType } from '@gpumesh/protocol';
import { Float32FiniteScan } from './float32-scan.js';
import type { NonFinite } from './tensor-writer-messages.js';
import { TensorFileWriter } from './tensor-writer.js';

/** What an upload says about the tensor before its data: parsed from the `.npy` header, or given. */
export type TensorLayout = { readonly dtype: DType; readonly shape: readonly number[] };

/** How the body of an upload is framed. */
export type UploadFraming = { readonly kind: 'npy' } | ({ readonly kind: 'raw' } & TensorLayout);

/** A tensor written to the store: its layout and the SHA-256 of its element bytes. */
export interface StoredTensor extends TensorLayout {
  readonly sha256: string;
  readonly bytes: number;
  /** float32: whether every element is a finite number (checked as it was written); else null. */
  readonly finite: boolean | null;
}

/**
 * Puts a finished upload's file under its hash (or drops it when those bytes are stored already, and
 * marks the stored file as just written). Called by the `record` callback of `write` and
 * `writeExpected`, inside whatever makes the bytes referenced (a database transaction holding the
 * hash's file lock), so the file cannot be deleted between being placed and being referenced.
 */
export type PlaceFile = () => Promise<void>;

/** The `record` of a `write` nothing references (tests, tools): places the file, returns what was stored. */
export async function placeOnly(stored: StoredTensor, place: PlaceFile): Promise<StoredTensor> {
  await place();
  return stored;
}

/** A stored tensor file as the retention sweep sees it. */
export interface StoredFile {
  readonly sha256: string;
  readonly bytes: number;
  readonly modifiedAt: Date;
}

/** Why an upload was refused; `code` tells the service which HTTP error it is. */
export class TensorUploadError extends Error {
  constructor(
    readonly code: 'BAD_TENSOR' | 'TOO_LARGE',
    message: string,
  ) {
    super(message);
    this.name = 'TensorUploadError';
  }
}

const TEMP_SUFFIX = '.tmp';
/** Bytes per read of `readShared` (one thread-pool request each). */
const READ_BATCH_BYTES = 8 * 1024 * 1024;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * The content-addressed files of uploaded tensors: `<dir>/<sha256>` holds a tensor's little-endian
 * element bytes (no header). An upload is written to a temporary file while it is hashed, synced,
 * then renamed into place, so a file under its hash is always whole; temporaries left by a crash are
 * removed by `init`.
 */
export class TensorFiles {
  /**
   * `directIo` (TENSOR_DIRECT_IO, default true): an upload's full 1 MiB blocks are written with
   * O_DIRECT where the file system takes it, past the page cache (tensor-writer-worker.ts): on the
   * bench VM 256 MiB uploads 1.6–2.9× faster, their first download (from the disk) 0.26–0.79× as
   * fast as one from the page cache (docs/tensors.md). A job output
   * (`writeExpected`) still goes through the page cache: its developer is about to download it.
   */
  constructor(
    readonly dir: string,
    private readonly options: { directIo: boolean } = { directIo: true },
  ) {}

  /** Creates the directory and removes temporaries an interrupted upload left behind. */
  async init(): Promise<number> {
    await mkdir(this.dir, { recursive: true });
    let removed = 0;
    for (const name of await readdir(this.dir)) {
      if (name.endsWith(TEMP_SUFFIX)) {
        await unlink(join(this.dir, name)).catch(() => undefined);
        removed++;
      }
    }
    return removed;
  }

  pathOf(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new Error(`not a sha256: ${sha256.slice(0, 80)}`);
    return join(this.dir, sha256);
  }

  async exists(sha256: string): Promise<boolean> {
    return stat(this.pathOf(sha256)).then(
      () => true,
      () => false,
    );
  }

  /** The element bytes of a stored tensor, streamed. */
  openRead(sha256: string): ReadStream {
    return createReadStream(this.pathOf(sha256), { highWaterMark: 1024 * 1024 });
  }

  /** The element bytes of a stored tensor, whole. */
  read(sha256: string): Promise<Buffer> {
    return readFile(this.pathOf(sha256));
  }

  /**
   * The element bytes of a stored tensor, whole, in a SharedArrayBuffer (so the result-check thread
   * reads them without a copy); undefined when the file is gone or not `bytes` long.
   */
  async readShared(sha256: string, bytes: number): Promise<Uint8Array | undefined> {
    const file = await open(this.pathOf(sha256), 'r').catch(() => undefined);
    if (file === undefined) return undefined;
    try {
      if ((await file.stat()).size !== bytes) return undefined;
      const data = new Uint8Array(new SharedArrayBuffer(bytes));
      for (let offset = 0; offset < bytes;) {
        const { bytesRead } = await file.read(
          data,
          offset,
          Math.min(READ_BATCH_BYTES, bytes - offset),
          offset,
        );
        if (bytesRead === 0) return undefined;
        offset += bytesRead;
      }
      return data;
    } finally {
      await file.close();
    }
  }

  /** Byte length of a stored tensor, or undefined when it is not stored. */
  async size(sha256: string): Promise<number | undefined> {
    return stat(this.pathOf(sha256)).then(
      (s) => s.size,
      () => undefined,
    );
  }

  /**
   * Where the first NaN or ±Infinity of a stored float32 tensor is, or null when every element is
   * finite; read in a stream (≈ 50 ms per 64 MiB from the page cache). Throws when the file is gone.
   */
  async firstNonFiniteFloat32(sha256: string): Promise<NonFinite | null> {
    const scan = new Float32FiniteScan();
    for await (const chunk of this.openRead(sha256) as AsyncIterable<Buffer>) {
      const found = scan.update(chunk);
      if (found) return found;
    }
    return scan.result();
  }

  /**
   * Writes one upload: reads `source` chunk by chunk, parses the `.npy` header (or takes the given
   * layout), hashes and writes the element bytes, and refuses anything over `maxBytes` as soon as its
   * header (or layout) says so. Throws `TensorUploadError`; nothing is left behind on failure. Once
   * the bytes are whole, `record` is called with them and a function that places the file (see
   * `PlaceFile`); what it returns is returned.
   */
  async write<R>(
    source: AsyncIterable<Uint8Array>,
    framing: UploadFraming,
    maxBytes: number,
    record: (stored: StoredTensor, place: PlaceFile) => Promise<R>,
  ): Promise<R> {
    await mkdir(this.dir, { recursive: true });
    const temp = join(this.dir, `${randomUUID()}${TEMP_SUFFIX}`);
    const file = new TensorFileWriter(temp, this.options);
    let finished = false;
    try {
      const stored = await this.copy(source, framing, maxBytes, file);
      finished = true;
      return await record(stored, () => this.place(temp, stored.sha256));
    } catch (err) {
      if (!finished) await file.abort();
      await unlink(temp).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Writes the element bytes of a tensor whose SHA-256 and length are known beforehand (a job output
   * a provider uploads): refused (`BAD_TENSOR`) unless exactly `bytes` arrive and hash to `sha256`.
   * Already stored: the bytes are still read and checked, then dropped. Nothing is left on failure.
   * `record` places the file (see `PlaceFile`) where the upload is recorded.
   */
  async writeExpected(
    source: AsyncIterable<Uint8Array>,
    sha256: string,
    bytes: number,
    record: (place: PlaceFile) => Promise<void>,
  ): Promise<void> {
    this.pathOf(sha256); // a bad hash throws before any byte is read
    await mkdir(this.dir, { recursive: true });
    const temp = join(this.dir, `${randomUUID()}${TEMP_SUFFIX}`);
    const file = new TensorFileWriter(temp, { directIo: false });
    let finished = false;
    try {
      let written = 0;
      for await (const chunk of source) {
        written += chunk.byteLength;
        if (written > bytes)
          throw new TensorUploadError('BAD_TENSOR', `more than the announced ${bytes} bytes`);
        await file.append(chunk);
      }
      if (written !== bytes)
        throw new TensorUploadError('BAD_TENSOR', `${written} bytes arrived, ${bytes} were announced`);
      const { sha256: actual } = await file.finish();
      finished = true;
      if (actual !== sha256)
        throw new TensorUploadError('BAD_TENSOR', `the bytes hash to ${actual}, ${sha256} was announced`);
      await record(() => this.place(temp, sha256));
    } catch (err) {
      if (!finished) await file.abort();
      await unlink(temp).catch(() => undefined);
      throw err;
    }
  }

  /**
   * The finished temporary `temp` under its hash, or dropped when that hash is stored already (whose
   * modification time is then renewed: the retention sweep reads it as "last written").
   */
  private async place(temp: string, sha256: string): Promise<void> {
    const target = this.pathOf(sha256);
    if (await this.exists(sha256)) {
      await unlink(temp);
      const now = new Date();
      await utimes(target, now, now);
    } else {
      await rename(temp, target);
    }
  }

  /** The stored files (not temporaries) with their size and last write. */
  async list(): Promise<StoredFile[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const files = await Promise.all(
      names
        .filter((name) => SHA256_HEX.test(name))
        .map(async (name) => {
          const s = await stat(join(this.dir, name)).catch(() => undefined);
          return s ? { sha256: name, bytes: s.size, modifiedAt: s.mtime } : undefined;
        }),
    );
    return files.filter((f): f is StoredFile => f !== undefined);
  }

  /** When the file of `sha256` was last written (placed, or the same bytes stored again); undefined: none. */
  async modifiedAt(sha256: string): Promise<Date | undefined> {
    return stat(this.pathOf(sha256)).then(
      (s) => s.mtime,
      () => undefined,
    );
  }

  /** Deletes the file of `sha256`; resolves its size, or undefined when there was none. */
  async remove(sha256: string): Promise<number | undefined> {
    const path = this.pathOf(sha256);
    const size = await this.size(sha256);
    if (size === undefined) return undefined;
    return unlink(path).then(
      () => size,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      },
    );
  }

  /**
   * Deletes temporaries not written to since `before` (an upload that stopped without a crash of
   * this process, or a crash of another process sharing the directory); resolves how many.
   */
  async removeStaleTemporaries(before: Date): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!name.endsWith(TEMP_SUFFIX)) continue;
      const path = join(this.dir, name);
      const s = await stat(path).catch(() => undefined);
      if (s && s.mtime < before) {
        await unlink(path).catch(() => undefined);
        removed++;
      }
    }
    return removed;
  }

  private async copy(
    source: AsyncIterable<Uint8Array>,
    framing: UploadFraming,
    maxBytes: number,
    file: TensorFileWriter,
  ): Promise<StoredTensor> {
    let layout: TensorLayout | null = framing.kind === 'raw' ? framing : null;
    let expected = layout ? checkedLength(layout, maxBytes) : -1;
    let prefix: Buffer | null = framing.kind === 'npy' ? Buffer.alloc(0) : null;
    if (layout?.dtype === 'float32') file.scanFloat32();
    let written = 0;
    for await (const chunk of source) {
      let data: Uint8Array = chunk;
      if (prefix !== null) {
        prefix = Buffer.concat([prefix, chunk]);
        const header = parseHeader(prefix);
        if ('need' in header) continue;
        layout = header;
        expected = checkedLength(header, maxBytes);
        if (header.dtype === 'float32') file.scanFloat32();
        data = prefix.subarray(header.dataOffset);
        prefix = null;
      }
      if (data.byteLength === 0) continue;
      if (written + data.byteLength > expected) {
        throw new TensorUploadError(
          'BAD_TENSOR',
          `body has more data than ${describe(layout)} holds (${expected} bytes)`,
        );
      }
      if (layout?.dtype === 'bool' && data.some((v) => v > 1)) {
        throw new TensorUploadError('BAD_TENSOR', 'bool tensor: every byte must be 0 or 1');
      }
      written += data.byteLength;
      // hashed and written by the writer thread, off the event loop, in 1 MiB batches
      await file.append(data);
    }
    if (layout === null) {
      throw new TensorUploadError('BAD_TENSOR', 'body ended inside the .npy header');
    }
    if (written !== expected) {
      throw new TensorUploadError(
        'BAD_TENSOR',
        `body has ${written} bytes of data; ${describe(layout)} needs ${expected}`,
      );
    }
    const { sha256, nonFinite } = await file.finish();
    return {
      dtype: layout.dtype,
      shape: [...layout.shape],
      sha256,
      bytes: written,
      finite: layout.dtype === 'float32' ? nonFinite === null : null,
    };
  }
}

function parseHeader(prefix: Buffer): ReturnType<typeof readNpyHeader> {
  try {
    return readNpyHeader(prefix);
  } catch (err) {
    if (err instanceof NpyFormatError) throw new TensorUploadError('BAD_TENSOR', err.message);
    throw err;
  }
}

function describe(layout: TensorLayout | null): string {
  return layout ? `${layout.dtype}[${layout.shape.join(',')}]` : 'the tensor';
}

/** The data length `layout` implies, refused (TOO_LARGE) over `maxBytes`. */
function checkedLength(layout: TensorLayout, maxBytes: number): number {
  // Not protocol's tensorByteLength: that one stops counting at the inline-tensor cap (16 MiB).
  let bytes = BYTES_PER_ELEMENT[layout.dtype];
  for (const d of layout.shape) {
    bytes *= d;
    if (bytes > maxBytes) break;
  }
  if (bytes > maxBytes) {
    throw new TensorUploadError(
      'TOO_LARGE',
      `${describe(layout)} is ${'more than ' + maxBytes} bytes; the largest tensor this coordinator takes is ${maxBytes} bytes (MAX_TENSOR_UPLOAD_BYTES)`,
    );
  }
  return bytes;
}
