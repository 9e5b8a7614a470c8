// Generated from docs/openapi.json by libs/sdk/scripts/generate.mjs. Do not edit by hand.
/* eslint-disable */

export type NonceResponseDto = {
  nonce: string;
  expiresAt: string;
  /** the domain the SIWE message must name */
  domain: string;
  chainId: number;
  uri: string;
};

export type SignInDto = {
  /** The EIP-4361 (Sign-In with Ethereum) message, with the nonce from /v1/auth/nonce */
  message: string;
  /** EIP-191 signature of the message by its address */
  signature: string;
};

export type SessionResponseDto = {
  /** Bearer token for creating API keys; shown once */
  token: string;
  expiresAt: string;
  accountId: string;
  address: string;
};

export type ErrorDetail = {
  /** stable string code: VALIDATION_FAILED, INVALID_JSON, UNAUTHENTICATED, INVALID_API_KEY, FORBIDDEN, INSUFFICIENT_BALANCE, SPENDING_CAP_EXCEEDED, JOB_NOT_FOUND, ILLEGAL_TRANSITION, RESULT_NOT_READY, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, RATE_LIMITED, … (each route lists the ones it returns) */
  code: string;
  /** what went wrong, naming the field when a field is wrong */
  message: string;
  /** machine-readable specifics (e.g. `errors`, `missing`, `required` and `available`) */
  details?: Record<string, unknown>;
};

export type ErrorResponse = {
  /** the HTTP status, repeated */
  statusCode: number;
  error: ErrorDetail;
};

export type CreateApiKeyDto = {
  name: string;
  role?: "DEVELOPER" | "ADMIN";
  scopes?: ("jobs:read" | "jobs:write" | "artifacts:write" | "account:read" | "admin")[];
};

export type CreatedApiKeyDto = {
  id: string;
  name: string;
  /** the first characters of the key, to recognise it */
  prefix: string;
  role: "DEVELOPER" | "ADMIN";
  scopes: string[];
  createdAt: string;
  lastUsedAt?: string | null;
  revokedAt?: string | null;
  /** The secret key. Shown once: only its hash is stored. */
  secret: string;
};

export type ApiKeyDto = {
  id: string;
  name: string;
  /** the first characters of the key, to recognise it */
  prefix: string;
  role: "DEVELOPER" | "ADMIN";
  scopes: string[];
  createdAt: string;
  lastUsedAt?: string | null;
  revokedAt?: string | null;
};

export type TypedDataFieldDto = {
  name: string;
  type: string;
};

export type SpendingCapDomainDto = {
  name: string;
  version: string;
  chainId: number;
  /** the JobEscrow contract */
  verifyingContract: string;
};

export type SpendingCapMessageDto = {
  account: string;
  /** base units (decimal string) */
  cap: string;
};

export type SpendingCapTypedDataDto = {
  /** EIP-712 domain: name, version, chainId, verifyingContract (the JobEscrow) */
  domain: SpendingCapDomainDto;
  types: {
    [key: string]: TypedDataFieldDto[];
  };
  primaryType: string;
  /** your account and current cap: put the new (higher) cap in `cap` and sign */
  message: SpendingCapMessageDto;
};

export type SpendingCapDto = {
  /** base units: the most that may ever be debited from your escrow deposit, in total (the highest cap you signed; 0 = none) */
  cap: string;
  /** base units spent, held or reserved for jobs so far */
  spent: string;
  /** base units you may still commit under your cap */
  authorisedRemaining: string;
  /** what to sign (eth_signTypedData_v4) to raise the cap; PUT the result to /v1/account/spending-cap */
  typedData: SpendingCapTypedDataDto;
};

export type AccountDto = {
  id: string;
  address: string;
  role: "DEVELOPER" | "ADMIN";
  /** base units free to spend */
  balance: string;
  /** base units held for jobs that have not finished */
  reserved: string;
  /** set while an escrow unlock you requested on chain is pending: the time it becomes withdrawable. No new jobs are accepted until you cancel it (JobEscrow.cancelUnlock) or withdraw */
  escrowUnlockAt?: string | null;
  /** your signed spending cap (what the settler may ever debit from your escrow) and what to sign to raise it; null when the coordinator settles on no chain */
  spendingCap?: SpendingCapDto | null;
};

export type AccountLedgerEntryDto = {
  /** the entry id (entries are numbered in the order they were written) */
  id: string;
  /** the ledger transaction the entry belongs to */
  txId: string;
  /** when it was written (ISO 8601) */
  createdAt: string;
  /** deposit (escrow deposit credited), withdrawal, mint (dev credits), reserve (a job submitted), release (a reservation or a refund returned), settle (a completed job charged, the rest returned) */
  kind: "deposit" | "withdrawal" | "mint" | "reserve" | "release" | "settle";
  /** which of your balances moved: available (free to spend) or reserved (held for running jobs) */
  balance: "available" | "reserved";
  /** base units, signed: positive credits that balance, negative debits it */
  amount: string;
  /** the job it is for */
  jobId?: string | null;
  /** that balance right after this entry (entries applied in id order; the newest equals GET /v1/account) */
  balanceAfter: string;
};

export type AccountLedgerPageDto = {
  /** newest first */
  items: AccountLedgerEntryDto[];
  /** pass as ?cursor= for the next page */
  nextCursor?: string | null;
};

export type PutSpendingCapDto = {
  /** the new cap in base units (decimal string) */
  cap: string;
  /** your EIP-712 signature of SpendingCap(account, cap) */
  signature: string;
};

export type VerificationPolicyDto = {
  mode: "none" | "redundant";
  /** distinct operators each job runs on */
  k: number;
  /** share of dispatches followed by a canary */
  canaryRate: number;
};

export type AccountVerificationDto = {
  /** what your jobs run under when they name no policy */
  effective: VerificationPolicyDto;
  /** your default; null = the platform one */
  account?: VerificationPolicyDto | null;
  platform: VerificationPolicyDto;
};

export type SetWebhookDto = {
  /** https URL on a public address */
  url: string;
  /** deliver only these event types (default: every event type) */
  events?: ("job.running" | "job.succeeded" | "job.failed" | "job.expired" | "job.cancelled" | "job.corrected")[];
};

export type WebhookCreatedDto = {
  url: string;
  /** the event types delivered; empty: every event type */
  events: ("job.running" | "job.succeeded" | "job.failed" | "job.expired" | "job.cancelled" | "job.corrected")[];
  createdAt: string;
  updatedAt: string;
  /** the HMAC-SHA256 key of the x-gpumesh-signature header (sha256=hex of HMAC(secret, "<x-gpumesh-timestamp>.<body>")); shown only here: PUT again to rotate it */
  secret: string;
};

export type WebhookDto = {
  url: string;
  /** the event types delivered; empty: every event type */
  events: ("job.running" | "job.succeeded" | "job.failed" | "job.expired" | "job.cancelled" | "job.corrected")[];
  createdAt: string;
  updatedAt: string;
};

export type WebhookDeliveryDto = {
  /** also the x-gpumesh-delivery header: deduplicate on it */
  id: string;
  event: "job.running" | "job.succeeded" | "job.failed" | "job.expired" | "job.cancelled" | "job.corrected" | "ping";
  jobId?: string | null;
  url: string;
  state: "PENDING" | "DELIVERED" | "FAILED";
  /** attempts made so far */
  attempts: number;
  /** HTTP status of the last attempt */
  lastStatus?: number | null;
  /** why the last attempt failed */
  lastError?: string | null;
  /** next attempt (PENDING) or last one */
  nextAttemptAt: string;
  createdAt: string;
  deliveredAt?: string | null;
};

export type WebhookTestResultDto = {
  /** the receiver answered 2xx */
  delivered: boolean;
  /** the receiver's HTTP status */
  status?: number | null;
  /** why it failed (refused URL, timeout, connection error, non-2xx answer) */
  error?: string | null;
  /** time of the attempt, connection included */
  durationMs: number;
  /** the ping in the delivery log (not retried) */
  delivery: WebhookDeliveryDto;
};

export type WebhookDeliveryPageDto = {
  /** newest first */
  items: WebhookDeliveryDto[];
  /** pass as ?cursor= for the next page */
  nextCursor?: string | null;
};

export type JobChargesDto = {
  /** base units paid to the provider of the first run (its price × work units, less the fee) */
  work: string;
  /** base units paid to the providers of every further run: redundant copies and tie-breaks */
  redundancy: string;
  /** base units you paid for canaries: always 0, the platform pays its canary jobs (verification.cost.canary is what they cost it) */
  canary: string;
  /** the platform fee, taken out of the providers' payments */
  fee: string;
};

export type JobCostDto = {
  /** workUnits × pricePerUnit: one provider running it */
  work: string;
  /** (k − 1) × work: the redundant runs */
  redundancy: string;
  /** what the known-answer canaries for this job cost; paid from the platform fee, not added to total */
  canary: string;
  /** a check run on another operator, reserved when a single-copy job asks for verified (returned when the coordinator recomputed it instead) */
  check: string;
  /** what is reserved: work + redundancy + check */
  total: string;
};

export type JobVerificationDto = {
  mode: "none" | "redundant";
  /** distinct operators the job runs on */
  k: number;
  /** share of dispatches followed by a known-answer canary */
  canaryRate: number;
  source: "request" | "spec" | "account" | "platform";
  /** what verification adds to the cost */
  cost: JobCostDto;
  /** the job completes only after a check of its result passed */
  required: boolean;
  /** how the delivered result was verified (null until completed): redundant (another operator agreed), reference (the coordinator recomputed it), spot-check (a trusted provider, sampled by canaries), none */
  method?: "redundant" | "reference" | "spot-check" | "none" | null;
  /** a check of this very result passed before it was delivered */
  verified: boolean;
  /** a later check found the delivered result wrong and replaced it (job.corrected) */
  corrected: boolean;
};

export type JobErrorDto = {
  /** INPUT_REJECTED: providers of two distinct operators could not run the job (its dtype, shapes, model); UNPLACEABLE: no provider could take it for the grace period; DEADLINE_PASSED; INPUT_DELETED: an input by ref was deleted while the job was submitted; WRONG_RESULT (known-answer jobs); FAILED (older jobs) */
  code: "INPUT_REJECTED" | "UNPLACEABLE" | "DEADLINE_PASSED" | "INPUT_DELETED" | "WRONG_RESULT" | "FAILED";
  /** why, with the providers’ own error or the placement explanation */
  message: string;
};

export type JobDto = {
  id: string;
  kind: "matmul" | "inference" | "train";
  state: "QUEUED" | "DISPATCHED" | "RUNNING" | "VERIFYING" | "COMPLETED" | "FAILED" | "CANCELLED" | "EXPIRED";
  /** work units (1 unit = 1 MFLOP) computed from the spec */
  workUnits: string;
  /** the maximum price per work unit, in base units */
  pricePerUnit: string;
  /** deprecated: the same figure as `reserved` (what was reserved, not what was charged) */
  cost: string;
  /** base units reserved from your balance at submission: work units × maxPricePerUnit × k (+ a check run); what is not charged returns to your balance when the job ends */
  reserved: string;
  /** base units charged for this job so far, read from the ledger: 0 until it completes, then what the providers were paid at their own price (fee included), less any refund; work + redundancy + canary + fee */
  charged: string;
  /** what `charged` is made of */
  chargedBreakdown: JobChargesDto;
  redundancy: number;
  verification: JobVerificationDto;
  deadlineAt: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string | null;
  /** why the job ended: always set on FAILED and EXPIRED, null otherwise */
  error?: JobErrorDto | null;
  resultHash?: string | null;
};

export type BatchItemErrorDto = {
  code: string;
  message: string;
  details?: Record<string, unknown>;
};

export type BatchItemDto = {
  /** position of this job in the request */
  index: number;
  /** the stored job (absent when refused) */
  job?: JobDto;
  /** false: an earlier submission with the same Idempotency-Key */
  created?: boolean;
  /** why this job was refused */
  error?: BatchItemErrorDto;
};

export type BatchSubmitResponseDto = {
  items: BatchItemDto[];
  /** jobs stored by this request */
  created: number;
  /** jobs refused (see their error) */
  refused: number;
};

export type DryRunFundsDto = {
  /** base units a submission would reserve */
  required: string;
  /** your available balance, in base units */
  available: string;
  /** the available balance covers the reservation */
  sufficient: boolean;
};

export type DryRunCandidateDto = {
  peerId: string;
  operatorId: string;
  /** placement score (higher is better) */
  score: number;
};

export type DryRunSuggestionDto = {
  kind: "wait-for-capacity" | "raise-max-price" | "lower-min-vram" | "extend-deadline" | "reduce-redundancy" | "allow-backend" | "allow-gpu-model" | "add-stake";
  /** distinct eligible operators after the change */
  operatorsAfter: number;
  /** size of the change relative to the job (0 = free) */
  relativeCost: number;
  message: string;
  providersBusy?: number;
  /** base units per work unit */
  maxPricePerUnit?: string;
  minVramMiB?: number;
  extendBySeconds?: number;
  /** milliseconds since the epoch */
  deadlineAt?: number;
  redundancy?: number;
  backend?: "tensorflow-gpu" | "webgpu" | "tensorflow" | "wasm" | "cpu";
  gpuModel?: string;
  /** base units each of peerIds must add */
  additionalStake?: string;
  peerIds?: string[];
};

export type DryRunExplanationDto = {
  jobId: string;
  placeable: boolean;
  /** providers considered */
  providers: number;
  eligible: number;
  eligibleOperators: number;
  /** distinct operators needed */
  needed: number;
  deadlinePassed: boolean;
  /** providers failing each reason */
  excluded: {
    banned?: number;
    draining?: number;
    expired?: number;
    backend?: number;
    "gpu-model"?: number;
    vram?: number;
    price?: number;
    speed?: number;
    capacity?: number;
    excluded?: number;
    stake?: number;
    [key: string]: number | undefined;
  };
  /** providers failing this reason and nothing else */
  excludedOnlyBy: {
    banned?: number;
    draining?: number;
    expired?: number;
    backend?: number;
    "gpu-model"?: number;
    vram?: number;
    price?: number;
    speed?: number;
    capacity?: number;
    excluded?: number;
    stake?: number;
    [key: string]: number | undefined;
  };
  /** feasible single changes, cheapest first */
  suggestions: DryRunSuggestionDto[];
  cheapest?: DryRunSuggestionDto;
  message: string;
};

export type DryRunVerificationDto = {
  mode: "none" | "redundant";
  k: number;
  canaryRate: number;
  verified?: boolean;
  source: "request" | "spec" | "account" | "platform";
  /** base units of the platform fee that fund its canaries */
  canaryFee: string;
};

export type DryRunCostDto = {
  work: string;
  redundancy: string;
  canary: string;
  check: string;
  /** what a submission would reserve */
  total: string;
};

export type DryRunDto = {
  workUnits: string;
  /** base units a submission would reserve */
  cost: string;
  /** providers would take it now and your balance covers it: a submission would be placed */
  placeable: boolean;
  funds: DryRunFundsDto;
  /** why it is not placeable (empty when it is): the placement explanation, INSUFFICIENT_BALANCE: … */
  reasons: string[];
  /** where it would run, best first */
  candidates: DryRunCandidateDto[];
  explanation: DryRunExplanationDto;
  verification: DryRunVerificationDto;
  costBreakdown: DryRunCostDto;
};

export type JobPageDto = {
  items: JobDto[];
  /** pass as ?cursor= for the next page */
  nextCursor?: string | null;
};

export type JobDetailDto = {
  id: string;
  kind: "matmul" | "inference" | "train";
  state: "QUEUED" | "DISPATCHED" | "RUNNING" | "VERIFYING" | "COMPLETED" | "FAILED" | "CANCELLED" | "EXPIRED";
  /** work units (1 unit = 1 MFLOP) computed from the spec */
  workUnits: string;
  /** the maximum price per work unit, in base units */
  pricePerUnit: string;
  /** deprecated: the same figure as `reserved` (what was reserved, not what was charged) */
  cost: string;
  /** base units reserved from your balance at submission: work units × maxPricePerUnit × k (+ a check run); what is not charged returns to your balance when the job ends */
  reserved: string;
  /** base units charged for this job so far, read from the ledger: 0 until it completes, then what the providers were paid at their own price (fee included), less any refund; work + redundancy + canary + fee */
  charged: string;
  /** what `charged` is made of */
  chargedBreakdown: JobChargesDto;
  redundancy: number;
  verification: JobVerificationDto;
  deadlineAt: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string | null;
  /** why the job ended: always set on FAILED and EXPIRED, null otherwise */
  error?: JobErrorDto | null;
  resultHash?: string | null;
  /** the submitted job spec, its inputs as metadata only (name, dtype, shape, bytes, and ref for an input by ref): no tensor data */
  spec?: {
    kind: "matmul" | "inference" | "train";
    inputs: {
      name: string;
      dtype: "float32" | "int32" | "bool";
      shape: number[];
      /** bytes of element data */
      bytes: number;
      /** the tensor an input by ref names: uploaded, or an output by ref of an earlier job of the account (absent for inline inputs) */
      ref?: string;
    }[];
  };
};

export type TensorDto = {
  name: string;
  dtype: "float32" | "int32" | "bool";
  shape: number[];
  /** the values, little-endian, base64 */
  data: string;
};

export type OutputRefDto = {
  name: string;
  /** `sha256:` and the SHA-256 of the element bytes */
  ref: string;
  dtype: "float32" | "int32" | "bool";
  shape: number[];
  /** SHA-256 of the little-endian element bytes */
  sha256: string;
};

export type ResultVerificationDto = {
  method?: "redundant" | "reference" | "spot-check" | "none";
  /** a check of this result passed before it was delivered */
  verified?: boolean;
  /** the provider of another operator whose run agreed (redundant check) */
  checkedBy?: string;
  /** the tier of the provider whose result was delivered, when it was checked */
  tier?: "probation" | "trusted";
  /** a later check found the delivered result wrong and replaced it */
  corrected?: boolean;
};

export type JobOutputsDto = {
  /** the output tensors, in the order the job names them: inline (base64 `data`), or by ref when large (fetch them with GET /v1/jobs/{id}/outputs/{name}) */
  outputs: (TensorDto | OutputRefDto)[];
  /** how the result was verified */
  verification?: ResultVerificationDto;
};

export type JobResultDto = {
  jobId: string;
  /** the hash of the outputs, as the providers signed it */
  resultHash: string;
  result: JobOutputsDto;
};

export type UploadArtifactDto = {
  /** tfjs LayersModel or GraphModel */
  format: "layers" | "graph";
  /** the model.json of a tfjs model (modelTopology + weightsManifest) */
  modelJson: Record<string, unknown>;
  /** every weight file of the manifest, concatenated in manifest order, base64 */
  weights: string;
  /** share the model: any account may then use it in its jobs. A new upload is private unless true; on a model you already uploaded, omitting it keeps your setting */
  public?: boolean;
};

export type ArtifactDto = {
  /** sha256 of the canonical model.json bytes followed by the weights */
  hash: string;
  format: "layers" | "graph";
  sizeBytes: number;
  /** you uploaded it (else you see it because it is public) */
  owned: boolean;
  /** your upload is shared with every account (always true when not owned) */
  public: boolean;
  /** when you uploaded it (when not owned: when its first public owner did) */
  createdAt: string;
};

export type ArtifactPageDto = {
  items: ArtifactDto[];
  /** pass as cursor for the next page */
  nextCursor: string | null;
};

export type UpdateArtifactDto = {
  /** share your upload of this model with every account (true) or stop (false) */
  public: boolean;
};

export type UploadedTensorDto = {
  /** sha256 of the element bytes (little-endian, C order): use it as a job input { name, ref } */
  ref: string;
  dtype: "float32" | "int32" | "bool";
  shape: number[];
  /** bytes of element data */
  bytes: number;
  /** when you first uploaded it (or its job gave it to you) */
  createdAt: string;
  /** when the retention sweep may delete it: TENSOR_RETENTION_DAYS (an upload) or OUTPUT_RETENTION_DAYS (an output) after it was last uploaded, produced or named as a job input; never while a job that has not finished names it. null: kept until you delete it */
  expiresAt: string | null;
  /** the job whose output by ref this is; null for an upload */
  jobId: string | null;
};

export type TensorPageDto = {
  items: UploadedTensorDto[];
  /** pass as ?cursor= for the next page */
  nextCursor?: string | null;
};

export type DeletedTensorDto = {
  ref: string;
  /** always true */
  deleted: boolean;
};

export type EarningsTotalsDto = {
  /** Σ net credited minus reversals, all time, base units */
  net: string;
  /** held until verification vests it */
  held: string;
  /** vested, waiting for the next epoch */
  pendingEpoch: string;
  /** in closed epochs (claimable once final) */
  inEpochs: string;
  reversed: string;
};

export type JobEarningDto = {
  jobId: string;
  /** the provider's attempt numbers at the job */
  attempts: number[];
  finishedAt?: string | null;
  /** paid for this work before the platform fee, base units */
  gross: string;
  /** platform fee, base units */
  fee: string;
  /** what the provider gets (gross − fee − reversed), base units */
  net: string;
  /** taken back after a failed check, base units */
  reversed: string;
  state: "held" | "earned" | "in-epoch" | "reversed";
  /** the epoch that pays it */
  epoch?: number | null;
  epochState?: string | null;
  creditedAt: string;
};

export type ProviderEarningsDto = {
  peerId: string;
  address?: string | null;
  /** current platform fee, basis points */
  feeBps: number;
  totals: EarningsTotalsDto;
  openEpoch?: number | null;
  jobs: JobEarningDto[];
};

export type GpuDto = {
  model: string;
  vramMiB: number;
  computeCapability?: string;
};

export type ProviderDto = {
  peerId: string;
  operatorId: string;
  status: "ONLINE" | "OFFLINE" | "DRAINING" | "BANNED";
  backend: "tensorflow-gpu" | "webgpu" | "tensorflow" | "wasm" | "cpu";
  gpus: GpuDto[];
  /** advertised matmul GFLOP/s (a claim: placement credits at most measuredGflops) */
  gflops: number;
  /** GFLOP/s the latest timed known-answer job vouches for (a lower bound; at least the probation figure when it answered too fast to resolve); null until measured */
  measuredGflops?: number | null;
  measuredAt?: string | null;
  /** its advert is far above its measured speed (CAPACITY_OVERSTATED_FACTOR) */
  capacityOverstated: boolean;
  /** base units per work unit */
  pricePerUnit: string;
  slots: number;
  freeSlots: number;
  reputation: number;
  region?: string | null;
  /** usable stake (bonded minus frozen, base units) of its operator address as placement sees it; null when stake does not gate placement */
  usableStake?: string | null;
  /** base units of work offered to or running on it (workUnits × price) */
  inFlightValue: string;
  lastSeenAt: string;
};

export type PriceRangeDto = {
  providers: number;
  /** base units per work unit */
  min?: string | null;
  median?: string | null;
  max?: string | null;
};

export type MarketDto = {
  providers: number;
  /** base units per work unit */
  min?: string | null;
  median?: string | null;
  max?: string | null;
  /** platform fee on each provider payment, basis points */
  feeBps: number;
  byBackend: {
    [key: string]: PriceRangeDto;
  };
  at: string;
};

export type CoordinatorPeerDto = {
  peerId: string;
  /** dial one of these (they end in /p2p/<peerId>) */
  multiaddrs: string[];
  /** the EVM address that signs job offers */
  signerAddress: string;
};

export type NetworkDto = {
  protocolVersion: number;
  peers: CoordinatorPeerDto[];
};

export type DependencyHealthDto = {
  status: "up" | "down";
  latencyMs: number;
  /** why it is down */
  error?: string;
};

export type ChainHealthDto = {
  status: "up" | "down";
  latencyMs: number;
  /** why it is down */
  error?: string;
  chainId: number;
  /** the latest block, when the RPC answered */
  blockNumber?: number;
};

export type P2pHealthDto = {
  /** idle: the node runs, no agent is connected */
  status: "up" | "idle" | "down";
  /** connected peers */
  peers: number;
};

export type SettlementHealthDto = {
  /** degraded: an epoch is blocked or unfunded, or a closed epoch waits over 10 min to be posted */
  status: "up" | "degraded";
  /** epochs per state */
  epochs: {
    [key: string]: number;
  };
  /** base units FUNDING epochs still lack on chain */
  unfundedBaseUnits: string;
  blockedEpochs: number;
  /** seconds the oldest closed epoch has waited to be posted */
  postingLagSeconds: number;
};

export type HealthChecksDto = {
  database: DependencyHealthDto;
  redis: DependencyHealthDto;
  /** when this process settles on a chain */
  chain?: ChainHealthDto;
  /** when this process runs the p2p node */
  p2p?: P2pHealthDto;
  /** when this process settles on a chain */
  settlement?: SettlementHealthDto;
};

export type HealthReport = {
  /** ok; degraded (still serving: the chain, p2p or settlement needs a look; HTTP 200); unavailable (PostgreSQL or Redis down; HTTP 503) */
  status: "ok" | "degraded" | "unavailable";
  checks: HealthChecksDto;
};

export type LivenessDto = {
  status: "ok";
};

export type AdminSignInDto = {
  /** an admin API key (gmk_…) with the admin scope */
  apiKey: string;
};

export type AdminSessionDto = {
  accountId: string;
  address: string;
  role: "DEVELOPER" | "ADMIN";
  scopes: string[];
  via: "cookie" | "api-key" | "session";
  /** may ban, drain, cancel and revoke (the admin scope) */
  canAct: boolean;
  expiresAt?: string | null;
  /** the header cookie-authenticated changes must carry */
  csrfHeader: string;
};

export type SignedOutDto = {
  signedOut: true;
};

export type CountByLabelDto = {
  label: string;
  count: number;
};

export type JobsPerMinuteDto = {
  minute: string;
  submitted: number;
  completed: number;
};

export type OverviewDto = {
  at: string;
  /** ONLINE providers seen in the last 2 minutes */
  providersOnline: number;
  providersByStatus: CountByLabelDto[];
  /** GPUs of online providers by model */
  gpusByModel: CountByLabelDto[];
  slots: number;
  freeSlots: number;
  /** jobs submitted in the last 60 s */
  jobsPerMinute: number;
  /** the last 30 minutes */
  jobsPerMinuteSeries: JobsPerMinuteDto[];
  /** window of the rates and latencies, seconds */
  windowSeconds: number;
  finished: number;
  /** completed / finished, 0..1 */
  successRate?: number | null;
  /** disagreeing redundant results / verified */
  verificationFailureRate?: number | null;
  /** jobs waiting for a provider (QUEUED) */
  queueDepth: number;
  /** jobs dispatched, running or verifying */
  activeJobs: number;
  /** BullMQ dispatch queue counts */
  dispatchQueue?: {
    [key: string]: number;
  } | null;
  latencyP50Seconds?: number | null;
  latencyP99Seconds?: number | null;
  epoch?: number | null;
  epochStartedAt: string;
  /** base units credited to providers this epoch */
  earningsThisEpoch: string;
  /** platform fees credited straight to the platform by settlements this epoch, base units */
  feesThisEpoch: string;
  /** platform fees charged on provider payments this epoch (including those held with unvested credits), base units */
  feesChargedThisEpoch: string;
  /** the part of the fees of the jobs completed this epoch that funds canary jobs (their verification.canaryFee), base units */
  canaryShareThisEpoch: string;
};

export type HistoryPointDto = {
  /** start of the bucket */
  at: string;
  /** minutes with a stored row in the bucket */
  minutes: number;
  /** ONLINE providers seen in the last 2 minutes, average; null when the bucket holds only minutes rebuilt from the stored jobs (which do not say) */
  providersOnline: number | null;
  /** slots of online providers, average (null: as providersOnline) */
  slots: number | null;
  /** free slots of online providers, average (null: as providersOnline) */
  freeSlots: number | null;
  /** jobs waiting for a provider, average */
  queueDepth: number;
  /** jobs waiting for a provider, highest sample */
  queueDepthMax: number;
  /** jobs dispatched, running or verifying, average */
  activeJobs: number;
  /** jobs submitted in the bucket */
  submitted: number;
  /** jobs completed in the bucket */
  completed: number;
  /** jobs failed or expired in the bucket */
  failed: number;
};

export type HistoryDto = {
  range: "30m" | "24h" | "7d";
  /** the first moment the range covers */
  since: string;
  /** the width of a bucket */
  bucketSeconds: number;
  /** how long the minute rows are kept */
  retentionSeconds: number;
  /** the buckets that hold data, oldest first (a bucket without any is left out) */
  points: HistoryPointDto[];
};

export type AdminProviderDto = {
  peerId: string;
  operatorId: string;
  status: "ONLINE" | "OFFLINE" | "DRAINING" | "BANNED";
  backend: "tensorflow-gpu" | "webgpu" | "tensorflow" | "wasm" | "cpu";
  gpus: GpuDto[];
  /** advertised matmul GFLOP/s (a claim: placement credits at most measuredGflops) */
  gflops: number;
  /** GFLOP/s the latest timed known-answer job vouches for (a lower bound; at least the probation figure when it answered too fast to resolve); null until measured */
  measuredGflops?: number | null;
  measuredAt?: string | null;
  /** its advert is far above its measured speed (CAPACITY_OVERSTATED_FACTOR) */
  capacityOverstated: boolean;
  /** base units per work unit */
  pricePerUnit: string;
  slots: number;
  freeSlots: number;
  reputation: number;
  region?: string | null;
  /** usable stake (bonded minus frozen, base units) of its operator address as placement sees it; null when stake does not gate placement */
  usableStake?: string | null;
  /** base units of work offered to or running on it (workUnits × price) */
  inFlightValue: string;
  lastSeenAt: string;
  address: string;
  /** seen in the last 2 minutes */
  live: boolean;
};

export type ProviderAttemptDto = {
  jobId: string;
  kind: "matmul" | "inference" | "train";
  jobState: "QUEUED" | "DISPATCHED" | "RUNNING" | "VERIFYING" | "COMPLETED" | "FAILED" | "CANCELLED" | "EXPIRED";
  attempt: number;
  state: "OFFERED" | "ACCEPTED" | "RUNNING" | "SUCCEEDED" | "FAILED" | "LOST";
  error?: string | null;
  offeredAt: string;
  finishedAt?: string | null;
};

export type StakeDto = {
  /** true when the stake was read from ProviderStaking */
  available: boolean;
  /** bonded base units */
  bonded?: string | null;
  /** unbonding base units (still slashable) */
  unbonding?: string | null;
  /** base units frozen by pending slash proposals (never withdrawn while they are pending) */
  frozen?: string | null;
  unbondingEndsAt?: string | null;
  /** the ProviderStaking contract */
  staking?: string | null;
  /** why no stake is shown (no chain, ...) */
  note?: string | null;
};

export type SlashBeneficiaryDto = {
  /** the developer account address compensated */
  account: string;
  /** its weight: the cost (base units) of its jobs the provider ran */
  weight: string;
};

export type SlashDto = {
  id: string;
  peerId: string;
  /** the operator address whose stake is frozen and slashed */
  operatorAddress: string;
  evidenceId: string;
  /** keccak256 of the evidence bundle (public: GET /v1/evidence/{hash}); cited by the on-chain SlashProposed and Slashed events */
  evidenceHash: string;
  /** base units: requested, then frozen on chain (FROZEN), then really slashed (EXECUTED) */
  amount: string;
  reason: string;
  /** PROPOSED (being frozen on chain) → FROZEN (stake frozen; review window) → SENT → EXECUTED; an admin cancel: CANCELLING → CANCELLED */
  state: "PROPOSED" | "FROZEN" | "SENT" | "EXECUTED" | "CANCELLING" | "CANCELLED" | "EXPIRED" | "FAILED";
  /** developers the slash compensates (through the escrow), largest first; empty = burnt */
  beneficiaries: SlashBeneficiaryDto[];
  /** executed after this unless an admin cancels it first */
  executeAfter: string;
  /** the proposeSlash transaction (freeze) */
  proposeTxHash?: string | null;
  /** the executeSlash transaction */
  txHash?: string | null;
  nonce?: number | null;
  /** the cancelSlash transaction (unfreeze) */
  cancelTxHash?: string | null;
  /** base units paid to the developers */
  compensated?: string | null;
  /** base units burnt */
  burnt?: string | null;
  error?: string | null;
  /** the admin who cancelled it */
  reviewedBy?: string | null;
  createdAt: string;
  /** when the chain froze the stake */
  frozenAt?: string | null;
  executedAt?: string | null;
  cancelledAt?: string | null;
};

export type ReputationEventDto = {
  id: string;
  /** what moved the score (verification, completion, deadline, ...) */
  kind: string;
  delta: number;
  /** the score after this event */
  score: number;
  jobId?: string | null;
  detail?: Record<string, unknown> | null;
  createdAt: string;
};

export type ProviderPlacementDto = {
  /** directly connected to this process (only those get offers) */
  connected: boolean;
  /** in this process's placement index (connected, with a fresh advert) */
  placeable: boolean;
  /** circuit breaker (losses open it) */
  breaker: "closed" | "open" | "half-open";
  /** losses counted toward opening the breaker */
  breakerLosses: number;
  /** when an open breaker lets an offer through */
  breakerOpenUntil?: string | null;
  /** slow start: jobs it may hold at once (earned by results, halved by losses) */
  concurrencyWindow: number;
  /** slots its latest advert claims */
  advertisedSlots?: number | null;
};

export type AdminProviderDetailDto = {
  peerId: string;
  operatorId: string;
  status: "ONLINE" | "OFFLINE" | "DRAINING" | "BANNED";
  backend: "tensorflow-gpu" | "webgpu" | "tensorflow" | "wasm" | "cpu";
  gpus: GpuDto[];
  /** advertised matmul GFLOP/s (a claim: placement credits at most measuredGflops) */
  gflops: number;
  /** GFLOP/s the latest timed known-answer job vouches for (a lower bound; at least the probation figure when it answered too fast to resolve); null until measured */
  measuredGflops?: number | null;
  measuredAt?: string | null;
  /** its advert is far above its measured speed (CAPACITY_OVERSTATED_FACTOR) */
  capacityOverstated: boolean;
  /** base units per work unit */
  pricePerUnit: string;
  slots: number;
  freeSlots: number;
  reputation: number;
  region?: string | null;
  /** usable stake (bonded minus frozen, base units) of its operator address as placement sees it; null when stake does not gate placement */
  usableStake?: string | null;
  /** base units of work offered to or running on it (workUnits × price) */
  inFlightValue: string;
  lastSeenAt: string;
  address: string;
  /** seen in the last 2 minutes */
  live: boolean;
  /** the latest signed advert */
  advert: Record<string, unknown>;
  createdAt: string;
  /** base units earned (ledger) */
  earned: string;
  attemptCounts: {
    [key: string]: number;
  };
  /** input-fault claims (the job's input cannot run: BAD_INPUT, MODEL_LOAD_FAILED, UNSUPPORTED_OP) that a verified result of the job disproved; each cost reputation (kind disproved_input_fault) and put the provider on probation */
  disprovedInputFaults: number;
  recentAttempts: ProviderAttemptDto[];
  bannedAt?: string | null;
  banReason?: string | null;
  /** the operator address's stake on ProviderStaking */
  stake: StakeDto;
  /** slash proposals against this provider, newest first */
  slashes: SlashDto[];
  /** reputation history, oldest first (last 200) */
  reputationHistory: ReputationEventDto[];
  /** how this process's placement sees the provider (breaker, slow-start window); each worker keeps its own */
  placement: ProviderPlacementDto;
};

export type AdminActionDto = {
  /** why: kept with the action in the audit log (GET /v1/admin/audit-log) */
  reason: string;
};

export type UnbanDto = {
  /** why: kept with the action in the audit log (GET /v1/admin/audit-log) */
  reason: string;
  /** the score after the ban is lifted: keep (unchanged, the default when the ban did not lower it, e.g. an admin ban), probation (0.3, the default after a ban for wrong results) or restore (the score it had before the ban) */
  reputation?: "keep" | "probation" | "restore";
};

export type AdminJobDto = {
  id: string;
  kind: "matmul" | "inference" | "train";
  state: "QUEUED" | "DISPATCHED" | "RUNNING" | "VERIFYING" | "COMPLETED" | "FAILED" | "CANCELLED" | "EXPIRED";
  /** work units (1 unit = 1 MFLOP) computed from the spec */
  workUnits: string;
  /** the maximum price per work unit, in base units */
  pricePerUnit: string;
  /** deprecated: the same figure as `reserved` (what was reserved, not what was charged) */
  cost: string;
  /** base units reserved from your balance at submission: work units × maxPricePerUnit × k (+ a check run); what is not charged returns to your balance when the job ends */
  reserved: string;
  /** base units charged for this job so far, read from the ledger: 0 until it completes, then what the providers were paid at their own price (fee included), less any refund; work + redundancy + canary + fee */
  charged: string;
  /** what `charged` is made of */
  chargedBreakdown: JobChargesDto;
  redundancy: number;
  verification: JobVerificationDto;
  deadlineAt: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string | null;
  /** why the job ended: always set on FAILED and EXPIRED, null otherwise */
  error?: JobErrorDto | null;
  resultHash?: string | null;
  accountId: string;
  accountAddress: string;
};

export type AdminJobPageDto = {
  items: AdminJobDto[];
  nextCursor?: string | null;
};

export type JobEventDto = {
  id: string;
  type: string;
  fromState?: string | null;
  toState?: string | null;
  data?: Record<string, unknown> | null;
  createdAt: string;
};

export type AttemptDto = {
  attempt: number;
  providerId?: string | null;
  state: "OFFERED" | "ACCEPTED" | "RUNNING" | "SUCCEEDED" | "FAILED" | "LOST";
  outputHash?: string | null;
  error?: string | null;
  receipt?: Record<string, unknown> | null;
  offeredAt: string;
  startedAt?: string | null;
  finishedAt?: string | null;
};

export type VerdictDto = {
  outcome: "pending" | "agreed" | "single" | "disagreed" | "none";
  detail: string;
};

export type LedgerMoveDto = {
  account: string;
  amount: string;
  kind: string;
  createdAt: string;
};

export type AdminJobDetailDto = {
  id: string;
  kind: "matmul" | "inference" | "train";
  state: "QUEUED" | "DISPATCHED" | "RUNNING" | "VERIFYING" | "COMPLETED" | "FAILED" | "CANCELLED" | "EXPIRED";
  /** work units (1 unit = 1 MFLOP) computed from the spec */
  workUnits: string;
  /** the maximum price per work unit, in base units */
  pricePerUnit: string;
  /** deprecated: the same figure as `reserved` (what was reserved, not what was charged) */
  cost: string;
  /** base units reserved from your balance at submission: work units × maxPricePerUnit × k (+ a check run); what is not charged returns to your balance when the job ends */
  reserved: string;
  /** base units charged for this job so far, read from the ledger: 0 until it completes, then what the providers were paid at their own price (fee included), less any refund; work + redundancy + canary + fee */
  charged: string;
  /** what `charged` is made of */
  chargedBreakdown: JobChargesDto;
  redundancy: number;
  verification: JobVerificationDto;
  deadlineAt: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string | null;
  /** why the job ended: always set on FAILED and EXPIRED, null otherwise */
  error?: JobErrorDto | null;
  resultHash?: string | null;
  accountId: string;
  accountAddress: string;
  spec: Record<string, unknown>;
  events: JobEventDto[];
  attempts: AttemptDto[];
  verdict: VerdictDto;
  ledger: LedgerMoveDto[];
  result?: Record<string, unknown> | null;
};

export type AdminAccountDto = {
  id: string;
  address: string;
  role: "DEVELOPER" | "ADMIN";
  balance: string;
  reserved: string;
  apiKeys: number;
  jobs: number;
  openJobs: number;
  createdAt: string;
};

export type AdminAccountDetailDto = {
  id: string;
  address: string;
  role: "DEVELOPER" | "ADMIN";
  balance: string;
  reserved: string;
  apiKeys: number;
  jobs: number;
  openJobs: number;
  createdAt: string;
  keys: ApiKeyDto[];
};

export type AuditLogEntryDto = {
  /** increasing with time */
  id: string;
  at: string;
  /** the admin account's address */
  actor: string;
  /** the API key used, if any */
  apiKeyId: string | null;
  /** provider.ban, provider.unban, provider.drain, provider.undrain, job.cancel, api_key.revoke, slash.cancel, setting.change */
  action: string;
  /** a peer id, job id, API key id, slash id or setting key */
  target: string;
  reason: string;
  /** the target before */
  before: Record<string, unknown> | null;
  /** the target after */
  after: Record<string, unknown> | null;
};

export type AuditLogPageDto = {
  items: AuditLogEntryDto[];
  /** pass as cursor for older entries; null at the end */
  nextCursor: string | null;
};

export type EpochDto = {
  id: number;
  state: "OPEN" | "CLOSED" | "POSTED" | "FUNDING" | "FINALIZED";
  startedAt: string;
  closedAt?: string | null;
  root?: string | null;
  fileHash?: string | null;
  txHash?: string | null;
};

export type AuditDto = {
  ok: boolean;
  at: string;
  entries: number;
  /** sum of every ledger entry; 0 when the ledger balances */
  entriesTotal: string;
  unbalancedTransactions: number;
  mismatchedBalances: number;
  negativeDeveloperBalances: number;
  problems: string[];
};

export type SettingDto = {
  key: string;
  label: string;
  /** the value as text */
  value?: string | null;
  note: string;
  /** admins may change it at run time (PUT /v1/admin/settings/:key) */
  editable: boolean;
  /** editable settings: the value itself (object or number) */
  current?: Record<string, unknown> | number;
  /** editable settings: the configured default */
  default?: Record<string, unknown> | number;
  /** editable settings: an admin override is in force */
  overridden?: boolean;
  updatedBy?: string | null;
  updatedAt?: string | null;
};

export type PutSettingDto = {
  /** why: kept with the action in the audit log (GET /v1/admin/audit-log) */
  reason: string;
  /** verification: { mode: "none" | "redundant", k?: 2..3, canaryRate?: 0..0.5 }; platformFeeBps: 0..10000; epochSeconds: 1..2592000; null returns to the configured default */
  value: Record<string, unknown> | number | null;
};

export type RewardEpochDto = {
  epoch: number;
  /** FUNDING: past its challenge window, being debited from the escrow; FINALIZED: funded and claimable */
  state: "OPEN" | "CLOSED" | "POSTED" | "FUNDING" | "FINALIZED";
  startedAt: string;
  closedAt?: string | null;
  /** Merkle root of cumulative earnings */
  root?: string | null;
  /** keccak256 of the epoch file */
  fileHash?: string | null;
  /** the postRoot transaction */
  txHash?: string | null;
  /** base units the epoch adds */
  total?: string | null;
  /** base units the distributor holds for it (claimable once this equals total) */
  funded?: string | null;
  /** why its settlement waits (a shortfall someone must fund, a veto an operator must look at) */
  blockedReason?: string | null;
};

export type ChainInfoDto = {
  chainId: number;
  /** the JSON-RPC URL agents should use (PUBLIC_CHAIN_RPC_URL); null when none is published */
  rpcUrl?: string | null;
  /** true for the local dev chain (its state is lost on exit) */
  dev: boolean;
  token?: string | null;
  distributor: string;
  escrow: string;
  /** ProviderStaking (stake, unbond, slash) */
  staking?: string | null;
};

export type ClaimTicketDto = {
  epoch: number;
  index: number;
  account: string;
  /** base units earned since the first epoch */
  cumulativeAmount: string;
  proof: string[];
  distributor?: string | null;
  chainId?: number | null;
};

export type EvidenceSlashBeneficiaryDto = {
  /** the developer account address compensated */
  account: string;
  /** its weight: the cost (base units) of its jobs the provider ran */
  weight: string;
};

export type EvidenceSlashDto = {
  state: "PROPOSED" | "FROZEN" | "SENT" | "EXECUTED" | "CANCELLING" | "CANCELLED" | "EXPIRED" | "FAILED";
  /** the operator address whose stake is frozen and slashed */
  operatorAddress: string;
  /** base units: requested, then frozen on chain, then slashed */
  amount: string;
  /** who the slashed tokens compensate (paid into JobEscrow), largest first; empty = burnt */
  beneficiaries: EvidenceSlashBeneficiaryDto[];
  /** not executed before this */
  executeAfter: string;
  /** ProviderStaking.proposeSlash (freezes) */
  proposeTxHash?: string | null;
  /** ProviderStaking.executeSlash */
  executeTxHash?: string | null;
  /** ProviderStaking.cancelSlash */
  cancelTxHash?: string | null;
  /** base units paid to the developers */
  compensated?: string | null;
  /** base units burnt */
  burnt?: string | null;
};

export type EvidenceDto = {
  /** keccak256 of the canonical JSON of `bundle` without its `disclosed` part (the same for the full and the redacted form): the evidenceHash of ProviderStaking.SlashProposed and Slashed */
  hash: string;
  /** the evidence bundle (canonical JSON: the job, the accused signed receipt, the reference, tensors by digest and models by hash; `disclosed` holds the bytes the caller may see); `gpumesh verify-evidence` re-checks it offline */
  bundle: string;
  /** full: every byte disclosed (the caller is the job's owner, the accused operator or an admin); redacted: inputs, outputs and private model weights withheld */
  access: "full" | "redacted";
  /** what the bundle withholds, in words (empty when full) */
  withheld: string[];
  jobId: string;
  /** the convicted provider */
  peerId: string;
  createdAt: string;
  /** the slash proposal citing it */
  slash?: EvidenceSlashDto | null;
};

/** a job's verification policy: none (one provider) or redundant on k distinct operators, plus a canary rate; `verified` asks for a checked result even with one copy */
export type VerificationPolicyRequest = {
  mode: "none" | "redundant";
  k?: number;
  canaryRate?: number;
  verified?: boolean;
};

/** a matmul job spec as submitted: the spec, and optionally its verification policy */
export type MatmulJobSubmission = {
  kind: "matmul";
  version: 1;
  inputs: ({
    name: string;
    dtype: "float32" | "int32" | "bool";
    shape: number[];
    data: string;
  } | {
    name: string;
    ref: string;
  })[];
  requirements?: {
    minVramMiB?: number;
    gpuModels?: string[];
    backends?: ("tensorflow-gpu" | "webgpu" | "tensorflow" | "wasm" | "cpu")[];
  };
  maxPricePerUnit: string;
  redundancy?: number;
  deadlineSeconds?: number;
  params?: {
    transposeA?: boolean;
    transposeB?: boolean;
  };
  verification?: VerificationPolicyRequest;
};

/** a inference job spec as submitted: the spec, and optionally its verification policy */
export type InferenceJobSubmission = {
  kind: "inference";
  version: 1;
  inputs: ({
    name: string;
    dtype: "float32" | "int32" | "bool";
    shape: number[];
    data: string;
  } | {
    name: string;
    ref: string;
  })[];
  requirements?: {
    minVramMiB?: number;
    gpuModels?: string[];
    backends?: ("tensorflow-gpu" | "webgpu" | "tensorflow" | "wasm" | "cpu")[];
  };
  maxPricePerUnit: string;
  redundancy?: number;
  deadlineSeconds?: number;
  model: {
    hash: string;
    format: "layers" | "graph";
  };
  params?: {
    batchSize?: number;
  };
  outputs?: string[];
  verification?: VerificationPolicyRequest;
};

/** a train job spec as submitted: the spec, and optionally its verification policy */
export type TrainJobSubmission = {
  kind: "train";
  version: 1;
  inputs: ({
    name: string;
    dtype: "float32" | "int32" | "bool";
    shape: number[];
    data: string;
  } | {
    name: string;
    ref: string;
  })[];
  requirements?: {
    minVramMiB?: number;
    gpuModels?: string[];
    backends?: ("tensorflow-gpu" | "webgpu" | "tensorflow" | "wasm" | "cpu")[];
  };
  maxPricePerUnit: string;
  redundancy?: number;
  deadlineSeconds?: number;
  model: {
    hash: string;
    format: "layers" | "graph";
  };
  params: {
    epochs: number;
    batchSize: number;
    learningRate: number;
    optimizer: "sgd" | "adam";
    loss: "meanSquaredError" | "categoricalCrossentropy" | "binaryCrossentropy";
  };
  verification?: VerificationPolicyRequest;
};

/** what POST /v1/jobs takes: a job spec, with an optional `verification` policy beside it */
export type JobSubmission = MatmulJobSubmission | InferenceJobSubmission | TrainJobSubmission;

/** what POST /v1/jobs/batch takes */
export type BatchJobSubmission = {
  jobs: JobSubmission[];
};
