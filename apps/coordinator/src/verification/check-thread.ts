// Result checks off the event loop: comparing two results of a 4096² matmul (2 × 64 MiB of floats
// whose bytes differ, as GPUs of two makes give) or scanning one for non-finite values takes tens
// to hundreds of milliseconds, which on the loop delays every request. Large checks run on one
// shared thread (check-worker.ts) with the very functions the loop would run; small ones (and
// copies whose bytes hash alike, which agree at once) stay on the loop, where they cost less than
// a message. Outputs by ref read back for a check sit in SharedArrayBuffers (TensorFiles
// `readShared`), so handing them to the thread copies nothing.
import { Worker } from 'node:worker_threads';
import { workerEntry } from '@gpumesh/compute';
import type { DecodedTensor, JobSpec, TensorWire } from '@gpumesh/protocol';
import { checkResultSanity, type Agreement, type SanityResult } from '@gpumesh/verification';

import type { CheckReply, CheckRequest, CheckTensor } from './check-messages.js';
import { compareResults, identicalResults } from './compare.js';

/** Elements (over both sides) from which a check runs on the check thread rather than the loop. */
export const OFF_LOOP_MIN_ELEMENTS = 1 << 20;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

let shared: CheckThread | undefined;

/** The process's check thread (started on first use, never keeps the process alive). */
function checkThread(): CheckThread {
  if (!shared || shared.dead) shared = new CheckThread();
  return shared;
}

class CheckThread {
  readonly worker: Worker;
  dead = false;
  private nextId = 1;
  private readonly waiting = new Map<number, (reply: CheckReply) => void>();

  constructor() {
    const { url, entry } = workerEntry(import.meta.url, 'check-worker');
    this.worker = new Worker(url, { workerData: entry ? { entry } : {} });
    this.worker.unref();
    this.worker.on('message', (msg: CheckReply) => {
      const resolve = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      resolve?.(msg);
    });
    const gone = (why: string): void => {
      this.dead = true;
      for (const [id, resolve] of this.waiting) resolve({ type: 'error', id, message: why });
      this.waiting.clear();
    };
    this.worker.on('error', (err: Error) => gone(`the result-check thread failed: ${err.message}`));
    this.worker.on('exit', (code: number) => gone(`the result-check thread exited with code ${code}`));
  }

  run(request: DistributiveOmit<CheckRequest, 'id'>): Promise<CheckReply> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.worker.postMessage({ ...request, id } as CheckRequest);
    });
  }
}

function elements(outputs: readonly CheckTensor[]): number {
  return outputs.reduce(
    (n, t) => n + (Array.isArray(t.shape) ? t.shape.reduce((m: number, d: number) => m * d, 1) : 0),
    0,
  );
}

/**
 * `compareResults` (compare.ts) without blocking the event loop: the same agreement, computed on the
 * check thread when the outputs are large and their bytes differ (on the loop if that thread failed).
 */
export async function compareResultsOffLoop(
  a: readonly CheckTensor[],
  b: readonly CheckTensor[],
  context: { spec: JobSpec },
): Promise<Agreement> {
  if (identicalResults(a, b) || elements(a) + elements(b) < OFF_LOOP_MIN_ELEMENTS) {
    return compareResults(a, b, context);
  }
  const reply = await checkThread().run({ type: 'compare', a, b, spec: context.spec });
  // a failed thread (never expected) must not change a verdict: the loop compares instead
  return reply.type === 'compared' ? reply.agreement : compareResults(a, b, context);
}

/** `checkResultSanity` (libs/verification) on the check thread when the outputs are large. */
export async function checkResultSanityOffLoop(
  spec: JobSpec,
  outputs: readonly (TensorWire | DecodedTensor)[],
): Promise<SanityResult> {
  if (elements(outputs) < OFF_LOOP_MIN_ELEMENTS) return checkResultSanity(spec, outputs);
  const reply = await checkThread().run({ type: 'sanity', outputs, spec });
  return reply.type === 'sane' ? reply.verdict : checkResultSanity(spec, outputs);
}
