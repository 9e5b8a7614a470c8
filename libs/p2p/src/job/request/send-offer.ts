// The request side of JOB_PROTOCOL_ID: one offer on its own stream.
import { JOB_PROTOCOL_ID, type JobOffer, type Signed } from '@gpumesh/protocol';
import type { PeerId, Stream } from '@libp2p/interface';
import type { Libp2p } from 'libp2p';

import { JobProtocolError, StreamError } from '../../errors.js';
import { CONTROL_FRAME_MAX_BYTES, FramedStream } from '../../frames.js';
import { DEFAULT_ACCEPT_TIMEOUT_MS, DEFAULT_SILENCE_TIMEOUT_MS } from '../constants.js';
import { describeError } from '../describe-error.js';
import { OfferDecisionFrameSchema, RunFrameSchema } from '../frames.js';
import type { JobOfferOutcome, JobProgress, SendJobOfferOptions } from '../types.js';
import { ResultStreamBudget } from './budget.js';
import { asJobError, isAborted, remoteError } from './errors.js';
import { toPeerId } from './peer-id.js';
import { isNewProgress, progressOf } from './progress.js';
import { resultFrameCap, verifyJobResult } from './verify-result.js';

/**
 * Offers one job attempt to a provider over `JOB_PROTOCOL_ID` and waits for its outcome. Dials by
 * peer id, so libp2p reuses the connection the agent opened (agents behind NAT never listen).
 *
 * Resolves `completed` (receipt verified) or `rejected`; throws `JobProtocolError` with `DIAL_FAILED`,
 * `TIMEOUT` (no decision, no result by the deadline, or silence), `STREAM_RESET`, `DISCONNECTED`,
 * `BAD_FRAME`, `FRAME_TOO_LARGE`, `BAD_RECEIPT`, `REMOTE_ERROR`, `BUDGET_EXHAUSTED` or `CANCELLED`.
 */
export async function sendJobOffer(
  node: Libp2p,
  peer: string | PeerId,
  signedOffer: Signed<JobOffer>,
  options: SendJobOfferOptions,
): Promise<JobOfferOutcome> {
  const now = options.now ?? Date.now;
  const peerId = toPeerId(peer);
  const { signal } = options;
  if (signal?.aborted === true) throw new JobProtocolError('CANCELLED', 'cancelled before dialing');

  const resultCap = resultFrameCap(signedOffer.payload, options);
  const deadlineAt = signedOffer.payload.deadlineAt;
  const budget = new ResultStreamBudget(
    options.resultBudget,
    peerId.toString(),
    resultCap,
    () => deadlineAt - now() + Date.now(),
    signal,
  );
  try {
    await budget.reserveUpfront();
    return await offerOnStream(node, peerId, signedOffer, options, resultCap, budget);
  } finally {
    budget.release();
  }
}

async function offerOnStream(
  node: Libp2p,
  peerId: PeerId,
  signedOffer: Signed<JobOffer>,
  options: SendJobOfferOptions,
  resultCap: number,
  budget: ResultStreamBudget,
): Promise<JobOfferOutcome> {
  const now = options.now ?? Date.now;
  const { signal } = options;
  let stream: Stream;
  try {
    // The protocol name goes out with the offer (no round trip of its own before the first frame);
    // a peer that does not speak it fails the first read, like any other refusal.
    stream = await node.dialProtocol(peerId, JOB_PROTOCOL_ID, { signal, negotiateFully: false });
  } catch (err) {
    if (isAborted(signal)) throw new JobProtocolError('CANCELLED', 'cancelled while dialing', { cause: err });
    throw new JobProtocolError('DIAL_FAILED', `dial ${peerId.toString()}: ${describeError(err)}`, {
      cause: err,
    });
  }
  const framed = new FramedStream(stream, {
    maxFrameBytes: resultCap,
    maxBufferedBytes: budget.upfrontBytes,
    admit: budget.admit,
  });
  const onAbort = (): void => {
    framed
      .write({ type: 'cancel', reason: 'cancelled by coordinator' })
      .catch(() => undefined)
      .finally(() => framed.abort(new StreamError('ABORTED', 'cancelled by coordinator')));
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  try {
    await framed.write({ type: 'offer', offer: signedOffer }, { signal });
    const decision = await framed.read(OfferDecisionFrameSchema, {
      timeoutMs: options.acceptTimeoutMs ?? DEFAULT_ACCEPT_TIMEOUT_MS,
      maxBytes: CONTROL_FRAME_MAX_BYTES,
      signal,
    });
    if (decision.type === 'reject') {
      await framed.close();
      return { status: 'rejected', code: 'REJECTED', reason: decision.reason };
    }
    options.onAccepted?.();

    const resultTimeoutMs = options.resultTimeoutMs ?? Math.max(0, signedOffer.payload.deadlineAt - now());
    const resultDeadline = now() + resultTimeoutMs;
    const silenceMs = options.silenceTimeoutMs ?? DEFAULT_SILENCE_TIMEOUT_MS;
    let lastProgress: JobProgress | undefined;
    for (;;) {
      const frame = await framed.read(RunFrameSchema, {
        timeoutMs: Math.max(0, resultDeadline - now()),
        idleTimeoutMs: silenceMs > 0 ? silenceMs : undefined,
        maxBytes: resultCap,
        signal,
      });
      if (frame.type === 'progress') {
        const progress = progressOf(frame);
        if (isNewProgress(lastProgress, progress)) options.onProgress?.(progress);
        lastProgress = progress;
        continue;
      }
      if (frame.type === 'error') throw remoteError(frame);
      const receipt = verifyJobResult(
        signedOffer.payload,
        { peerId: peerId.toString(), address: options.providerAddress },
        frame.outputs,
        frame.receipt,
        now(),
      );
      await framed.close();
      return { status: 'completed', outputs: frame.outputs, receipt };
    }
  } catch (err) {
    const failure = budget.failure ?? asJobError(err, signal);
    framed.abort(new StreamError('ABORTED', failure.message));
    throw failure;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
