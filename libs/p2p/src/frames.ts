import type { MessageStreamEvents, Stream } from '@libp2p/interface';
import { Uint8ArrayList } from 'uint8arraylist';
import type { z } from 'zod';

import { StreamError } from './errors.js';

const KIB = 1024;
const MIB = 1024 * KIB;

/** Cap for control frames (offer decisions, progress, cancel, requests). */
export const CONTROL_FRAME_MAX_BYTES = 1 * MIB;
/**
 * Cap for data frames (offers with inputs, results with outputs). A job spec may carry up to
 * `MAX_INPUT_BYTES_TOTAL` (64 MiB) of decoded tensors, which is ~85.4 MiB of base64 text.
 */
export const DATA_FRAME_MAX_BYTES = 96 * MIB;
/** Room a stream buffers beyond its frame cap by default (the prefix and small frames behind it). */
export const FRAME_BUFFER_SLACK_BYTES = 64 * KIB;
/**
 * A silence check that runs this much later than due (a busy event loop) looks again after pending
 * I/O was read, so this process's own lag is not taken for the peer's silence.
 */
const IDLE_CHECK_MAX_LAG_MS = 100;
/** Length prefixes longer than this many bytes are malformed (2^35 is far above any cap). */
const MAX_VARINT_BYTES = 5;

/** Unsigned LEB128 varint encoding of `n` (0 <= n < 2^35). */
export function encodeVarint(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`varint: expected a non-negative integer, got ${n}`);
  const out: number[] = [];
  let v = n;
  do {
    let byte = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) byte |= 0x80;
    out.push(byte);
  } while (v > 0);
  return Uint8Array.from(out);
}

type VarintResult = { readonly value: number; readonly bytes: number } | 'incomplete' | 'malformed';

/** Decodes a varint at the start of `buf`. */
export function decodeVarint(buf: Uint8ArrayList | Uint8Array, offset = 0): VarintResult {
  let value = 0;
  let scale = 1;
  const length = buf.byteLength - offset;
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    if (i >= length) return 'incomplete';
    const byte = buf instanceof Uint8Array ? buf[offset + i] : buf.get(offset + i);
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) {
      if (i > 0 && byte === 0) return 'malformed'; // non-minimal encoding
      return { value, bytes: i + 1 };
    }
    scale *= 128;
  }
  return 'malformed';
}

/** One length-prefixed frame: varint length, then the body. */
export function encodeFrame(body: Uint8Array): Uint8ArrayList {
  return new Uint8ArrayList(encodeVarint(body.byteLength), body);
}

export interface FramedStreamOptions {
  /** Default cap of one frame read from this stream. Defaults to `CONTROL_FRAME_MAX_BYTES`. */
  readonly maxFrameBytes?: number;
  /**
   * Most bytes buffered from the remote before they are read: a peer that floods beyond this is cut
   * off. Defaults to the largest frame cap plus `FRAME_BUFFER_SLACK_BYTES`.
   */
  readonly maxBufferedBytes?: number;
  /** Largest frame this side will write. Defaults to `DATA_FRAME_MAX_BYTES`. */
  readonly maxWriteFrameBytes?: number;
  /**
   * Called when unread data would pass `maxBufferedBytes` because a frame within `maxFrameBytes` is
   * larger than the buffer: resolves once `bufferBytes` may be buffered (the cap is raised to it),
   * rejects to fail the stream with `FRAME_TOO_LARGE`. Meanwhile the stream is paused (the remote
   * sees backpressure) and the wait does not count as silence. Without it, such data fails at once.
   */
  readonly admit?: (bufferBytes: number) => Promise<void>;
  /**
   * Backpressure for bulk transfers (many frames in a row): once more than this many bytes wait
   * unread, the stream is paused (the remote is held back) until the reader has taken them down to
   * half of it. `maxBufferedBytes` stays the hard cap for what was already in flight. Without it,
   * the stream is read as fast as the remote sends. libp2p pauses only a stream whose write end is
   * still open: close it after the transfer, not before.
   */
  readonly pauseAboveBytes?: number;
}

export interface ReadOptions {
  /** Fail with `TIMEOUT` when no complete frame arrived within this many ms (no limit when absent). */
  readonly timeoutMs?: number;
  /**
   * Fail with `TIMEOUT` when no byte at all arrived for this many ms (counted from the later of the
   * read's start and the last byte received): silence, not slowness, so a large frame arriving slowly
   * is not cut, while a peer that stops in the middle of a frame is.
   */
  readonly idleTimeoutMs?: number;
  /** Cap of this frame (at most the stream's `maxBufferedBytes`, or `maxFrameBytes` with `admit`). */
  readonly maxBytes?: number;
  /** Abort the read (and the stream) with `ABORTED`. */
  readonly signal?: AbortSignal;
}

export interface WriteOptions {
  readonly signal?: AbortSignal;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function streamErrorFrom(err: unknown): StreamError {
  if (err instanceof StreamError) return err;
  const name = err instanceof Error ? err.name : '';
  if (name === 'StreamResetError' || name === 'StreamAbortedError' || name === 'ConnectionClosedError') {
    return new StreamError('STREAM_RESET', `stream reset: ${describe(err)}`, { cause: err });
  }
  if (name === 'AbortError') return new StreamError('ABORTED', 'aborted', { cause: err });
  if (name === 'StreamStateError' || name === 'StreamClosedError') {
    return new StreamError('STREAM_CLOSED', `stream closed: ${describe(err)}`, { cause: err });
  }
  return new StreamError('STREAM_RESET', `stream failed: ${describe(err)}`, { cause: err });
}

/**
 * Length-prefixed frames over a libp2p 3 stream. JSON frames are validated against a zod schema;
 * binary frames carry raw bytes (artifact chunks). Every failure (garbage, oversize, timeout, reset)
 * aborts this stream only and surfaces as a `StreamError` with a string code; it is sticky, so any
 * later read or write fails with the same error.
 */
export class FramedStream {
  readonly stream: Stream;
  private readonly maxFrameBytes: number;
  private maxBufferedBytes: number;
  private readonly admit: ((bufferBytes: number) => Promise<void>) | undefined;
  /** True while `admit` runs: the remote is held back, which is not its silence. */
  private admitting = false;
  private readonly maxWriteFrameBytes: number;
  /** `performance.now()` when the last bytes arrived from the remote. */
  private lastByteAt = performance.now();
  private readonly buffer = new Uint8ArrayList();
  private readonly pauseAboveBytes: number | undefined;
  /** True while the stream is paused because the reader is behind (`pauseAboveBytes`). */
  private pausedForReader = false;
  private ended = false;
  private failure: StreamError | undefined;
  private wake: (() => void) | undefined;
  private readonly textDecoder = new TextDecoder('utf-8', { fatal: true });

  constructor(stream: Stream, options: FramedStreamOptions = {}) {
    this.stream = stream;
    this.maxFrameBytes = options.maxFrameBytes ?? CONTROL_FRAME_MAX_BYTES;
    this.maxBufferedBytes = options.maxBufferedBytes ?? this.maxFrameBytes + FRAME_BUFFER_SLACK_BYTES;
    this.maxWriteFrameBytes = options.maxWriteFrameBytes ?? DATA_FRAME_MAX_BYTES;
    this.admit = options.admit;
    this.pauseAboveBytes = options.pauseAboveBytes;
    if (this.pauseAboveBytes === undefined) void this.pump();
    else this.listen();
  }

  /** The error that ended this stream, if any. */
  get error(): StreamError | undefined {
    return this.failure;
  }

  /** Reads one JSON frame and validates it; `BAD_FRAME` when it does not parse or match. */
  async read<S extends z.ZodType>(schema: S, options: ReadOptions = {}): Promise<z.output<S>> {
    const value = await this.readOrEnd(schema, options);
    if (value === undefined) {
      throw this.fail(new StreamError('STREAM_CLOSED', 'stream ended before the expected frame'));
    }
    return value;
  }

  /** Like `read`, but resolves `undefined` when the remote cleanly closed its write end first. */
  async readOrEnd<S extends z.ZodType>(
    schema: S,
    options: ReadOptions = {},
  ): Promise<z.output<S> | undefined> {
    const body = await this.readBytesOrEnd(options);
    if (body === undefined) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(this.textDecoder.decode(body));
    } catch (err) {
      throw this.fail(new StreamError('BAD_FRAME', `frame is not UTF-8 JSON: ${describe(err)}`));
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const detail = parsed.error.issues
        .slice(0, 5)
        .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
        .join('; ');
      throw this.fail(new StreamError('BAD_FRAME', `unexpected frame: ${detail}`));
    }
    return parsed.data;
  }

  /** Reads one binary frame. */
  async readBytes(options: ReadOptions = {}): Promise<Uint8Array> {
    const body = await this.readBytesOrEnd(options);
    if (body === undefined) {
      throw this.fail(new StreamError('STREAM_CLOSED', 'stream ended before the expected frame'));
    }
    return body;
  }

  /** Reads one binary frame, or `undefined` on a clean end of stream between frames. */
  async readBytesOrEnd(options: ReadOptions = {}): Promise<Uint8Array | undefined> {
    const requested = options.maxBytes ?? this.maxFrameBytes;
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            this.wake?.();
          }, options.timeoutMs);
    let silent = false;
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    const idleMs = options.idleTimeoutMs;
    if (idleMs !== undefined) {
      const readStartedAt = performance.now();
      let dueAt = readStartedAt + idleMs;
      const check = (): void => {
        const now = performance.now();
        if (this.admitting) this.lastByteAt = now;
        const quietFor = now - Math.max(readStartedAt, this.lastByteAt);
        if (quietFor >= idleMs && now - dueAt > IDLE_CHECK_MAX_LAG_MS) {
          // This process was busy past the due time: bytes may be waiting unread. Look again once
          // pending I/O had its turn.
          dueAt = now;
          idleTimer = setTimeout(check, 1);
          return;
        }
        if (quietFor >= idleMs) {
          silent = true;
          this.wake?.();
          return;
        }
        dueAt = now + idleMs - quietFor;
        idleTimer = setTimeout(check, idleMs - quietFor);
      };
      idleTimer = setTimeout(check, idleMs);
    }
    const onAbort = (): void => this.wake?.();
    options.signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        if (this.failure !== undefined) throw this.failure;
        // With `admit`, the buffer grows for frames up to the frame cap; without, it bounds them.
        const frame = this.takeFrame(
          Math.min(requested, this.admit === undefined ? this.maxBufferedBytes : this.maxFrameBytes),
        );
        if (frame !== undefined) return frame;
        if (this.ended) {
          if (this.buffer.byteLength === 0) return undefined;
          throw this.fail(
            new StreamError('BAD_FRAME', `stream ended inside a frame (${this.buffer.byteLength} bytes)`),
          );
        }
        if (options.signal?.aborted === true) throw this.fail(new StreamError('ABORTED', 'read aborted'));
        if (timedOut) {
          throw this.fail(new StreamError('TIMEOUT', `no complete frame within ${options.timeoutMs} ms`));
        }
        if (silent) {
          const partial = this.buffer.byteLength;
          throw this.fail(
            new StreamError(
              'TIMEOUT',
              `no bytes for ${idleMs} ms${partial > 0 ? ` (${partial} bytes of an unfinished frame)` : ''}`,
            ),
          );
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
      }
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      if (idleTimer !== undefined) clearTimeout(idleTimer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Writes one JSON frame, waiting for the muxer to drain when its buffer is full. */
  async write(frame: unknown, options: WriteOptions = {}): Promise<void> {
    await this.writeBytes(new TextEncoder().encode(JSON.stringify(frame)), options);
  }

  /** Writes one binary frame. */
  async writeBytes(body: Uint8Array, options: WriteOptions = {}): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (body.byteLength > this.maxWriteFrameBytes) {
      throw new StreamError(
        'FRAME_TOO_LARGE',
        `refusing to write a ${body.byteLength}-byte frame (cap ${this.maxWriteFrameBytes})`,
      );
    }
    try {
      if (!this.stream.send(encodeFrame(body))) await this.stream.onDrain({ signal: options.signal });
    } catch (err) {
      throw this.fail(streamErrorFrom(err));
    }
  }

  /** Closes the write end gracefully (the remote sees a clean end of stream). */
  async close(): Promise<void> {
    if (this.failure !== undefined) return;
    try {
      await this.stream.close();
    } catch (err) {
      this.fail(streamErrorFrom(err));
    }
  }

  /** Aborts the stream (the remote sees a reset) and records `err` as its failure. */
  abort(err: StreamError): StreamError {
    return this.fail(err);
  }

  private fail(err: StreamError): StreamError {
    if (this.failure !== undefined) return this.failure;
    this.failure = err;
    this.buffer.consume(this.buffer.byteLength);
    try {
      this.stream.abort(err);
    } catch {
      // already closed: nothing left to abort
    }
    this.wake?.();
    return err;
  }

  private takeFrame(maxBytes: number): Uint8Array | undefined {
    if (this.buffer.byteLength === 0) return undefined;
    const prefix = decodeVarint(this.buffer);
    if (prefix === 'incomplete') return undefined;
    if (prefix === 'malformed') throw this.fail(new StreamError('BAD_FRAME', 'malformed length prefix'));
    if (prefix.value > maxBytes) {
      throw this.fail(
        new StreamError('FRAME_TOO_LARGE', `frame of ${prefix.value} bytes exceeds cap ${maxBytes}`),
      );
    }
    const end = prefix.bytes + prefix.value;
    if (this.buffer.byteLength < end) return undefined;
    const body = this.buffer.subarray(prefix.bytes, end);
    this.buffer.consume(end);
    if (
      this.pausedForReader &&
      this.failure === undefined &&
      this.buffer.byteLength <= (this.pauseAboveBytes ?? 0) / 2
    ) {
      this.pausedForReader = false;
      this.lastByteAt = performance.now(); // the pause was this side's doing, not the remote's silence
      try {
        this.stream.resume();
      } catch {
        // the stream is ending: nothing left to resume
      }
    }
    return body;
  }

  /**
   * The buffer passed its cap: finds the unfinished frame behind the complete ones and, when it is
   * within the frame cap, asks `admit` for room for it (the stream paused meanwhile). False when the
   * stream failed.
   */
  private async admitMore(): Promise<boolean> {
    const overflow = (): false => {
      this.fail(
        new StreamError(
          'FRAME_TOO_LARGE',
          `peer sent ${this.buffer.byteLength} unread bytes (cap ${this.maxBufferedBytes})`,
        ),
      );
      return false;
    };
    if (this.admit === undefined) return overflow();
    let offset = 0;
    let needed = this.buffer.byteLength + FRAME_BUFFER_SLACK_BYTES;
    for (;;) {
      const prefix = decodeVarint(this.buffer, offset);
      if (prefix === 'incomplete') break;
      if (prefix === 'malformed') {
        this.fail(new StreamError('BAD_FRAME', 'malformed length prefix'));
        return false;
      }
      if (prefix.value > this.maxFrameBytes) {
        this.fail(
          new StreamError(
            'FRAME_TOO_LARGE',
            `frame of ${prefix.value} bytes exceeds cap ${this.maxFrameBytes}`,
          ),
        );
        return false;
      }
      const end = offset + prefix.bytes + prefix.value;
      if (end > this.buffer.byteLength) {
        needed = end + FRAME_BUFFER_SLACK_BYTES;
        break;
      }
      offset = end;
    }
    if (needed > this.maxFrameBytes + 2 * FRAME_BUFFER_SLACK_BYTES) return overflow();
    this.admitting = true;
    this.stream.pause();
    try {
      await this.admit(needed);
    } catch {
      return overflow();
    } finally {
      this.admitting = false;
      this.lastByteAt = performance.now();
      if (this.failure === undefined) this.stream.resume();
    }
    if (this.failure !== undefined) return false;
    this.maxBufferedBytes = Math.max(this.maxBufferedBytes, needed);
    return true;
  }

  /**
   * What `pump` does, for streams with `pauseAboveBytes`, through the stream's events: libp2p's
   * async iterator ends at the remote's close even while the stream is paused with bytes still
   * buffered, whereas `end` comes only once every byte was delivered.
   */
  private listen(): void {
    const stream = this.stream;
    const onMessage = (evt: MessageStreamEvents['message']): void => {
      if (this.failure !== undefined) return;
      this.lastByteAt = performance.now();
      this.buffer.append(evt.data);
      if (this.buffer.byteLength > this.maxBufferedBytes) {
        this.fail(
          new StreamError(
            'FRAME_TOO_LARGE',
            `peer sent ${this.buffer.byteLength} unread bytes (cap ${this.maxBufferedBytes})`,
          ),
        );
        return;
      }
      if (!this.pausedForReader && this.buffer.byteLength > (this.pauseAboveBytes ?? Infinity)) {
        try {
          stream.pause();
          this.pausedForReader = true;
        } catch {
          // libp2p pauses only a stream whose ends are open: this one is read as it comes
        }
      }
      this.wake?.();
    };
    const stop = (): void => {
      stream.removeEventListener('message', onMessage);
      stream.removeEventListener('end', onEnd);
      stream.removeEventListener('close', onClose);
      this.wake?.();
    };
    const onEnd = (): void => {
      this.ended = true;
      stop();
    };
    const onClose = (evt: MessageStreamEvents['close']): void => {
      if (evt.error !== undefined && this.failure === undefined) this.failure = streamErrorFrom(evt.error);
      else this.ended = true;
      stop();
    };
    stream.addEventListener('message', onMessage);
    stream.addEventListener('end', onEnd);
    stream.addEventListener('close', onClose);
  }

  private async pump(): Promise<void> {
    try {
      for await (const chunk of this.stream) {
        if (this.failure !== undefined) return;
        this.lastByteAt = performance.now();
        this.buffer.append(chunk);
        if (this.buffer.byteLength > this.maxBufferedBytes && !(await this.admitMore())) return;
        this.wake?.();
      }
      this.ended = true;
    } catch (err) {
      if (this.failure === undefined) this.failure = streamErrorFrom(err);
    }
    this.wake?.();
  }
}
