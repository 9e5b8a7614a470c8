// The response side of JOB_PROTOCOL_ID: one offer on its own stream.
import type { JobOffer, Signed } from '@gpumesh/protocol';
import type { Connection, Stream } from '@libp2p/interface';

import { CONTROL_FRAME_MAX_BYTES, FramedStream } from '../../frames.js';
import { DEFAULT_OFFER_READ_TIMEOUT_MS } from '../constants.js';
import { CancelFrameSchema, OfferFrameSchema } from '../frames.js';
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

/**
 * The response side of JOB_PROTOCOL_ID on one stream: reads the offer, verifies it, asks `onOffer`, and
 * on acceptance runs the job, streaming progress and then the result (or an error). A bad stream only
 * ever ends that stream.
 */
export async function serveJobOffer(
  stream: Stream,
  connection: Connection,
  options: HandleJobOffersOptions,
): Promise<void> {
  const logger = options.logger ?? SILENT_LOGGER;
  const remotePeer = connection.remotePeer.toString();
  const cap = offerCap(options, remotePeer);
  const framed = new FramedStream(stream, { maxFrameBytes: cap });
  const controller = new AbortController();
  let linger: ReturnType<typeof setTimeout> | undefined;
  try {
    const { offer } = await framed.read(OfferFrameSchema, {
      timeoutMs: options.offerReadTimeoutMs ?? DEFAULT_OFFER_READ_TIMEOUT_MS,
      maxBytes: cap,
    });
    let verified: Signed<JobOffer>;
    try {
      verified = await options.verifyOffer(offer, { remotePeer });
    } catch (err) {
      const { code, reason } = rejectReason(err);
      logger.debug({ remotePeer, code }, 'job offer failed verification');
      await framed.write({ type: 'reject', reason });
      await framed.close();
      return;
    }

    let accepted = false;
    let finished = false;
    const live = (): boolean => accepted && !finished && !controller.signal.aborted;
    const progress: ProgressState = { fraction: 0 };
    const ctx: OfferContext = {
      signal: controller.signal,
      remotePeer,
      reportProgress: progressReporter(
        live,
        (frame) => void framed.write(frame).catch(() => undefined),
        progress,
      ),
    };

    const decision = await options.onOffer(verified, ctx);
    if (!decision.accept) {
      await framed.write({ type: 'reject', reason: decision.reason.slice(0, 1000) });
      await framed.close();
      return;
    }
    await framed.write({ type: 'accept' });
    accepted = true;

    // Only `cancel` (or the end of the stream) may come from the coordinator from here on.
    const watcher = framed
      .readOrEnd(CancelFrameSchema, { maxBytes: CONTROL_FRAME_MAX_BYTES })
      .then((frame) => {
        if (frame !== undefined) controller.abort(new Error(frame.reason ?? 'cancelled by coordinator'));
        else if (!finished) controller.abort(new Error('coordinator closed the stream'));
      })
      .catch((err: unknown) => {
        if (!finished) controller.abort(err);
      });

    const stopHeartbeat = startHeartbeat(options.heartbeatIntervalMs, () => {
      if (live()) framed.write({ type: 'progress', fraction: progress.fraction }).catch(() => undefined);
    });
    let result: JobRunResult | undefined;
    let failure: unknown;
    try {
      result = await decision.run();
    } catch (err) {
      failure = err;
    } finally {
      stopHeartbeat();
    }
    finished = true;
    if (framed.error === undefined) {
      if (result !== undefined && !controller.signal.aborted) {
        await framed.write({ type: 'result', outputs: result.outputs, receipt: result.receipt });
      } else {
        await framed.write(errorFrameOf(failure, controller.signal.aborted));
      }
      linger = await closeAndLinger(framed);
    }
    await watcher;
  } catch (err) {
    controller.abort(err);
    onServeFailure(err, framed, remotePeer, options, 'job stream');
  } finally {
    if (linger !== undefined) clearTimeout(linger);
  }
}
