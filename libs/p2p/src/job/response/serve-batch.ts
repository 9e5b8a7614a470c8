// The response side of JOB_BATCH_PROTOCOL_ID: many offers from one coordinator on one stream.
import type { JobOffer, ResultReceipt, ResultTensor, Signed } from '@gpumesh/protocol';
import type { Connection, Stream } from '@libp2p/interface';

import { CONTROL_FRAME_MAX_BYTES, FramedStream } from '../../frames.js';
import { DEFAULT_OFFER_READ_TIMEOUT_MS } from '../constants.js';
import { BatchCancelFrameSchema, OffersFrameSchema, type ErrorFrame } from '../frames.js';
import type { HandleJobOffersOptions, JobRunResult, OfferContext } from '../types.js';
import { progressReporter, startHeartbeat, type ProgressState } from './progress.js';
import {
  SILENT_LOGGER,
  closeAndLinger,
  errorFrameOf,
  offerCap,
  onServeFailure,
  rejectReason,
} from './serve-common.js';

/** What the agent reports for one attempt of a batch (the shape `BatchOutcomeSchema` reads). */
type OutgoingOutcome =
  | { type: 'result'; index: number; outputs: ResultTensor[]; receipt: Signed<ResultReceipt> }
  | (ErrorFrame & { index: number });

/** Results frames are cut at about this many bytes of outputs (one result may still be larger). */
const RESULTS_FRAME_TARGET_BYTES = 8 * 1024 * 1024;

/**
 * The agent's side of `JOB_BATCH_PROTOCOL_ID`: each offer is verified and decided as on the single
 * protocol (same `verifyOffer`, `onOffer`, per-offer signal and progress), all decisions go back in one
 * frame, and results that finish in the same turn of the event loop share a frame.
 */
export async function serveJobBatch(
  stream: Stream,
  connection: Connection,
  options: HandleJobOffersOptions,
): Promise<void> {
  const logger = options.logger ?? SILENT_LOGGER;
  const remotePeer = connection.remotePeer.toString();
  const cap = offerCap(options, remotePeer);
  const framed = new FramedStream(stream, { maxFrameBytes: cap });
  const controllers: AbortController[] = [];
  let linger: ReturnType<typeof setTimeout> | undefined;
  try {
    const { offers } = await framed.read(OffersFrameSchema, {
      timeoutMs: options.offerReadTimeoutMs ?? DEFAULT_OFFER_READ_TIMEOUT_MS,
      maxBytes: cap,
    });
    const finished = offers.map(() => false);
    const accepted = offers.map(() => false);
    const progress: ProgressState[] = offers.map(() => ({ fraction: 0 }));
    const decisions: ({ type: 'accept' } | { type: 'reject'; reason: string })[] = [];
    const runs: ((() => Promise<JobRunResult>) | undefined)[] = [];
    for (const [index, offer] of offers.entries()) {
      const controller = new AbortController();
      controllers.push(controller);
      let verified: Signed<JobOffer>;
      try {
        verified = await options.verifyOffer(offer, { remotePeer });
      } catch (err) {
        const { code, reason } = rejectReason(err);
        logger.debug({ remotePeer, code, index }, 'job offer failed verification');
        decisions.push({ type: 'reject', reason });
        runs.push(undefined);
        continue;
      }
      const ctx: OfferContext = {
        signal: controller.signal,
        remotePeer,
        reportProgress: progressReporter(
          () => accepted[index] && !finished[index] && !controller.signal.aborted,
          (frame) => void framed.write({ ...frame, index }).catch(() => undefined),
          progress[index],
        ),
      };
      const decision = await options.onOffer(verified, ctx);
      if (decision.accept) {
        decisions.push({ type: 'accept' });
        runs.push(decision.run);
      } else {
        decisions.push({ type: 'reject', reason: decision.reason.slice(0, 1000) });
        runs.push(undefined);
      }
    }
    await framed.write({ type: 'decisions', decisions });
    runs.forEach((run, i) => (accepted[i] = run !== undefined));

    // Only `cancel` frames (or the end of the stream) come from the coordinator from here on.
    const allFinished = (): boolean => finished.every((done, i) => done || !accepted[i]);
    const watcher = (async (): Promise<void> => {
      for (;;) {
        const frame = await framed.readOrEnd(BatchCancelFrameSchema, { maxBytes: CONTROL_FRAME_MAX_BYTES });
        if (frame === undefined) break;
        controllers[frame.index]?.abort(new Error(frame.reason ?? 'cancelled by coordinator'));
      }
      if (!allFinished()) {
        for (const c of controllers) c.abort(new Error('coordinator closed the stream'));
      }
    })().catch((err: unknown) => {
      for (const c of controllers) c.abort(err);
    });

    // Outcomes of one turn go out in one frame (cut at RESULTS_FRAME_TARGET_BYTES).
    let outbox: OutgoingOutcome[] = [];
    let flushing: Promise<void> | undefined;
    const flush = async (): Promise<void> => {
      await new Promise((resolve) => setImmediate(resolve));
      const ready = outbox;
      outbox = [];
      flushing = undefined;
      let frame: OutgoingOutcome[] = [];
      let bytes = 0;
      for (const outcome of ready) {
        const size =
          outcome.type === 'result'
            ? outcome.outputs.reduce((n, t) => n + ('data' in t ? t.data.length : 0), 0)
            : 0;
        if (frame.length > 0 && bytes + size > RESULTS_FRAME_TARGET_BYTES) {
          await framed.write({ type: 'results', results: frame });
          frame = [];
          bytes = 0;
        }
        frame.push(outcome);
        bytes += size;
      }
      if (frame.length > 0) await framed.write({ type: 'results', results: frame });
    };
    // One heartbeat per stream keeps the coordinator's silence timer of the whole stream at bay.
    const stopHeartbeat = startHeartbeat(options.heartbeatIntervalMs, () => {
      const index = runs.findIndex(
        (run, i) => run !== undefined && !finished[i] && !controllers[i].signal.aborted,
      );
      if (index < 0 || framed.error !== undefined) return;
      framed.write({ type: 'progress', index, fraction: progress[index].fraction }).catch(() => undefined);
    });
    const sent: Promise<void>[] = [];
    const report = (outcome: OutgoingOutcome): void => {
      if (framed.error !== undefined) return;
      outbox.push(outcome);
      flushing ??= flush();
      sent.push(flushing);
    };
    await Promise.all(
      runs.map(async (run, index) => {
        if (run === undefined) return;
        const signal = controllers[index].signal;
        let result: JobRunResult | undefined;
        let failure: unknown;
        try {
          result = await run();
        } catch (err) {
          failure = err;
        }
        finished[index] = true;
        if (result !== undefined && !signal.aborted) {
          report({ type: 'result', index, outputs: result.outputs, receipt: result.receipt });
        } else {
          report({ ...errorFrameOf(failure, signal.aborted), index });
        }
      }),
    );
    stopHeartbeat();
    await Promise.all(sent);
    if (framed.error === undefined) linger = await closeAndLinger(framed);
    await watcher;
  } catch (err) {
    for (const c of controllers) c.abort(err);
    onServeFailure(err, framed, remotePeer, options, 'job batch stream');
  } finally {
    if (linger !== undefined) clearTimeout(linger);
  }
}
