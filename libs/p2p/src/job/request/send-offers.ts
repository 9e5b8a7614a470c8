// The request side of JOB_BATCH_PROTOCOL_ID: many small offers to one provider over one stream. Each
// offer keeps its own signature (usually one Merkle-batch signature for all), its own decision, cancel,
// progress, deadline and signed receipt; what is shared is the stream, the frames and the round trips.
// A tiny job's cost is mostly per message, so this is where a busy provider's throughput comes from.
import { JOB_BATCH_PROTOCOL_ID } from '@gpumesh/protocol';
import type { Stream } from '@libp2p/interface';
import type { Libp2p } from 'libp2p';

import { JobProtocolError, StreamError } from '../../errors.js';
import { CONTROL_FRAME_MAX_BYTES, DATA_FRAME_MAX_BYTES, FramedStream } from '../../frames.js';
import { DEFAULT_ACCEPT_TIMEOUT_MS, DEFAULT_SILENCE_TIMEOUT_MS } from '../constants.js';
import { describeError } from '../describe-error.js';
import { BatchRunFrameSchema, DecisionsFrameSchema, MAX_BATCH_OFFERS, type BatchOutcome } from '../frames.js';
import type { BatchOfferItem, JobOfferOutcome, JobProgress } from '../types.js';
import { ResultStreamBudget } from './budget.js';
import { asJobError, remoteError } from './errors.js';
import { toPeerId } from './peer-id.js';
import { isNewProgress, progressOf } from './progress.js';
import { resultFrameCap, verifyJobResult } from './verify-result.js';

/**
 * Offers every item to one provider over a single `JOB_BATCH_PROTOCOL_ID` stream. Returns one
 * promise per item, settled exactly as `sendJobOffer` would settle it: `completed` (receipt verified
 * against that item's offer), `rejected`, or a `JobProtocolError`. A failure of the stream fails the
 * items still open; a bad receipt, a timeout or a cancel fails only its own item.
 *
 * The stream takes result frames up to the sum of the items' result caps (`resultFrameCap`, at most
 * DATA_FRAME_MAX_BYTES), reserved in the first item's `resultBudget` as for `sendJobOffer` (until
 * the earliest deadline); silence
 * after the decisions for the shortest `silenceTimeoutMs` fails every open item with `TIMEOUT`.
 */
export function sendJobOffers(
  node: Libp2p,
  peer: string,
  items: readonly BatchOfferItem[],
): Promise<JobOfferOutcome>[] {
  if (items.length === 0) return [];
  if (items.length > MAX_BATCH_OFFERS) {
    throw new RangeError(`a batch holds at most ${MAX_BATCH_OFFERS} offers, got ${items.length}`);
  }
  const settlers: { resolve: (o: JobOfferOutcome) => void; reject: (e: unknown) => void }[] = [];
  const promises = items.map(
    (_, i) =>
      new Promise<JobOfferOutcome>((resolve, reject) => {
        settlers[i] = { resolve, reject };
      }),
  );
  void new BatchSender(node, peer, items, settlers).run();
  return promises;
}

type ItemState = 'offered' | 'running' | 'done';

class BatchSender {
  private readonly state: ItemState[];
  private readonly timers: (ReturnType<typeof setTimeout> | undefined)[];
  private readonly unlisten: (() => void)[] = [];
  private framed: FramedStream | undefined;
  private open: number;
  /** True while a read for the provider's next frame is pending. */
  private waiting = false;

  constructor(
    private readonly node: Libp2p,
    private readonly peer: string,
    private readonly items: readonly BatchOfferItem[],
    private readonly settlers: { resolve: (o: JobOfferOutcome) => void; reject: (e: unknown) => void }[],
  ) {
    this.state = items.map(() => 'offered');
    this.timers = items.map(() => undefined);
    this.open = items.length;
  }

  private now(i: number): number {
    return (this.items[i].options.now ?? Date.now)();
  }

  private settle(i: number, outcome: JobOfferOutcome | JobProtocolError): void {
    if (this.state[i] === 'done') return;
    this.state[i] = 'done';
    this.open -= 1;
    clearTimeout(this.timers[i]);
    if (outcome instanceof JobProtocolError) this.settlers[i].reject(outcome);
    else this.settlers[i].resolve(outcome);
    if (this.open === 0) {
      for (const off of this.unlisten) off();
      // Settled by a timer or a cancel while the stream waits for more: nothing is left to wait for.
      if (this.waiting) this.framed?.abort(new StreamError('ABORTED', 'every attempt of the batch settled'));
    }
  }

  /** Settles item `i` with `error` and tells the provider to stop it. */
  private cancel(i: number, error: JobProtocolError): void {
    if (this.state[i] === 'done') return;
    if (this.framed !== undefined && this.framed.error === undefined) {
      this.framed
        .write({ type: 'cancel', index: i, reason: error.message.slice(0, 1000) })
        .catch(() => undefined);
    }
    this.settle(i, error);
  }

  async run(): Promise<void> {
    const items = this.items;
    const resultCap = Math.min(
      items.reduce((n, item) => n + resultFrameCap(item.offer.payload, item.options), 0),
      DATA_FRAME_MAX_BYTES,
    );
    const waitMs = Math.min(...items.map((item, i) => item.offer.payload.deadlineAt - this.now(i)));
    const deadlineAt = Date.now() + waitMs;
    const budget = new ResultStreamBudget(
      items.find((item) => item.options.resultBudget !== undefined)?.options.resultBudget,
      this.peer,
      resultCap,
      () => deadlineAt,
      undefined,
    );
    try {
      await budget.reserveUpfront();
    } catch (err) {
      this.failOpen(asJobError(err, undefined));
      return;
    }
    try {
      await this.runOnStream(resultCap, budget);
    } finally {
      budget.release();
    }
  }

  private async runOnStream(resultCap: number, budget: ResultStreamBudget): Promise<void> {
    const items = this.items;
    items.forEach((item, i) => {
      const signal = item.options.signal;
      if (signal === undefined) return;
      if (signal.aborted) {
        this.settle(i, new JobProtocolError('CANCELLED', 'cancelled before dialing'));
        return;
      }
      const onAbort = (): void => this.cancel(i, new JobProtocolError('CANCELLED', 'cancelled by caller'));
      signal.addEventListener('abort', onAbort, { once: true });
      this.unlisten.push(() => signal.removeEventListener('abort', onAbort));
    });
    if (this.open === 0) return;

    let stream: Stream;
    try {
      stream = await this.node.dialProtocol(toPeerId(this.peer), JOB_BATCH_PROTOCOL_ID, {
        negotiateFully: false,
      });
    } catch (err) {
      this.failOpen(
        new JobProtocolError('DIAL_FAILED', `dial ${this.peer}: ${describeError(err)}`, { cause: err }),
      );
      return;
    }
    const framed = new FramedStream(stream, {
      maxFrameBytes: resultCap,
      maxBufferedBytes: budget.upfrontBytes,
      admit: budget.admit,
    });
    this.framed = framed;
    try {
      // Items cancelled while dialing stay in the frame (indexes are positions), and are cancelled.
      const cancelledWhileDialing = items.map((_, i) => this.state[i] === 'done');
      await framed.write({ type: 'offers', offers: items.map((item) => item.offer) });
      cancelledWhileDialing.forEach((cancelled, i) => {
        if (cancelled) framed.write({ type: 'cancel', index: i }).catch(() => undefined);
      });
      const acceptTimeoutMs = Math.min(
        ...items.map((item) => item.options.acceptTimeoutMs ?? DEFAULT_ACCEPT_TIMEOUT_MS),
      );
      const { decisions } = await framed.read(DecisionsFrameSchema, {
        timeoutMs: acceptTimeoutMs,
        maxBytes: CONTROL_FRAME_MAX_BYTES,
      });
      if (decisions.length !== items.length) {
        throw new StreamError('BAD_FRAME', `${decisions.length} decisions for ${items.length} offers`);
      }
      decisions.forEach((decision, i) => {
        if (this.state[i] === 'done') return;
        if (decision.type === 'reject') {
          this.settle(i, { status: 'rejected', code: 'REJECTED', reason: decision.reason });
          return;
        }
        this.state[i] = 'running';
        const { options, offer } = items[i];
        options.onAccepted?.();
        const timeoutMs = options.resultTimeoutMs ?? Math.max(0, offer.payload.deadlineAt - this.now(i));
        this.timers[i] = setTimeout(
          () => this.cancel(i, new JobProtocolError('TIMEOUT', `no result within ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      const silenceMs = Math.min(
        ...items.map((item) => item.options.silenceTimeoutMs ?? DEFAULT_SILENCE_TIMEOUT_MS),
      );
      const lastProgress: (JobProgress | undefined)[] = items.map(() => undefined);
      while (this.open > 0) {
        this.waiting = true;
        const frame = await framed.read(BatchRunFrameSchema, {
          maxBytes: resultCap,
          idleTimeoutMs: silenceMs > 0 ? silenceMs : undefined,
        });
        this.waiting = false;
        if (frame.type === 'progress') {
          const i = frame.index;
          if (this.state[i] !== 'running') continue;
          const progress = progressOf(frame);
          if (isNewProgress(lastProgress[i], progress)) items[i].options.onProgress?.(progress);
          lastProgress[i] = progress;
          continue;
        }
        for (const outcome of frame.results) this.onOutcome(outcome);
      }
      await framed.close();
    } catch (err) {
      if (this.open === 0) return; // ended by the last timer or cancel: everything is settled
      const failure = budget.failure ?? asJobError(err, undefined);
      framed.abort(new StreamError('ABORTED', failure.message));
      this.failOpen(failure);
    }
  }

  private onOutcome(outcome: BatchOutcome): void {
    const i = outcome.index;
    if (i >= this.items.length)
      throw new StreamError('BAD_FRAME', `result for offer ${i} of ${this.items.length}`);
    // A result for an attempt already settled (cancelled, timed out) is a late duplicate: ignored.
    if (this.state[i] !== 'running') return;
    if (outcome.type === 'error') {
      this.settle(i, remoteError(outcome));
      return;
    }
    const { offer, options } = this.items[i];
    try {
      const receipt = verifyJobResult(
        offer.payload,
        { peerId: this.peer, address: options.providerAddress },
        outcome.outputs,
        outcome.receipt,
        this.now(i),
      );
      this.settle(i, { status: 'completed', outputs: outcome.outputs, receipt });
    } catch (err) {
      this.settle(i, asJobError(err, undefined));
    }
  }

  private failOpen(error: JobProtocolError): void {
    this.items.forEach((_, i) => this.settle(i, error));
  }
}
