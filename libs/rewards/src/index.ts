export * from './errors.js';
export * from './amounts.js';
export * from './hex.js';
export * from './keccak.js';
export * from './leaf.js';
export * from './merkle.js';
export * from './epoch-file.js';
export * from './epoch-retention.js';
export * from './audit.js';
export * from './watch.js';
export * from './provider-reconcile.js';
export * from './credit-book.js';
export * from './payout-math.js';
export * from './contracts/index.js';
export * from './deploy.js';
export * from './settlement.js';
export * from './escrow-events.js';
export * from './funding.js';
export * from './spending-cap.js';
export {
  sendJournaled,
  sendJournaledCall,
  settleJournaled,
  bumpedFees,
  MemoryTxJournal,
  BASE_FEE_MULTIPLIER,
  DEFAULT_BUMP_AFTER_MS,
  DEFAULT_CONFIRMATIONS,
  DEFAULT_MAX_FEE_PER_GAS,
  DEFAULT_POLL_MS,
  DEFAULT_PRIORITY_FEE_PER_GAS,
  DEFAULT_TX_TIMEOUT_MS,
  GAS_HEADROOM_PERCENT,
  MIN_BUMP_PERCENT,
  type FeePolicy,
  type JournaledCall,
  type JournaledTx,
  type JournaledTxEvent,
  type SendJournaledParams,
  type SentJournaled,
  type SettleJournaledParams,
  type TxAttempt,
  type TxJournal,
} from './journaled-tx.js';
export { FileTxJournal } from './file-tx-journal.js';
export * from './claim.js';
export * from './staking.js';
export * from './anvil-keys.js';
