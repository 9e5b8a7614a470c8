import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The pace of tensors over libp2p when P2P_TENSOR_BYTES_PER_SECOND is not set: paced where this
 * process also answers the API (role `all`, as `npm start` runs), unpaced in a worker of its own.
 */
export const DEFAULT_P2P_TENSOR_BYTES_PER_SECOND = 48 * 1024 * 1024;

/** What a burst may move before the pace holds it back. */
export const P2P_TENSOR_BURST_BYTES = 8 * 1024 * 1024;

/**
 * Bytes a second this process moves tensors over libp2p in each direction (0: unpaced): the
 * configured value, else DEFAULT_P2P_TENSOR_BYTES_PER_SECOND for role `all` and 0 for a worker.
 */
export function p2pTensorBytesPerSecond(role: string, configured: number | undefined): number {
  if (configured !== undefined) return configured;
  return role === 'all' ? DEFAULT_P2P_TENSOR_BYTES_PER_SECOND : 0;
}

/**
 * A token bucket over bytes: `bytesPerSecond` on average, at most `burstBytes` at once. Moving
 * tensors over libp2p costs the main thread 4–5 ms of CPU per MiB (noise's ChaCha20-Poly1305, yamux,
 * the collections of their buffers; docs/tensors.md): unpaced, two agents fetching 64 MiB inputs
 * held the loop at 100 % for seconds and the API's answers queued behind it. One bucket per
 * direction, shared by every stream of the process, so the pace is the process's total. Unlike
 * libs/p2p's KeyedTokenBuckets (gossip: a message over its rate is refused), a take here is never
 * refused: it is told how long to wait, and what it took past the tokens is debt the next takes wait out.
 */
export class ByteRate {
  private tokens: number;
  private last: number;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly burstBytes: number,
    now: number,
  ) {
    if (!(bytesPerSecond > 0) || !(burstBytes > 0)) throw new RangeError('rate and burst must be positive');
    this.tokens = burstBytes;
    this.last = now;
  }

  /**
   * Takes `bytes` at `now` (ms, monotonic): how long the caller waits before sending them (0: at
   * once). A take beyond the tokens goes into debt that later takes wait out too, so callers that
   * wait what they are told never pass `burstBytes + bytesPerSecond × elapsed`.
   */
  take(bytes: number, now: number): number {
    const elapsed = Math.max(0, now - this.last);
    this.last = Math.max(this.last, now);
    this.tokens = Math.min(this.burstBytes, this.tokens + (elapsed * this.bytesPerSecond) / 1000);
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.bytesPerSecond) * 1000;
  }
}

/** `chunks`, each let through once `rate` allows it (none: as they come). */
export async function* pacedChunks(
  chunks: AsyncIterable<Uint8Array>,
  rate: ByteRate | undefined,
  now: () => number = () => performance.now(),
): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    const wait = rate?.take(chunk.byteLength, now()) ?? 0;
    if (wait >= 1) await sleep(wait);
    yield chunk;
  }
}
