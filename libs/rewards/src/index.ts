export { RewardsError } from './errors.js';
export { parseTokenAmount, formatTokenAmount, ONE_TOKEN } from './amounts.js';
export { toHex } from './hex.js';
export { rpcProvider, type RpcProviderOptions } from './rpc-provider.js';
export { leafHash, type LeafDomain } from './leaf.js';
export {
  receiptId,
  feeReceiptId,
  closeEpoch,
  epochTree,
  cumulativeFromEpochFile,
  serializeEpochFile,
  epochFileHash,
  parseEpochFile,
  type EpochFile,
  type CumulativeEntry,
  type EpochCredit,
  type EpochDebitInput,
  type EpochDomain,
} from './epoch-file.js';
export { auditEpoch, type AuditReport } from './audit.js';
export { EpochAuditor } from './epoch-auditor.js';
export { EpochWatcher } from './watch.js';
export { fundEpochFromEscrow, type FundEpochResult } from './epoch-funder.js';
export { reconcileProvider, type JournalPayment, type ProviderReconciliation } from './provider-reconcile.js';
export { EpochCreditBook } from './credit-book.js';
export { applySlash, splitSlash } from './payout-math.js';
export {
  attachComputeToken,
  deployComputeToken,
  computeTokenAbi,
  computeTokenBytecode,
  attachJobEscrow,
  deployJobEscrow,
  jobEscrowAbi,
  jobEscrowBytecode,
  attachProviderStaking,
  deployProviderStaking,
  providerStakingAbi,
  providerStakingBytecode,
  attachRewardsDistributor,
  deployRewardsDistributor,
  rewardsDistributorAbi,
  rewardsDistributorBytecode,
  type ComputeTokenContract,
  type JobEscrowContract,
  type ProviderStakingContract,
  type RewardsDistributorContract,
} from './contracts/index.js';
export {
  contractsFingerprint,
  minimumUnlockDelay,
  deployAll,
  DEV_CHAIN_ID,
  MIN_CHALLENGE_WINDOW_SECONDS,
  MAX_CHALLENGE_WINDOW_SECONDS,
  MAX_DELAY_SECONDS,
  MIN_FUNDING_MARGIN_SECONDS,
  DEFAULT_TOKEN_CAP,
  SLASHER_ROLE,
  SLASH_REVIEWER_ROLE,
  type DeployOptions,
  type DeployedAddresses,
} from './deploy.js';
export { postRootKey, postEpochRoot } from './settlement.js';
export {
  scanEscrowEvents,
  watchEscrowEvents,
  BLOCK_DONE,
  type EscrowEventCursor,
  type EscrowDeposit,
  type EscrowEvent,
  type EscrowEventWatcher,
} from './escrow-events.js';
export {
  committedBatches,
  fundingBatches,
  fundingLeaf,
  fundingRootOf,
  fundingTree,
  DEFAULT_FUNDING_BATCH_SIZE,
  FUNDING_LEAF_ENCODING,
  type CommittedBatch,
  type EpochFunding,
  type FundingBatch,
  type FundingDomain,
} from './funding.js';
export {
  sendJournaled,
  MemoryTxJournal,
  type JournaledTx,
  type JournaledTxEvent,
  type SendJournaledParams,
  type TxAttempt,
  type TxJournal,
} from './journaled-tx.js';
export { FileTxJournal } from './file-tx-journal.js';
export { latestClaimableEpoch, claimRewards, EpochProofs, type ClaimTicket } from './claim.js';
export {
  readStake,
  stakeTokens,
  requestUnbond,
  withdrawUnbonded,
  slashTxKey,
  readSlashProposal,
  proposeSlash,
  executeSlash,
  cancelSlash,
  type StakeInfo,
  type SlashStep,
  type SlashBeneficiary,
} from './staking.js';
export { ANVIL_DEV_KEYS } from './anvil-keys.js';
export {
  DEV_FAUCET_ANVIL_INDEX,
  depositIntoEscrow,
  fundFromDevFaucet,
  type DevFaucetGrant,
} from './dev-faucet.js';
export {
  MAX_SPENDING_CAP,
  MAX_STORED_SPENDING_CAP,
  SPENDING_CAP_TYPES,
  capHeadroom,
  debitableWithinCap,
  fitsSpendingCap,
  signSpendingCap,
  spendingCapDigest,
  spendingCapDomain,
  spendingCapSigner,
  spendingCapTypedData,
  storedSpendingCap,
  type SpendingCapDomain,
  type SpendingCapTypedData,
} from './spending-cap.js';
export { epochFilesToDrop } from './epoch-retention.js';
export { keccak256Hex } from './keccak.js';
