import { createHash } from 'node:crypto';

import {
  ARTIFACT_PROTOCOL_ID,
  MODEL_FORMATS,
  Sha256HexSchema,
  canonicalJson,
  type ModelFormat,
} from '@gpumesh/protocol';
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Libp2p } from 'libp2p';
import { z } from 'zod';

import { ArtifactError, StreamError, artifactErrorFromStream } from './errors.js';
import { CONTROL_FRAME_MAX_BYTES, FramedStream } from './frames.js';
import type { P2pLogger } from './gossip.js';
import { serveFailed, writeChunked } from './serve-stream.js';

const MIB = 1024 * 1024;

/** Weights travel in binary frames of at most this size. */
export const ARTIFACT_CHUNK_BYTES = 1 * MIB;
/** Cap of the header frame (carries `model.json`; graph models have large topologies). */
export const ARTIFACT_HEADER_MAX_BYTES = 32 * MIB;
/** Default cap of the weights an agent accepts. */
export const DEFAULT_MAX_ARTIFACT_BYTES = 512 * MIB;
export const DEFAULT_ARTIFACT_TIMEOUT_MS = 120_000;
/**
 * The slowest pace a tensor transfer's default deadline allows for beyond DEFAULT_ARTIFACT_TIMEOUT_MS
 * (a coordinator paces tensors, and shares that pace among every agent fetching at once).
 */
export const TENSOR_TRANSFER_MIN_BYTES_PER_SECOND = 4 * MIB;

/** The whole-transfer deadline of a tensor of `bytes` when the caller sets none. */
export function tensorTransferTimeoutMs(bytes: number): number {
  return DEFAULT_ARTIFACT_TIMEOUT_MS + Math.ceil((bytes / TENSOR_TRANSFER_MIN_BYTES_PER_SECOND) * 1000);
}
/** Time the server waits for the request frame. */
export const ARTIFACT_REQUEST_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_ARTIFACT_STREAMS = 32;
/** Largest binary chunk of a `put-tensor` upload (the uploader's frames). */
export const TENSOR_PUT_CHUNK_BYTES = 1 * MIB;
/** Unread tensor bytes above which an agent pauses the coordinator's stream (backpressure). */
export const TENSOR_PAUSE_ABOVE_BYTES = 4 * MIB;
/**
 * Hard cap of unread tensor bytes, what was in flight when the stream paused included (a yamux
 * window grows up to 16 MiB); as much as `fetchArtifact` buffers.
 */
export const TENSOR_MAX_BUFFERED_BYTES = 36 * MIB;
/**
 * The `error` frame code of a refused request: the peer may not fetch that artifact (on the
 * coordinator: it holds no open offer of a job that uses it). Sent whether or not the artifact exists.
 */
export const ARTIFACT_REFUSED_CODE = 'FORBIDDEN';

/**
 * Content hash of a model artifact: SHA-256 over the UTF-8 bytes of `canonicalJson(modelJson)`
 * followed by the weight bytes (in order). The coordinator names artifacts by it; agents check it.
 */
export function hashArtifact(modelJson: unknown, weights: Uint8Array | readonly Uint8Array[]): string {
  const hash = createHash('sha256').update(new TextEncoder().encode(canonicalJson(modelJson)));
  for (const chunk of weights instanceof Uint8Array ? [weights] : weights) hash.update(chunk);
  return hash.digest('hex');
}

export const ArtifactRequestFrameSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('get'), hash: Sha256HexSchema }),
  // a job input by ref: the tensor's little-endian element bytes, named by their SHA-256
  z.strictObject({ type: z.literal('get-tensor'), sha256: Sha256HexSchema }),
  // a job output by ref (agent -> coordinator): `bytes` element bytes hashing to `sha256` follow in
  // binary chunks once the server answered `ready`
  z.strictObject({
    type: z.literal('put-tensor'),
    sha256: Sha256HexSchema,
    bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  }),
]);

/** The server's answers to a `put-tensor`: `ready` (send the bytes), then `stored`; or `error`. */
export const PutTensorAnswerFrameSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready') }),
  z.strictObject({ type: z.literal('stored'), sha256: Sha256HexSchema }),
  z.strictObject({ type: z.literal('error'), code: z.string().max(64), message: z.string().max(1024) }),
]);

export const ArtifactHeaderFrameSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('artifact'),
    hash: Sha256HexSchema,
    format: z.enum(MODEL_FORMATS),
    modelJson: z.unknown(),
    weightsBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  }),
  z.strictObject({
    type: z.literal('tensor'),
    sha256: Sha256HexSchema,
    bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  }),
  z.strictObject({ type: z.literal('not-found'), hash: Sha256HexSchema }),
  z.strictObject({ type: z.literal('error'), code: z.string().max(64), message: z.string().max(1024) }),
]);

/** What a `put-tensor` announces: the element bytes' SHA-256 and length. */
export interface TensorUpload {
  readonly sha256: string;
  readonly bytes: number;
}

/** A stored tensor's element bytes as the server streams them. */
export interface TensorSource {
  readonly bytes: number;
  /** The bytes, in order; chunks of any size (re-framed to `ARTIFACT_CHUNK_BYTES`). */
  readonly chunks: AsyncIterable<Uint8Array>;
}

export interface ModelArtifact {
  readonly format: ModelFormat;
  /** The parsed `model.json` (topology + weights manifest). */
  readonly modelJson: unknown;
  /** All weight shards concatenated in manifest order. */
  readonly weights: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Coordinator side
// ---------------------------------------------------------------------------------------------

export interface HandleArtifactRequestsOptions {
  /**
   * Whether `remotePeer` may fetch `hash`. Asked before the lookup, so a refusal says nothing about
   * whether the artifact exists; refused requests get an `error` frame `ARTIFACT_REFUSED_CODE`.
   */
  readonly mayFetch: (hash: string, meta: { readonly remotePeer: string }) => boolean | Promise<boolean>;
  /** The artifact whose hash is `hash`, or undefined when unknown. */
  readonly getArtifact: (
    hash: string,
    meta: { readonly remotePeer: string },
  ) => Promise<ModelArtifact | undefined>;
  /**
   * Whether `remotePeer` may fetch the tensor whose bytes hash to `sha256` (a job input by ref).
   * Without it (or `openTensor`) every tensor request is refused.
   */
  readonly mayFetchTensor?: (
    sha256: string,
    meta: { readonly remotePeer: string },
  ) => boolean | Promise<boolean>;
  /** The tensor's bytes, streamed, or undefined when unknown. */
  readonly openTensor?: (sha256: string) => Promise<TensorSource | undefined>;
  /**
   * Whether `remotePeer` may upload `upload` (a job output by ref): asked before any byte is taken.
   * Without it (or `storeTensor`) every upload is refused.
   */
  readonly mayPutTensor?: (
    upload: TensorUpload,
    meta: { readonly remotePeer: string },
  ) => boolean | Promise<boolean>;
  /**
   * Stores an upload: consumes `chunks` (exactly `upload.bytes` bytes, checked by the protocol) and
   * throws unless they hash to `upload.sha256`; nothing may be kept then.
   */
  readonly storeTensor?: (
    upload: TensorUpload,
    chunks: AsyncIterable<Uint8Array>,
    meta: { readonly remotePeer: string },
  ) => Promise<void>;
  readonly maxInboundStreams?: number;
  readonly onStreamError?: (remotePeer: string, err: StreamError) => void;
  /** A peer asked for an artifact (or tensor) it may not fetch (and was refused): penalise it here. */
  readonly onRefused?: (remotePeer: string, hash: string) => void;
  readonly logger?: P2pLogger;
}

/** Serves `ARTIFACT_PROTOCOL_ID`: one `get` per stream, answered by a header and weight chunks. */
export async function handleArtifactRequests(
  node: Libp2p,
  options: HandleArtifactRequestsOptions,
): Promise<() => Promise<void>> {
  const logger = options.logger;
  const serve = async (stream: Stream, connection: Connection): Promise<void> => {
    const remotePeer = connection.remotePeer.toString();
    const framed = new FramedStream(stream, {
      maxFrameBytes: CONTROL_FRAME_MAX_BYTES,
      // a `put-tensor` streams chunks in: hold the uploader back past 4 MiB unread
      pauseAboveBytes: TENSOR_PAUSE_ABOVE_BYTES,
      maxBufferedBytes: TENSOR_MAX_BUFFERED_BYTES,
    });
    try {
      const request = await framed.read(ArtifactRequestFrameSchema, {
        timeoutMs: ARTIFACT_REQUEST_TIMEOUT_MS,
      });
      if (request.type === 'put-tensor') {
        await receiveTensor(framed, request, remotePeer, options);
        return;
      }
      if (request.type === 'get-tensor') {
        await serveTensor(framed, request.sha256, remotePeer, options);
        return;
      }
      let artifact: ModelArtifact | undefined;
      let allowed = false;
      try {
        allowed = await options.mayFetch(request.hash, { remotePeer });
        if (allowed) artifact = await options.getArtifact(request.hash, { remotePeer });
      } catch (err) {
        logger?.warn({ remotePeer, hash: request.hash, err: String(err) }, 'artifact lookup failed');
        await framed.write({ type: 'error', code: 'LOOKUP_FAILED', message: 'artifact lookup failed' });
        await framed.close();
        return;
      }
      if (!allowed) {
        logger?.debug({ remotePeer, hash: request.hash }, 'artifact request refused');
        await refuse(
          framed,
          'this peer may not fetch this artifact (it needs an open offer of a job that uses it)',
          () => options.onRefused?.(remotePeer, request.hash),
        );
        return;
      }
      if (artifact === undefined) {
        await framed.write({ type: 'not-found', hash: request.hash });
        await framed.close();
        return;
      }
      await framed.write({
        type: 'artifact',
        hash: request.hash,
        format: artifact.format,
        modelJson: artifact.modelJson,
        weightsBytes: artifact.weights.byteLength,
      });
      await writeChunked(framed, artifact.weights, ARTIFACT_CHUNK_BYTES);
      await framed.close();
    } catch (err) {
      serveFailed(err, framed, {
        remotePeer,
        what: 'artifact',
        logger,
        onStreamError: options.onStreamError,
      });
    }
  };
  await node.handle(
    ARTIFACT_PROTOCOL_ID,
    (stream, connection) => {
      void serve(stream, connection);
    },
    { maxInboundStreams: options.maxInboundStreams ?? DEFAULT_MAX_ARTIFACT_STREAMS },
  );
  return async () => {
    await node.unhandle(ARTIFACT_PROTOCOL_ID);
  };
}

/** Answers one `get-tensor`: refused, not found, or a `tensor` header and the bytes in chunks. */
async function serveTensor(
  framed: FramedStream,
  sha256: string,
  remotePeer: string,
  options: HandleArtifactRequestsOptions,
): Promise<void> {
  const logger = options.logger;
  let source: TensorSource | undefined;
  let allowed = false;
  try {
    allowed =
      options.mayFetchTensor !== undefined &&
      options.openTensor !== undefined &&
      (await options.mayFetchTensor(sha256, { remotePeer }));
    if (allowed && options.openTensor) source = await options.openTensor(sha256);
  } catch (err) {
    logger?.warn({ remotePeer, sha256, err: String(err) }, 'tensor lookup failed');
    await framed.write({ type: 'error', code: 'LOOKUP_FAILED', message: 'tensor lookup failed' });
    await framed.close();
    return;
  }
  if (!allowed) {
    logger?.debug({ remotePeer, sha256 }, 'tensor request refused');
    await refuse(
      framed,
      'this peer may not fetch this tensor (it needs an open offer of a job that uses it)',
      () => options.onRefused?.(remotePeer, sha256),
    );
    return;
  }
  if (source === undefined) {
    await framed.write({ type: 'not-found', hash: sha256 });
    await framed.close();
    return;
  }
  await framed.write({ type: 'tensor', sha256, bytes: source.bytes });
  let sent = 0;
  for await (const chunk of source.chunks) {
    if (sent + chunk.byteLength > source.bytes) throw new Error(`tensor ${sha256} is longer than announced`);
    await writeChunked(framed, chunk, ARTIFACT_CHUNK_BYTES);
    sent += chunk.byteLength;
  }
  if (sent !== source.bytes) throw new Error(`tensor ${sha256} is shorter than announced`);
  await framed.close();
}

/** Takes one `put-tensor`: refused, or `ready`, the bytes into `storeTensor`, then `stored`. */
async function receiveTensor(
  framed: FramedStream,
  upload: TensorUpload,
  remotePeer: string,
  options: HandleArtifactRequestsOptions,
): Promise<void> {
  const logger = options.logger;
  const { storeTensor } = options;
  let allowed = false;
  try {
    allowed =
      options.mayPutTensor !== undefined &&
      storeTensor !== undefined &&
      (await options.mayPutTensor(upload, { remotePeer }));
  } catch (err) {
    logger?.warn({ remotePeer, sha256: upload.sha256, err: String(err) }, 'tensor upload check failed');
    allowed = false;
  }
  if (!allowed || storeTensor === undefined) {
    logger?.debug({ remotePeer, sha256: upload.sha256, bytes: upload.bytes }, 'tensor upload refused');
    await refuse(
      framed,
      'this peer may not upload this tensor (it needs a running attempt, within the size limit)',
      () => options.onRefused?.(remotePeer, upload.sha256),
    );
    return;
  }
  await framed.write({ type: 'ready' });
  async function* chunks(): AsyncGenerator<Uint8Array> {
    let received = 0;
    while (received < upload.bytes) {
      const chunk = await framed.readBytes({
        idleTimeoutMs: DEFAULT_ARTIFACT_TIMEOUT_MS,
        maxBytes: TENSOR_PUT_CHUNK_BYTES,
      });
      if (chunk.byteLength === 0 || received + chunk.byteLength > upload.bytes) {
        throw new StreamError('BAD_FRAME', 'tensor chunks do not add up to the announced size');
      }
      received += chunk.byteLength;
      yield chunk;
    }
  }
  try {
    await storeTensor(upload, chunks(), { remotePeer });
  } catch (err) {
    if (err instanceof StreamError) throw err;
    logger?.debug({ remotePeer, sha256: upload.sha256, err: String(err) }, 'tensor upload not stored');
    await framed.write({ type: 'error', code: 'NOT_STORED', message: String(err).slice(0, 1024) });
    await framed.close();
    return;
  }
  await framed.write({ type: 'stored', sha256: upload.sha256 });
  await framed.close();
}

/**
 * Answers a refused request with an `error` frame `ARTIFACT_REFUSED_CODE` and closes the stream, then
 * calls `refused` (after the answer, whatever became of it: a penalty may hang up on the peer).
 */
async function refuse(framed: FramedStream, message: string, refused: () => void): Promise<void> {
  try {
    await framed.write({ type: 'error', code: ARTIFACT_REFUSED_CODE, message });
    await framed.close();
  } finally {
    refused();
  }
}

/** A stream of the artifact protocol to `peerId`; a failed dial is `DIAL_FAILED` (`CANCELLED` on abort). */
async function dialArtifacts(node: Libp2p, peerId: PeerId, signal: AbortSignal | undefined): Promise<Stream> {
  try {
    return await node.dialProtocol(peerId, ARTIFACT_PROTOCOL_ID, { signal });
  } catch (err) {
    if (isAborted(signal)) throw new ArtifactError('CANCELLED', 'cancelled while dialing', { cause: err });
    throw new ArtifactError('DIAL_FAILED', `dial ${peerId.toString()}: ${String(err)}`, { cause: err });
  }
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

// ---------------------------------------------------------------------------------------------
// Agent side
// ---------------------------------------------------------------------------------------------

export interface FetchArtifactOptions {
  /**
   * Whole-transfer deadline: DEFAULT_ARTIFACT_TIMEOUT_MS for a model, `tensorTransferTimeoutMs` of
   * its size for a tensor.
   */
  readonly timeoutMs?: number;
  /** Largest weights accepted. */
  readonly maxBytes?: number;
  readonly signal?: AbortSignal;
}

/**
 * Fetches the artifact named `hash` from `peer` and verifies `hashArtifact(modelJson, weights)`.
 * Throws `ArtifactError` (`NOT_FOUND`, `FORBIDDEN`, `HASH_MISMATCH`, `TOO_LARGE`, `TIMEOUT`, ...).
 */
export async function fetchArtifact(
  node: Libp2p,
  peer: string | PeerId,
  hash: string,
  options: FetchArtifactOptions = {},
): Promise<ModelArtifact> {
  if (!Sha256HexSchema.safeParse(hash).success)
    throw new ArtifactError('BAD_FRAME', `not a sha256 hash: ${hash}`);
  const peerId = typeof peer === 'string' ? peerIdFromString(peer) : peer;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_ARTIFACT_BYTES;
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_ARTIFACT_TIMEOUT_MS);
  const { signal } = options;
  const stream = await dialArtifacts(node, peerId, signal);
  const framed = new FramedStream(stream, {
    maxFrameBytes: ARTIFACT_HEADER_MAX_BYTES,
    maxBufferedBytes: ARTIFACT_HEADER_MAX_BYTES + 4 * ARTIFACT_CHUNK_BYTES,
  });
  const remaining = (): number => Math.max(0, deadline - Date.now());
  try {
    await framed.write({ type: 'get', hash });
    await framed.close();
    const header = await framed.read(ArtifactHeaderFrameSchema, { timeoutMs: remaining(), signal });
    if (header.type === 'not-found')
      throw new ArtifactError('NOT_FOUND', `artifact ${hash} not found on ${peerId.toString()}`);
    if (header.type === 'error') {
      throw new ArtifactError(
        header.code === ARTIFACT_REFUSED_CODE ? 'FORBIDDEN' : 'REMOTE_ERROR',
        `${header.code}: ${header.message}`,
      );
    }
    if (header.type !== 'artifact' || header.hash !== hash)
      throw new ArtifactError('BAD_FRAME', `asked for artifact ${hash}, got another header`);
    if (header.weightsBytes > maxBytes) {
      throw new ArtifactError(
        'TOO_LARGE',
        `artifact weights ${header.weightsBytes} bytes exceed ${maxBytes}`,
      );
    }
    const weights = new Uint8Array(header.weightsBytes);
    let received = 0;
    while (received < header.weightsBytes) {
      const chunk = await framed.readBytes({
        timeoutMs: remaining(),
        maxBytes: ARTIFACT_CHUNK_BYTES,
        signal,
      });
      if (chunk.byteLength === 0 || received + chunk.byteLength > header.weightsBytes) {
        throw new ArtifactError('BAD_FRAME', 'weight chunks do not add up to the announced size');
      }
      weights.set(chunk, received);
      received += chunk.byteLength;
    }
    const trailing = await framed.readBytesOrEnd({
      timeoutMs: remaining(),
      maxBytes: ARTIFACT_CHUNK_BYTES,
      signal,
    });
    if (trailing !== undefined) throw new ArtifactError('BAD_FRAME', 'data after the announced weights');
    const actual = hashArtifact(header.modelJson, weights);
    if (actual !== hash)
      throw new ArtifactError('HASH_MISMATCH', `artifact hashes to ${actual}, expected ${hash}`);
    return { format: header.format, modelJson: header.modelJson, weights };
  } catch (err) {
    const failure =
      signal?.aborted === true
        ? new ArtifactError('CANCELLED', 'cancelled', { cause: err })
        : err instanceof ArtifactError
          ? err
          : err instanceof StreamError
            ? artifactErrorFromStream(err, 'artifact stream')
            : new ArtifactError('STREAM_RESET', `artifact stream: ${String(err)}`, { cause: err });
    framed.abort(new StreamError('ABORTED', failure.message));
    throw failure;
  }
}

/** What an agent expects of a tensor input by ref. */
export interface ExpectedTensor {
  /** SHA-256 of the element bytes (the input's `sha256`). */
  readonly sha256: string;
  /** Byte length its dtype and shape imply. */
  readonly bytes: number;
}

/**
 * Fetches the element bytes of a job input by ref from `peer` (the coordinator that offered the job)
 * and checks them while they arrive: the announced length must be `expected.bytes` (at most
 * `maxBytes`), and the SHA-256 of what arrived `expected.sha256`, else nothing is returned. The bytes
 * land in one fresh, 8-byte aligned buffer. Throws `ArtifactError` (`NOT_FOUND`, `FORBIDDEN`,
 * `HASH_MISMATCH`, `TOO_LARGE`, `BAD_FRAME`, `TIMEOUT`, ...).
 */
export async function fetchTensor(
  node: Libp2p,
  peer: string | PeerId,
  expected: ExpectedTensor,
  options: FetchArtifactOptions = {},
): Promise<Uint8Array> {
  const { sha256 } = expected;
  if (!Sha256HexSchema.safeParse(sha256).success)
    throw new ArtifactError('BAD_FRAME', `not a sha256 hash: ${sha256}`);
  const peerId = typeof peer === 'string' ? peerIdFromString(peer) : peer;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_ARTIFACT_BYTES;
  if (expected.bytes > maxBytes)
    throw new ArtifactError('TOO_LARGE', `tensor of ${expected.bytes} bytes exceeds ${maxBytes}`);
  const deadline = Date.now() + (options.timeoutMs ?? tensorTransferTimeoutMs(expected.bytes));
  const { signal } = options;
  const stream = await dialArtifacts(node, peerId, signal);
  const framed = new FramedStream(stream, {
    maxFrameBytes: Math.max(CONTROL_FRAME_MAX_BYTES, ARTIFACT_CHUNK_BYTES),
    // the coordinator sends chunks faster than a busy agent may hash them: hold it back past 4 MiB
    pauseAboveBytes: TENSOR_PAUSE_ABOVE_BYTES,
    maxBufferedBytes: TENSOR_MAX_BUFFERED_BYTES,
  });
  const remaining = (): number => Math.max(0, deadline - Date.now());
  try {
    // the write end stays open until the end: libp2p pauses (backpressure) only an open stream
    await framed.write({ type: 'get-tensor', sha256 });
    const header = await framed.read(ArtifactHeaderFrameSchema, { timeoutMs: remaining(), signal });
    if (header.type === 'not-found')
      throw new ArtifactError('NOT_FOUND', `tensor ${sha256} not found on ${peerId.toString()}`);
    if (header.type === 'error') {
      throw new ArtifactError(
        header.code === ARTIFACT_REFUSED_CODE ? 'FORBIDDEN' : 'REMOTE_ERROR',
        `${header.code}: ${header.message}`,
      );
    }
    if (header.type !== 'tensor' || header.sha256 !== sha256)
      throw new ArtifactError('BAD_FRAME', `asked for tensor ${sha256}, got another header`);
    if (header.bytes !== expected.bytes) {
      throw new ArtifactError(
        header.bytes > maxBytes ? 'TOO_LARGE' : 'BAD_FRAME',
        `tensor ${sha256}: announced ${header.bytes} bytes, its dtype and shape need ${expected.bytes}`,
      );
    }
    // a fresh ArrayBuffer: typed arrays of any dtype view it without a copy
    const bytes = new Uint8Array(new ArrayBuffer(header.bytes));
    const hash = createHash('sha256');
    let received = 0;
    while (received < header.bytes) {
      const chunk = await framed.readBytes({
        timeoutMs: remaining(),
        maxBytes: ARTIFACT_CHUNK_BYTES,
        signal,
      });
      if (chunk.byteLength === 0 || received + chunk.byteLength > header.bytes) {
        throw new ArtifactError('BAD_FRAME', 'tensor chunks do not add up to the announced size');
      }
      bytes.set(chunk, received);
      hash.update(chunk);
      received += chunk.byteLength;
    }
    const trailing = await framed.readBytesOrEnd({
      timeoutMs: remaining(),
      maxBytes: ARTIFACT_CHUNK_BYTES,
      signal,
    });
    if (trailing !== undefined) throw new ArtifactError('BAD_FRAME', 'data after the announced tensor');
    await framed.close();
    const actual = hash.digest('hex');
    if (actual !== sha256)
      throw new ArtifactError('HASH_MISMATCH', `tensor bytes hash to ${actual}, expected ${sha256}`);
    return bytes;
  } catch (err) {
    const failure =
      signal?.aborted === true
        ? new ArtifactError('CANCELLED', 'cancelled', { cause: err })
        : err instanceof ArtifactError
          ? err
          : err instanceof StreamError
            ? artifactErrorFromStream(err, 'tensor stream')
            : new ArtifactError('STREAM_RESET', `tensor stream: ${String(err)}`, { cause: err });
    framed.abort(new StreamError('ABORTED', failure.message));
    throw failure;
  }
}

/**
 * Uploads a job output by ref to `peer` (the coordinator that offered the job) with `put-tensor`:
 * announces its SHA-256 and length, waits for `ready`, sends the bytes in `TENSOR_PUT_CHUNK_BYTES`
 * chunks (libp2p backpressure paces them) and resolves on `stored`. Throws `ArtifactError`
 * (`FORBIDDEN` when refused, `REMOTE_ERROR` when the coordinator did not store it, `TIMEOUT`, ...).
 */
export async function putTensor(
  node: Libp2p,
  peer: string | PeerId,
  bytes: Uint8Array,
  sha256: string,
  options: FetchArtifactOptions = {},
): Promise<void> {
  if (!Sha256HexSchema.safeParse(sha256).success)
    throw new ArtifactError('BAD_FRAME', `not a sha256 hash: ${sha256}`);
  const peerId = typeof peer === 'string' ? peerIdFromString(peer) : peer;
  const deadline = Date.now() + (options.timeoutMs ?? tensorTransferTimeoutMs(bytes.byteLength));
  const { signal } = options;
  const stream = await dialArtifacts(node, peerId, signal);
  const framed = new FramedStream(stream, { maxFrameBytes: CONTROL_FRAME_MAX_BYTES });
  const remaining = (): number => Math.max(0, deadline - Date.now());
  const answer = async (): Promise<z.output<typeof PutTensorAnswerFrameSchema>> => {
    const frame = await framed.read(PutTensorAnswerFrameSchema, { timeoutMs: remaining(), signal });
    if (frame.type === 'error') {
      throw new ArtifactError(
        frame.code === ARTIFACT_REFUSED_CODE ? 'FORBIDDEN' : 'REMOTE_ERROR',
        `${frame.code}: ${frame.message}`,
      );
    }
    return frame;
  };
  try {
    await framed.write({ type: 'put-tensor', sha256, bytes: bytes.byteLength });
    const ready = await answer();
    if (ready.type !== 'ready') throw new ArtifactError('BAD_FRAME', `expected ready, got ${ready.type}`);
    await writeChunked(framed, bytes, TENSOR_PUT_CHUNK_BYTES, { signal });
    const stored = await answer();
    if (stored.type !== 'stored' || stored.sha256 !== sha256)
      throw new ArtifactError('BAD_FRAME', `expected stored ${sha256}, got ${stored.type}`);
    await framed.close();
  } catch (err) {
    const failure =
      signal?.aborted === true
        ? new ArtifactError('CANCELLED', 'cancelled', { cause: err })
        : err instanceof ArtifactError
          ? err
          : err instanceof StreamError
            ? artifactErrorFromStream(err, 'tensor upload stream')
            : new ArtifactError('STREAM_RESET', `tensor upload stream: ${String(err)}`, { cause: err });
    framed.abort(new StreamError('ABORTED', failure.message));
    throw failure;
  }
}
