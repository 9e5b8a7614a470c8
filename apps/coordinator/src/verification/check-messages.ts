// Messages between the coordinator and its result-check thread (check-thread.ts, check-worker.ts).
import type { DecodedTensor, JobSpec, TensorRef, TensorWire } from '@gpumesh/protocol';
import type { Agreement, SanityResult } from '@gpumesh/verification';

/** An output as the check thread gets it: inline, decoded (its values over a SharedArrayBuffer), or by ref. */
export type CheckTensor = TensorWire | DecodedTensor | TensorRef;

export type CheckRequest =
  | {
      readonly type: 'compare';
      readonly id: number;
      readonly a: readonly CheckTensor[];
      readonly b: readonly CheckTensor[];
      readonly spec: JobSpec;
    }
  | {
      readonly type: 'sanity';
      readonly id: number;
      readonly outputs: readonly (TensorWire | DecodedTensor)[];
      readonly spec: JobSpec;
    };

export type CheckReply =
  | { readonly type: 'compared'; readonly id: number; readonly agreement: Agreement }
  | { readonly type: 'sane'; readonly id: number; readonly verdict: SanityResult }
  | { readonly type: 'error'; readonly id: number; readonly message: string };
