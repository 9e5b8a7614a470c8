// Messages between the tensor store and its writer thread (tensor-writer.ts, tensor-writer-worker.ts).

export type WriterRequest =
  /** `directIo`: full 1 MiB blocks written with O_DIRECT where the file system takes it. */
  | { readonly type: 'open'; readonly id: number; readonly path: string; readonly directIo: boolean }
  | {
      readonly type: 'write';
      readonly id: number;
      readonly buffer: ArrayBuffer;
      readonly offset: number;
      readonly length: number;
    }
  /** From here on, check the file's bytes as float32 for NaN and ±Infinity (job inputs must be finite). */
  | { readonly type: 'scan-float32'; readonly id: number }
  | { readonly type: 'finish'; readonly id: number }
  | { readonly type: 'abort'; readonly id: number };

export type WriterReply =
  /** `buffer`: a written batch's buffer, transferred back to be filled again. */
  | { readonly type: 'ok'; readonly id: number; readonly buffer?: ArrayBuffer }
  /**
   * `nonFinite`: for a scanned file, its first NaN or ±Infinity, or null when all are finite;
   * `directBytes`: how many of its bytes were written with O_DIRECT.
   */
  | {
      readonly type: 'done';
      readonly id: number;
      readonly sha256: string;
      readonly nonFinite?: NonFinite | null;
      readonly directBytes: number;
    }
  | { readonly type: 'error'; readonly id: number; readonly message: string };

/** The first element of a float32 tensor that is not a finite number. */
export interface NonFinite {
  readonly index: number;
  readonly value: number;
}
