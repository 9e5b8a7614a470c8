/**
 * Typed protocol errors. Every failure carries a string `code` so callers (gossip validators, REST
 * filters, the job runner) can map it to a verdict without parsing messages.
 */

/** Codes for malformed input: the message itself is wrong, whoever sent it. */
export type ValidationErrorCode =
  | 'INVALID_MESSAGE'
  | 'INVALID_TENSOR'
  | 'TENSOR_TOO_LARGE'
  | 'NON_CANONICAL_VALUE'
  | 'INVALID_MODEL'
  /** A well-typed advert claims more than the protocol allows (GFLOP/s, GPUs, slots, names). */
  | 'ADVERT_OUT_OF_RANGE';

/** Codes for signature and freshness checks on a well-formed message. */
export type SignatureErrorCode =
  'BAD_SIGNATURE' | 'SIGNER_MISMATCH' | 'BAD_PEER_BINDING' | 'EXPIRED' | 'FROM_FUTURE';

export type ProtocolErrorCode = ValidationErrorCode | SignatureErrorCode;

/** One bad field: a dotted/indexed path (`spec.inputs[0].shape`) and what was expected there. */
export interface ValidationIssue {
  readonly path: string;
  readonly message: string;
}

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

/** The input does not match the wire format. `issues` names each bad field. */
export class ProtocolValidationError extends ProtocolError {
  declare readonly code: ValidationErrorCode;
  readonly issues: readonly ValidationIssue[];

  constructor(code: ValidationErrorCode, message: string, issues: readonly ValidationIssue[] = []) {
    super(code, message);
    this.name = 'ProtocolValidationError';
    this.issues = issues;
  }
}

/** The message is well-formed but its signature, signer or time window is not acceptable. */
export class SignatureVerificationError extends ProtocolError {
  declare readonly code: SignatureErrorCode;

  constructor(code: SignatureErrorCode, message: string) {
    super(code, message);
    this.name = 'SignatureVerificationError';
  }
}

/**
 * What a gossip validator should do with a message that failed with this error (lodestar style):
 * REJECT penalises the sender (provably bad), IGNORE drops it silently (maybe just late or early).
 */
export type GossipAction = 'REJECT' | 'IGNORE';

const GOSSIP_ACTION_BY_CODE: Readonly<Record<ProtocolErrorCode, GossipAction>> = {
  INVALID_MESSAGE: 'REJECT',
  INVALID_TENSOR: 'REJECT',
  TENSOR_TOO_LARGE: 'REJECT',
  NON_CANONICAL_VALUE: 'REJECT',
  INVALID_MODEL: 'REJECT',
  ADVERT_OUT_OF_RANGE: 'REJECT',
  BAD_SIGNATURE: 'REJECT',
  SIGNER_MISMATCH: 'REJECT',
  BAD_PEER_BINDING: 'REJECT',
  EXPIRED: 'IGNORE',
  FROM_FUTURE: 'IGNORE',
};

/** Maps a protocol error code to the gossip verdict it deserves. */
export function gossipActionFor(code: ProtocolErrorCode): GossipAction {
  return GOSSIP_ACTION_BY_CODE[code];
}

export function isProtocolError(err: unknown): err is ProtocolError {
  return err instanceof ProtocolError;
}
