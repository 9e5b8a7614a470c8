import { Readable } from 'node:stream';
import { encodeNpyHeader, type DType } from '@gpumesh/protocol';

/** A `.npy` body: its header, then `data` (the element bytes) as they are read; and its length. */
export function npyStream(
  dtype: DType,
  shape: readonly number[],
  dataBytes: number,
  data: AsyncIterable<Uint8Array> | Uint8Array,
): { stream: Readable; length: number } {
  const header = encodeNpyHeader(dtype, shape);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    yield header;
    if (data instanceof Uint8Array) yield data;
    else yield* data;
  }
  return { stream: Readable.from(chunks(), { objectMode: false }), length: header.byteLength + dataBytes };
}

/** Whether an Accept header asks for JSON rather than the binary default. */
export function wantsJson(accept: string | undefined): boolean {
  return accept !== undefined && /(^|,)\s*application\/json\s*(;|,|$)/i.test(accept);
}
