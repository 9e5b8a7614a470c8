// Shared memory for the inputs of large tasks, reused from task to task.
import { refTensorByteLength, type JobSpec } from '@gpumesh/protocol';

/** Tasks with fewer input bytes than this decode into fresh memory (small buffers are cheap). */
export const ARENA_MIN_BYTES = 256 * 1024;

/** Byte offset of each input in an arena (8-byte aligned), and the arena size they need. */
export function arenaLayout(spec: JobSpec): { offsets: number[]; bytes: number } {
  const offsets: number[] = [];
  let bytes = 0;
  for (const t of spec.inputs) {
    offsets.push(bytes);
    bytes += Math.ceil(refTensorByteLength(t.dtype, t.shape) / 8) * 8;
  }
  return { offsets, bytes };
}

/**
 * A free list of SharedArrayBuffers. A 1024² float32 input is 4 MiB: decoded into fresh memory it costs
 * ≈ 10 ms of page faults on a VM, and posted to a worker it is copied or detached; decoded into an arena
 * whose pages are already mapped and shared with the workers it costs neither. An arena goes back to the
 * list when its task ends, whatever the outcome; the list keeps the `keep` largest.
 */
export class InputArenas {
  private readonly free: SharedArrayBuffer[] = [];

  constructor(private readonly keep: number) {}

  /** The smallest free arena of at least `bytes`, or a new one. */
  take(bytes: number): SharedArrayBuffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const size = this.free[i].byteLength;
      if (size >= bytes && (best < 0 || size < this.free[best].byteLength)) best = i;
    }
    if (best >= 0) return this.free.splice(best, 1)[0];
    return new SharedArrayBuffer(bytes);
  }

  give(arena: SharedArrayBuffer): void {
    this.free.push(arena);
    if (this.free.length > this.keep) {
      let smallest = 0;
      for (let i = 1; i < this.free.length; i++) {
        if (this.free[i].byteLength < this.free[smallest].byteLength) smallest = i;
      }
      this.free.splice(smallest, 1);
    }
  }

  /** Bytes held in free arenas (tests, stats). */
  get freeBytes(): number {
    return this.free.reduce((n, a) => n + a.byteLength, 0);
  }
}
