// Reading a tensor's values into memory the caller already has. The wasm backend's own read copies its
// heap into a fresh array, and a fresh MiB-sized array costs page faults (≈ 10 ms for a 1024² float32
// result on a VM, a sixth of the matmul that made it); copied from the heap into a reused buffer it
// costs a memcpy.
import type * as tfTypes from '@tensorflow/tfjs';

import type { Tf } from './tf.js';

export type TensorArray = Float32Array | Int32Array | Uint8Array;

/** The public face of tfjs-backend-wasm's BackendWasm that custom kernels use (dataIdMap, wasm heap). */
interface WasmBackendView {
  readonly dataIdMap?: { get(dataId: object): { memoryOffset?: number } | undefined };
  readonly wasm?: { readonly HEAPU8?: Uint8Array };
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/**
 * Where `t`'s bytes live in the wasm heap (a view, valid until the next allocation there), or null when
 * the active backend is not wasm or does not expose them.
 */
export function wasmHeapView(tf: Tf, t: tfTypes.Tensor): Uint8Array | null {
  if (tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend() as unknown as WasmBackendView;
  const offset = backend.dataIdMap?.get(t.dataId)?.memoryOffset;
  const heap = backend.wasm?.HEAPU8;
  const bytes = BYTES[t.dtype];
  if (typeof offset !== 'number' || heap === undefined || bytes === undefined) return null;
  return heap.subarray(offset, offset + t.size * bytes);
}

/** Copies `t`'s values into `target` (an array of its dtype with room for `t.size` values). */
export async function readInto(tf: Tf, t: tfTypes.Tensor, target: TensorArray): Promise<void> {
  if (target.length < t.size) throw new RangeError(`readInto: ${target.length} < ${t.size} values`);
  const heap = wasmHeapView(tf, t);
  if (heap) {
    new Uint8Array(target.buffer, target.byteOffset, heap.byteLength).set(heap);
    return;
  }
  target.set((await t.data()) as TensorArray);
}
