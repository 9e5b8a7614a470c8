import { PeerAction } from '@gpumesh/p2p';
import type { ReputationKind } from '../reputation/reputation.js';

/**
 * What one failed attempt says about its provider, by the attempt error's code (JobProtocolError
 * codes, plus stream codes a newer libs/p2p may surface): how the attempt is recorded, the
 * reputation it costs, the p2p score it costs, and whether it counts toward opening the provider's
 * circuit breaker. LOST and FAILED attempts both exclude the provider from that job (see
 * JobsRepository.findForDispatch).
 */
export interface AttemptFault {
  state: 'FAILED' | 'LOST';
  /** Reputation kind recorded against the provider (none: says nothing against it). */
  reputation: ReputationKind | null;
  /** p2p score penalty (misbehaviour on the wire). */
  penalty: PeerAction | null;
  /** Counts as a loss for the provider's circuit breaker. */
  breakerLoss: boolean;
  /** The failure was this coordinator's, not the provider's: it is not excluded from the job. */
  coordinatorFault?: boolean;
}

/** Lost through the provider's fault (unreachable, gone, silent): reputation and breaker, no p2p penalty. */
const LOST: AttemptFault = { state: 'LOST', reputation: 'lost_attempt', penalty: null, breakerLoss: true };

/** One table for every code; an unknown code is a plain failure (no penalty) so nothing is skipped silently. */
export const ATTEMPT_FAULTS: Readonly<Record<string, AttemptFault>> = {
  // Dial or protocol-negotiation failure: a peer that does not serve the job protocol.
  DIAL_FAILED: LOST,
  DISCONNECTED: LOST,
  STREAM_RESET: LOST,
  STREAM_CLOSED: LOST,
  // No accept in time, or silence after accepting (half frames end here too).
  TIMEOUT: {
    state: 'LOST',
    reputation: 'missed_deadline',
    penalty: PeerAction.MidToleranceError,
    breakerLoss: true,
  },
  // Forged or mismatched receipt.
  BAD_RECEIPT: {
    state: 'FAILED',
    reputation: 'forged_receipt',
    penalty: PeerAction.LowToleranceError,
    breakerLoss: true,
  },
  // Undecodable, out-of-order or oversized frames.
  BAD_FRAME: {
    state: 'FAILED',
    reputation: 'protocol_violation',
    penalty: PeerAction.LowToleranceError,
    breakerLoss: true,
  },
  FRAME_TOO_LARGE: {
    state: 'FAILED',
    reputation: 'protocol_violation',
    penalty: PeerAction.LowToleranceError,
    breakerLoss: true,
  },
  // The provider said it failed: an honest failure, excluded from the job but not punished.
  REMOTE_ERROR: { state: 'FAILED', reputation: null, penalty: null, breakerLoss: false },
  // This side aborted.
  CANCELLED: { state: 'FAILED', reputation: null, penalty: null, breakerLoss: false },
  // This coordinator had no room for the result (its byte budget): the provider did nothing wrong
  // and stays eligible for the job (the error is recorded as the worker's, see coordinatorFault).
  BUDGET_EXHAUSTED: {
    state: 'LOST',
    reputation: null,
    penalty: null,
    breakerLoss: false,
    coordinatorFault: true,
  },
};

const UNKNOWN: AttemptFault = { state: 'FAILED', reputation: null, penalty: null, breakerLoss: false };

/**
 * The fault of an attempt that ended with `code`. A capacity probe (`probe`) the provider lost (it
 * went away, or did not answer in time) says nothing against it: the probe is the platform's test,
 * an honest provider busy with paid work or on a slow link may miss it, and a provider that never
 * answers probes stays credited at the probation speed anyway. A probe's forged receipt or bad frames
 * still cost what they always do, and a wrong answer is a failed canary (dispatch convicts it).
 */
export function attemptFault(code: string, options: { probe?: boolean } = {}): AttemptFault {
  const fault = Object.hasOwn(ATTEMPT_FAULTS, code) ? ATTEMPT_FAULTS[code] : UNKNOWN;
  if (options.probe === true && fault.state === 'LOST' && fault.coordinatorFault !== true) {
    return { state: 'LOST', reputation: null, penalty: null, breakerLoss: false };
  }
  return fault;
}
