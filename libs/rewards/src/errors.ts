/** Codes for the failures of the rewards library, so callers can branch without parsing messages. */
export type RewardsErrorCode =
  | 'INVALID_CREDIT'
  | 'INVALID_EPOCH_FILE'
  | 'AMOUNT_OVERFLOW'
  | 'DUPLICATE_RECEIPT'
  | 'DEBITS_MISMATCH'
  | 'EPOCH_GAP'
  | 'ROOT_CONFLICT'
  | 'TX_FAILED'
  | 'TX_TIMEOUT'
  | 'JOURNAL_CONFLICT'
  | 'REORG_TOO_DEEP'
  | 'UNSUPPORTED_SIGNER'
  | 'NOTHING_TO_SLASH'
  | 'INVALID_AMOUNT'
  | 'INSUFFICIENT_FUNDS'
  | 'STILL_UNBONDING'
  | 'STAKE_FROZEN'
  | 'EVIDENCE_CONFLICT'
  | 'SLASH_NOT_PROPOSED'
  | 'SLASH_NOT_DUE'
  | 'SLASH_CLOSED'
  | 'NOT_FUNDABLE';

export class RewardsError extends Error {
  readonly code: RewardsErrorCode;

  constructor(code: RewardsErrorCode, message: string) {
    super(message);
    this.name = 'RewardsError';
    this.code = code;
  }
}
