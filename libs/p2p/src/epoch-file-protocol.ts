// `/gpumesh/epoch-file/1`: epoch files by the file hash posted on chain. One `get` per stream; the
// answer is a header frame (`file` with its size, or `not-found`) and the bytes in chunks. Anyone
// holding a file serves it (the coordinator from its database, agents and watchers from disk); the
// fetcher keeps the bytes only if they hash to what it asked for, so a server can withhold a file
// but never pass off another one. The hash function is the caller's (the settlement library's
// keccak256): this layer treats the file as opaque bytes.
import { EPOCH_FILE_PROTOCOL_ID, MAX_EPOCH_FILE_BYTES } from '@gpumesh/protocol';
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import type { Libp2p } from 'libp2p';
import { z } from 'zod';

import { EpochFileError, StreamError, epochFileErrorFromStream } from './errors.js';
import { CONTROL_FRAME_MAX_BYTES, FramedStream } from './frames.js';
import type { P2pLogger } from './gossip.js';
import { serveFailed, writeChunked } from './serve-stream.js';

/** File bytes travel in frames of at most this size. */
export const EPOCH_FILE_CHUNK_BYTES = 1024 * 1024;
/** Default cap of a fetched file (the protocol's own cap is MAX_EPOCH_FILE_BYTES). */
export const DEFAULT_MAX_EPOCH_FILE_BYTES = MAX_EPOCH_FILE_BYTES;
export const DEFAULT_EPOCH_FILE_TIMEOUT_MS = 60_000;
/** Time a server waits for the request frame. */
export const EPOCH_FILE_REQUEST_TIMEOUT_MS = 10_000;
/** Streams a node serves at once (per protocol): a file is small and served from memory or disk. */
export const DEFAULT_MAX_EPOCH_FILE_STREAMS = 8;

const FileHashSchema = z.string().regex(/^0x[0-9a-f]{64}$/, 'a 0x keccak256 file hash');

export const EpochFileRequestFrameSchema = z.strictObject({
  type: z.literal('get'),
  fileHash: FileHashSchema,
});

export const EpochFileHeaderFrameSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('file'),
    fileHash: FileHashSchema,
    size: z.number().int().min(1).max(MAX_EPOCH_FILE_BYTES),
  }),
  z.strictObject({ type: z.literal('not-found'), fileHash: FileHashSchema }),
  z.strictObject({ type: z.literal('error'), code: z.string().max(64), message: z.string().max(1024) }),
]);

/** Hash of a file's bytes as posted on chain (lower-case 0x hex). */
export type EpochFileHasher = (bytes: Uint8Array) => string;

// ---------------------------------------------------------------------------------------------
// Serving side
// ---------------------------------------------------------------------------------------------

export interface HandleEpochFileRequestsOptions {
  /** The bytes of the file whose hash is `fileHash`, or undefined when this node holds none. */
  readonly getFile: (
    fileHash: string,
    meta: { readonly remotePeer: string },
  ) => Promise<Uint8Array | undefined>;
  readonly maxInboundStreams?: number;
  /** A peer sent junk (a bad or oversized frame) or nothing in time: penalise it here. */
  readonly onStreamError?: (remotePeer: string, err: StreamError) => void;
  readonly logger?: P2pLogger;
}

/** Serves `EPOCH_FILE_PROTOCOL_ID`: one `get` per stream, answered by a header and the file's bytes. */
export async function handleEpochFileRequests(
  node: Libp2p,
  options: HandleEpochFileRequestsOptions,
): Promise<() => Promise<void>> {
  const logger = options.logger;
  const serve = async (stream: Stream, connection: Connection): Promise<void> => {
    const remotePeer = connection.remotePeer.toString();
    const framed = new FramedStream(stream, { maxFrameBytes: CONTROL_FRAME_MAX_BYTES });
    try {
      const request = await framed.read(EpochFileRequestFrameSchema, {
        timeoutMs: EPOCH_FILE_REQUEST_TIMEOUT_MS,
      });
      let bytes: Uint8Array | undefined;
      try {
        bytes = await options.getFile(request.fileHash, { remotePeer });
      } catch (err) {
        logger?.warn(
          { remotePeer, fileHash: request.fileHash, err: String(err) },
          'epoch file lookup failed',
        );
        await framed.write({ type: 'error', code: 'LOOKUP_FAILED', message: 'epoch file lookup failed' });
        await framed.close();
        return;
      }
      if (bytes === undefined || bytes.byteLength === 0 || bytes.byteLength > MAX_EPOCH_FILE_BYTES) {
        await framed.write({ type: 'not-found', fileHash: request.fileHash });
        await framed.close();
        return;
      }
      await framed.write({ type: 'file', fileHash: request.fileHash, size: bytes.byteLength });
      await writeChunked(framed, bytes, EPOCH_FILE_CHUNK_BYTES);
      await framed.close();
    } catch (err) {
      serveFailed(err, framed, {
        remotePeer,
        what: 'epoch file',
        logger,
        onStreamError: options.onStreamError,
      });
    }
  };
  await node.handle(
    EPOCH_FILE_PROTOCOL_ID,
    (stream, connection) => {
      void serve(stream, connection);
    },
    { maxInboundStreams: options.maxInboundStreams ?? DEFAULT_MAX_EPOCH_FILE_STREAMS },
  );
  return async () => {
    await node.unhandle(EPOCH_FILE_PROTOCOL_ID);
  };
}

// ---------------------------------------------------------------------------------------------
// Fetching side
// ---------------------------------------------------------------------------------------------

export interface FetchEpochFileOptions {
  /** keccak256 of the bytes, as the chain computes it (libs/rewards `keccak256Hex`). */
  readonly hash: EpochFileHasher;
  /** Whole-transfer deadline. */
  readonly timeoutMs?: number;
  /** Largest file accepted (an announcement's `size` is a good cap). */
  readonly maxBytes?: number;
  readonly signal?: AbortSignal;
}

/** A peer to ask: a peer id (of a connected or known peer) or a multiaddr with `/p2p/<peer id>`. */
export type EpochFilePeer = string | PeerId | Multiaddr;

function dialTarget(peer: EpochFilePeer): PeerId | Multiaddr {
  if (typeof peer !== 'string') return peer;
  return peer.startsWith('/') ? multiaddr(peer) : peerIdFromString(peer);
}

/**
 * Fetches the epoch file whose hash is `fileHash` from `peer` and checks the bytes hash to it.
 * Throws `EpochFileError` (`NOT_FOUND`, `HASH_MISMATCH`, `TOO_LARGE`, `TIMEOUT`, `DIAL_FAILED`, ...).
 */
export async function fetchEpochFile(
  node: Libp2p,
  peer: EpochFilePeer,
  fileHash: string,
  options: FetchEpochFileOptions,
): Promise<Uint8Array> {
  if (!FileHashSchema.safeParse(fileHash).success)
    throw new EpochFileError('BAD_FRAME', `not a 0x keccak256 file hash: ${fileHash}`);
  let peerId: PeerId | Multiaddr;
  try {
    peerId = dialTarget(peer);
  } catch (err) {
    throw new EpochFileError('DIAL_FAILED', `not a peer id or multiaddr: ${String(peer)}`, { cause: err });
  }
  const maxBytes = Math.min(options.maxBytes ?? DEFAULT_MAX_EPOCH_FILE_BYTES, MAX_EPOCH_FILE_BYTES);
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_EPOCH_FILE_TIMEOUT_MS);
  const { signal } = options;
  let stream: Stream;
  try {
    stream = await node.dialProtocol(peerId, EPOCH_FILE_PROTOCOL_ID, { signal });
  } catch (err) {
    if (signal?.aborted === true)
      throw new EpochFileError('CANCELLED', 'cancelled while dialing', { cause: err });
    throw new EpochFileError('DIAL_FAILED', `dial ${peerId.toString()}: ${String(err)}`, { cause: err });
  }
  const framed = new FramedStream(stream, {
    maxFrameBytes: CONTROL_FRAME_MAX_BYTES,
    maxBufferedBytes: CONTROL_FRAME_MAX_BYTES + 4 * EPOCH_FILE_CHUNK_BYTES,
  });
  const remaining = (): number => Math.max(0, deadline - Date.now());
  try {
    await framed.write({ type: 'get', fileHash });
    await framed.close();
    const header = await framed.read(EpochFileHeaderFrameSchema, { timeoutMs: remaining(), signal });
    if (header.type === 'not-found')
      throw new EpochFileError('NOT_FOUND', `epoch file ${fileHash} not held by ${peerId.toString()}`);
    if (header.type === 'error')
      throw new EpochFileError('REMOTE_ERROR', `${header.code}: ${header.message}`);
    if (header.fileHash !== fileHash)
      throw new EpochFileError('BAD_FRAME', `asked for ${fileHash}, got a header for ${header.fileHash}`);
    if (header.size > maxBytes)
      throw new EpochFileError('TOO_LARGE', `epoch file of ${header.size} bytes exceeds ${maxBytes}`);
    const bytes = new Uint8Array(header.size);
    let received = 0;
    while (received < header.size) {
      const chunk = await framed.readBytes({
        timeoutMs: remaining(),
        maxBytes: EPOCH_FILE_CHUNK_BYTES,
        signal,
      });
      if (chunk.byteLength === 0 || received + chunk.byteLength > header.size)
        throw new EpochFileError('BAD_FRAME', 'chunks do not add up to the announced size');
      bytes.set(chunk, received);
      received += chunk.byteLength;
    }
    const trailing = await framed.readBytesOrEnd({
      timeoutMs: remaining(),
      maxBytes: EPOCH_FILE_CHUNK_BYTES,
      signal,
    });
    if (trailing !== undefined) throw new EpochFileError('BAD_FRAME', 'data after the announced size');
    const actual = options.hash(bytes).toLowerCase();
    if (actual !== fileHash)
      throw new EpochFileError('HASH_MISMATCH', `epoch file hashes to ${actual}, expected ${fileHash}`);
    return bytes;
  } catch (err) {
    const failure =
      signal?.aborted === true
        ? new EpochFileError('CANCELLED', 'cancelled', { cause: err })
        : err instanceof EpochFileError
          ? err
          : err instanceof StreamError
            ? epochFileErrorFromStream(err, 'epoch file stream')
            : new EpochFileError('STREAM_RESET', `epoch file stream: ${String(err)}`, { cause: err });
    framed.abort(new StreamError('ABORTED', failure.message));
    throw failure;
  }
}

/**
 * Tries `peers` in order until one returns bytes that hash to `fileHash`; otherwise throws an
 * `EpochFileError` with the last peer's code that names every peer's failure (`NOT_FOUND` when there
 * is no peer to ask).
 */
export async function fetchEpochFileFromAny(
  node: Libp2p,
  peers: readonly EpochFilePeer[],
  fileHash: string,
  options: FetchEpochFileOptions,
): Promise<{ bytes: Uint8Array; peer: string }> {
  const failures: string[] = [];
  let code: EpochFileError['code'] = 'NOT_FOUND';
  for (const peer of peers) {
    if (options.signal?.aborted === true) break;
    try {
      return { bytes: await fetchEpochFile(node, peer, fileHash, options), peer: peer.toString() };
    } catch (err) {
      code = err instanceof EpochFileError ? err.code : 'STREAM_RESET';
      failures.push(`${peer.toString()}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new EpochFileError(
    code,
    failures.length === 0 ? `no peer to ask for epoch file ${fileHash}` : failures.join('; '),
  );
}
