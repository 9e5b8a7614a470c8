// Messages between the tensor store and its writer thread (tensor-writer.ts, tensor-writer-worker.ts).

export type WriterRequest =
  | { readonly type: 'open'; readonly id: number; readonly path: string }
  | {
      readonly type: 'write';
      readonly id: number;
      readonly buffer: ArrayBuffer;
      readonly offset: number;
      readonly length: number;
    }
  | { readonly type: 'finish'; readonly id: number }
  | { readonly type: 'abort'; readonly id: number };

export type WriterReply =
  /** `buffer`: a written batch's buffer, transferred back to be filled again. */
  | { readonly type: 'ok'; readonly id: number; readonly buffer?: ArrayBuffer }
  | { readonly type: 'done'; readonly id: number; readonly sha256: string }
  | { readonly type: 'error'; readonly id: number; readonly message: string };
