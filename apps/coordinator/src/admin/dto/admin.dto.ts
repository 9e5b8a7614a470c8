import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  Allow,
  IsIn,
  IsInt,
  IsISO8601,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  Max,
  Min,
} from 'class-validator';
import { JobDto, JobEventDto, ListJobsQueryDto } from '../../jobs/dto/job.dto.js';
import { JOB_STATES } from '../../jobs/job-state.js';
import { ProviderDto } from '../../providers/dto/provider.dto.js';
import { ApiKeyDto } from '../../auth/dto/auth.dto.js';

export const PROVIDER_STATUSES = ['ONLINE', 'OFFLINE', 'DRAINING', 'BANNED'] as const;
export type ProviderStatusName = (typeof PROVIDER_STATUSES)[number];
export const ATTEMPT_STATES = ['OFFERED', 'ACCEPTED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'LOST'] as const;
export const EPOCH_STATES = ['OPEN', 'CLOSED', 'POSTED', 'FUNDING', 'FINALIZED'] as const;
export const ACCOUNT_ROLES = ['DEVELOPER', 'ADMIN'] as const;
export const JOB_KINDS = ['matmul', 'inference', 'train'] as const;

export const SLASH_STATES = [
  'PROPOSED',
  'FROZEN',
  'SENT',
  'EXECUTED',
  'CANCELLING',
  'CANCELLED',
  'EXPIRED',
  'FAILED',
] as const;
export type SlashStateName = (typeof SLASH_STATES)[number];

// ---------- requests ----------

export class AdminSignInDto {
  @ApiProperty({ description: 'an admin API key (gmk_…) with the admin scope' })
  @IsString()
  @Length(8, 200)
  apiKey: string;
}

export class AdminProvidersQueryDto {
  @ApiPropertyOptional({ enum: PROVIDER_STATUSES })
  @IsOptional()
  @IsIn(PROVIDER_STATUSES)
  status?: ProviderStatusName;

  @ApiPropertyOptional({ minimum: 1, maximum: 1000, default: 500 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;
}

/** The developer job filters, plus the account and provider filters only admins have. */
export class AdminJobsQueryDto extends ListJobsQueryDto {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID()
  accountId?: string;

  @ApiPropertyOptional({ description: 'a provider peer id: jobs with an attempt on it' })
  @IsOptional()
  @IsString()
  @Matches(/^[1-9A-HJ-NP-Za-km-z]{20,100}$/, { message: 'providerId must be a libp2p peer id' })
  providerId?: string;
}

export class AdminSlashesQueryDto {
  @ApiPropertyOptional({ description: `comma-separated states: ${SLASH_STATES.join(', ')}` })
  @IsOptional()
  @Matches(new RegExp(`^(${SLASH_STATES.join('|')})(,(${SLASH_STATES.join('|')}))*$`), {
    message: `state must be comma-separated states among ${SLASH_STATES.join(', ')}`,
  })
  state?: string;

  @ApiPropertyOptional({ description: 'a provider peer id' })
  @IsOptional()
  @IsString()
  @Matches(/^[1-9A-HJ-NP-Za-km-z]{20,100}$/, { message: 'peerId must be a libp2p peer id' })
  peerId?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 200 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit?: number;
}

/** Why an admin acts: required for every action and kept in the audit log. */
export class AdminActionDto {
  @ApiProperty({
    minLength: 3,
    maxLength: 500,
    description: 'why: kept with the action in the audit log (GET /v1/admin/audit-log)',
    example: 'maintenance window: GPU driver upgrade',
  })
  @IsString()
  @Length(3, 500)
  @Matches(/\S.*\S/s, { message: 'reason must say why (at least 3 characters, not only spaces)' })
  reason: string;
}

export const UNBAN_REPUTATION = ['keep', 'probation', 'restore'] as const;
export type UnbanReputation = (typeof UNBAN_REPUTATION)[number];

/** `POST /v1/admin/providers/:peerId/unban`. */
export class UnbanDto extends AdminActionDto {
  @ApiPropertyOptional({
    enum: UNBAN_REPUTATION,
    description:
      'the score after the ban is lifted: keep (unchanged, the default when the ban did not lower it, ' +
      'e.g. an admin ban), probation (0.3, the default after a ban for wrong results) or restore (the ' +
      'score it had before the ban)',
  })
  @IsOptional()
  @IsIn(UNBAN_REPUTATION)
  reputation?: UnbanReputation;
}

/** `GET /v1/admin/audit-log`: filters, newest first, paged by cursor. */
export class AuditLogQueryDto {
  @ApiPropertyOptional({ description: 'an action, e.g. provider.ban (see AuditLogEntry.action)' })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z_]+\.[a-z_]+$/, { message: 'action must look like provider.ban' })
  action?: string;

  @ApiPropertyOptional({ description: 'a target: a peer id, job id, API key id, slash id or setting key' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  target?: string;

  @ApiPropertyOptional({ description: "an actor: the admin account's address" })
  @IsOptional()
  @Matches(/^0x[0-9a-fA-F]{40}$/, { message: 'actor must be a 0x-prefixed address' })
  actor?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'entries at or after this time' })
  @IsOptional()
  @IsISO8601({ strict: true })
  since?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'entries before this time' })
  @IsOptional()
  @IsISO8601({ strict: true })
  until?: string;

  @ApiPropertyOptional({ description: 'nextCursor of the previous page' })
  @IsOptional()
  @Matches(/^[1-9][0-9]{0,18}$/, { message: 'cursor is not a cursor this API returned' })
  cursor?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit?: number;
}

/** `PUT /v1/admin/settings/:key`: the new value (its shape depends on the key), or null to reset. */
export class PutSettingDto extends AdminActionDto {
  @ApiProperty({
    nullable: true,
    description:
      'verification: { mode: "none" | "redundant", k?: 2..3, canaryRate?: 0..0.5 }; platformFeeBps: 0..10000; ' +
      'epochSeconds: 1..2592000; null returns to the configured default',
    oneOf: [{ type: 'object', additionalProperties: true }, { type: 'number' }],
  })
  @Allow()
  value: unknown;
}

// ---------- responses ----------

export class AdminSessionDto {
  @ApiProperty() accountId: string;
  @ApiProperty() address: string;
  @ApiProperty({ enum: ['DEVELOPER', 'ADMIN'] }) role: string;
  @ApiProperty({ type: [String] }) scopes: string[];
  @ApiProperty({ enum: ['cookie', 'api-key', 'session'] }) via: string;
  @ApiProperty({ description: 'may ban, drain, cancel and revoke (the admin scope)' }) canAct: boolean;
  @ApiPropertyOptional({ nullable: true, type: String }) expiresAt: string | null;
  @ApiProperty({
    description: 'the header cookie-authenticated changes must carry',
    example: 'x-gpumesh-csrf',
  })
  csrfHeader: string;
}

export class CountByLabelDto {
  @ApiProperty() label: string;
  @ApiProperty() count: number;
}

export class JobsPerMinuteDto {
  @ApiProperty() minute: string;
  @ApiProperty() submitted: number;
  @ApiProperty() completed: number;
}

/** `GET /v1/admin/export/{table}`: a time window (of creation; of start for epochs). */
export class ExportQueryDto {
  @ApiPropertyOptional({ enum: ['csv'], description: 'the only format (the route answers text/csv)' })
  @IsOptional()
  @IsIn(['csv'])
  format?: 'csv';

  @ApiPropertyOptional({ format: 'date-time', description: 'rows created at or after this time' })
  @IsOptional()
  @IsISO8601({ strict: true })
  since?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'rows created before this time' })
  @IsOptional()
  @IsISO8601({ strict: true })
  until?: string;

  @ApiPropertyOptional({
    description: 'jobs only: comma-separated states (as GET /v1/admin/jobs)',
    example: 'COMPLETED,FAILED',
  })
  @IsOptional()
  @IsString()
  @Matches(new RegExp(`^(${JOB_STATES.join('|')})(,(${JOB_STATES.join('|')}))*$`), {
    message: `state must be a comma-separated list of ${JOB_STATES.join(', ')}`,
  })
  state?: string;

  @ApiPropertyOptional({ enum: JOB_KINDS, description: 'jobs only' })
  @IsOptional()
  @IsIn(JOB_KINDS)
  kind?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'jobs only: of this account' })
  @IsOptional()
  @IsUUID()
  accountId?: string;

  @ApiPropertyOptional({ description: 'jobs only: with an attempt on this provider peer id' })
  @IsOptional()
  @IsString()
  @Matches(/^[1-9A-HJ-NP-Za-km-z]{20,100}$/, { message: 'providerId must be a libp2p peer id' })
  providerId?: string;
}

export const HISTORY_RANGES = ['30m', '24h', '7d'] as const;
export type HistoryRange = (typeof HISTORY_RANGES)[number];

/** `GET /v1/admin/history`: which range. */
export class HistoryQueryDto {
  @ApiPropertyOptional({
    enum: HISTORY_RANGES,
    default: '24h',
    description: '30m in 1-minute buckets, 24h in 5-minute buckets, 7d in 1-hour buckets',
  })
  @IsOptional()
  @IsIn(HISTORY_RANGES)
  range?: HistoryRange;
}

/** One bucket of the history: gauges averaged over the minutes it holds, counts summed. */
export class HistoryPointDto {
  @ApiProperty({ format: 'date-time', description: 'start of the bucket' }) at: string;
  @ApiProperty({ description: 'minutes with a stored row in the bucket' }) minutes: number;
  @ApiProperty({
    type: Number,
    nullable: true,
    description:
      'ONLINE providers seen in the last 2 minutes, average; null when the bucket holds only minutes rebuilt from the stored jobs (which do not say)',
  })
  providersOnline: number | null;
  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'slots of online providers, average (null: as providersOnline)',
  })
  slots: number | null;
  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'free slots of online providers, average (null: as providersOnline)',
  })
  freeSlots: number | null;
  @ApiProperty({ description: 'jobs waiting for a provider, average' }) queueDepth: number;
  @ApiProperty({ description: 'jobs waiting for a provider, highest sample' }) queueDepthMax: number;
  @ApiProperty({ description: 'jobs dispatched, running or verifying, average' }) activeJobs: number;
  @ApiProperty({ description: 'jobs submitted in the bucket' }) submitted: number;
  @ApiProperty({ description: 'jobs completed in the bucket' }) completed: number;
  @ApiProperty({ description: 'jobs failed or expired in the bucket' }) failed: number;
}

export class HistoryDto {
  @ApiProperty({ enum: HISTORY_RANGES }) range: string;
  @ApiProperty({ format: 'date-time', description: 'the first moment the range covers' }) since: string;
  @ApiProperty({ description: 'the width of a bucket' }) bucketSeconds: number;
  @ApiProperty({ description: 'how long the minute rows are kept' }) retentionSeconds: number;
  @ApiProperty({
    type: [HistoryPointDto],
    description: 'the buckets that hold data, oldest first (a bucket without any is left out)',
  })
  points: HistoryPointDto[];
}

export class OverviewDto {
  @ApiProperty() at: string;
  @ApiProperty({ description: 'ONLINE providers seen in the last 2 minutes' }) providersOnline: number;
  @ApiProperty({ type: [CountByLabelDto] }) providersByStatus: CountByLabelDto[];
  @ApiProperty({ type: [CountByLabelDto], description: 'GPUs of online providers by model' })
  gpusByModel: CountByLabelDto[];
  @ApiProperty() slots: number;
  @ApiProperty() freeSlots: number;
  @ApiProperty({ description: 'jobs submitted in the last 60 s' }) jobsPerMinute: number;
  @ApiProperty({ type: [JobsPerMinuteDto], description: 'the last 30 minutes' })
  jobsPerMinuteSeries: JobsPerMinuteDto[];
  @ApiProperty({ description: 'window of the rates and latencies, seconds' }) windowSeconds: number;
  @ApiProperty() finished: number;
  @ApiPropertyOptional({ nullable: true, type: Number, description: 'completed / finished, 0..1' })
  successRate: number | null;
  @ApiPropertyOptional({
    nullable: true,
    type: Number,
    description: 'disagreeing redundant results / verified',
  })
  verificationFailureRate: number | null;
  @ApiProperty({ description: 'jobs waiting for a provider (QUEUED)' }) queueDepth: number;
  @ApiProperty({ description: 'jobs dispatched, running or verifying' }) activeJobs: number;
  @ApiPropertyOptional({
    nullable: true,
    type: 'object',
    additionalProperties: { type: 'integer' },
    description: 'BullMQ dispatch queue counts',
  })
  dispatchQueue: Record<string, number> | null;
  @ApiPropertyOptional({ nullable: true, type: Number }) latencyP50Seconds: number | null;
  @ApiPropertyOptional({ nullable: true, type: Number }) latencyP99Seconds: number | null;
  @ApiPropertyOptional({ nullable: true, type: Number }) epoch: number | null;
  @ApiProperty() epochStartedAt: string;
  @ApiProperty({ description: 'base units credited to providers this epoch' }) earningsThisEpoch: string;
  @ApiProperty({
    description: 'platform fees credited straight to the platform by settlements this epoch, base units',
  })
  feesThisEpoch: string;
  @ApiProperty({
    description:
      'platform fees charged on provider payments this epoch (including those held with unvested credits), base units',
  })
  feesChargedThisEpoch: string;
  @ApiProperty({
    description:
      'the part of the fees of the jobs completed this epoch that funds canary jobs (their verification.canaryFee), base units',
  })
  canaryShareThisEpoch: string;
}

export class AdminProviderDto extends ProviderDto {
  @ApiProperty() address: string;
  @ApiProperty({ description: 'seen in the last 2 minutes' }) live: boolean;
}

export class ProviderAttemptDto {
  @ApiProperty() jobId: string;
  @ApiProperty({ enum: JOB_KINDS }) kind: string;
  @ApiProperty({ enum: JOB_STATES }) jobState: string;
  @ApiProperty() attempt: number;
  @ApiProperty({ enum: ATTEMPT_STATES }) state: string;
  @ApiPropertyOptional({ nullable: true, type: String }) error: string | null;
  @ApiProperty() offeredAt: string;
  @ApiPropertyOptional({ nullable: true, type: String }) finishedAt: string | null;
}

export class StakeDto {
  @ApiProperty({ description: 'true when the stake was read from ProviderStaking' }) available: boolean;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'bonded base units' })
  bonded: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'unbonding base units (still slashable)',
  })
  unbonding: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'base units frozen by pending slash proposals (never withdrawn while they are pending)',
  })
  frozen: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) unbondingEndsAt: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'the ProviderStaking contract' })
  staking: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'why no stake is shown (no chain, ...)' })
  note: string | null;
}

export class SlashBeneficiaryDto {
  @ApiProperty({ description: 'the developer account address compensated' }) account: string;
  @ApiProperty({ description: 'its weight: the cost (base units) of its jobs the provider ran' })
  weight: string;
}

export class SlashDto {
  @ApiProperty() id: string;
  @ApiProperty() peerId: string;
  @ApiProperty({ description: 'the operator address whose stake is frozen and slashed' })
  operatorAddress: string;
  @ApiProperty() evidenceId: string;
  @ApiProperty({
    description:
      'keccak256 of the evidence bundle (public: GET /v1/evidence/{hash}); cited by the on-chain SlashProposed and Slashed events',
  })
  evidenceHash: string;
  @ApiProperty({
    description: 'base units: requested, then frozen on chain (FROZEN), then really slashed (EXECUTED)',
  })
  amount: string;
  @ApiProperty() reason: string;
  @ApiProperty({
    enum: SLASH_STATES,
    description:
      'PROPOSED (being frozen on chain) → FROZEN (stake frozen; review window) → SENT → EXECUTED; an admin cancel: CANCELLING → CANCELLED',
  })
  state: string;
  @ApiProperty({
    type: [SlashBeneficiaryDto],
    description: 'developers the slash compensates (through the escrow), largest first; empty = burnt',
  })
  beneficiaries: SlashBeneficiaryDto[];
  @ApiProperty({ description: 'executed after this unless an admin cancels it first' }) executeAfter: string;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'the proposeSlash transaction (freeze)' })
  proposeTxHash: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'the executeSlash transaction' })
  txHash: string | null;
  @ApiPropertyOptional({ nullable: true, type: Number }) nonce: number | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'the cancelSlash transaction (unfreeze)',
  })
  cancelTxHash: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'base units paid to the developers' })
  compensated: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'base units burnt' })
  burnt: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) error: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'the admin who cancelled it' })
  reviewedBy: string | null;
  @ApiProperty() createdAt: string;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'when the chain froze the stake' })
  frozenAt: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) executedAt: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) cancelledAt: string | null;
}

export class ReputationEventDto {
  @ApiProperty() id: string;
  @ApiProperty({ description: 'what moved the score (verification, completion, deadline, ...)' })
  kind: string;
  @ApiProperty() delta: number;
  @ApiProperty({ description: 'the score after this event' }) score: number;
  @ApiPropertyOptional({ nullable: true, type: String }) jobId: string | null;
  @ApiPropertyOptional({ nullable: true, type: 'object', additionalProperties: true }) detail: unknown;
  @ApiProperty() createdAt: string;
}

export class ProviderPlacementDto {
  @ApiProperty({ description: 'directly connected to this process (only those get offers)' })
  connected: boolean;
  @ApiProperty({ description: "in this process's placement index (connected, with a fresh advert)" })
  placeable: boolean;
  @ApiProperty({ enum: ['closed', 'open', 'half-open'], description: 'circuit breaker (losses open it)' })
  breaker: 'closed' | 'open' | 'half-open';
  @ApiProperty({ description: 'losses counted toward opening the breaker' }) breakerLosses: number;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'when an open breaker lets an offer through',
  })
  breakerOpenUntil: string | null;
  @ApiProperty({ description: 'slow start: jobs it may hold at once (earned by results, halved by losses)' })
  concurrencyWindow: number;
  @ApiPropertyOptional({ nullable: true, type: Number, description: 'slots its latest advert claims' })
  advertisedSlots: number | null;
}

export class AdminProviderDetailDto extends AdminProviderDto {
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'the latest signed advert' })
  advert: unknown;
  @ApiProperty() createdAt: string;
  @ApiProperty({ description: 'base units earned (ledger)' }) earned: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'number' } })
  attemptCounts: Record<string, number>;
  @ApiProperty({
    description:
      "input-fault claims (the job's input cannot run: BAD_INPUT, MODEL_LOAD_FAILED, UNSUPPORTED_OP) that a verified result of the job disproved; each cost reputation (kind disproved_input_fault) and put the provider on probation",
  })
  disprovedInputFaults: number;
  @ApiProperty({ type: [ProviderAttemptDto] }) recentAttempts: ProviderAttemptDto[];
  @ApiPropertyOptional({ nullable: true, type: String }) bannedAt: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) banReason: string | null;
  @ApiProperty({ type: StakeDto, description: "the operator address's stake on ProviderStaking" })
  stake: StakeDto;
  @ApiProperty({ type: [SlashDto], description: 'slash proposals against this provider, newest first' })
  slashes: SlashDto[];
  @ApiProperty({ type: [ReputationEventDto], description: 'reputation history, oldest first (last 200)' })
  reputationHistory: ReputationEventDto[];
  @ApiProperty({
    type: ProviderPlacementDto,
    description:
      "how this process's placement sees the provider (breaker, slow-start window); each worker keeps its own",
  })
  placement: ProviderPlacementDto;
}

export class AdminJobDto extends JobDto {
  @ApiProperty() accountId: string;
  @ApiProperty() accountAddress: string;
}

export class AdminJobPageDto {
  @ApiProperty({ type: [AdminJobDto] }) items: AdminJobDto[];
  @ApiPropertyOptional({ nullable: true, type: String }) nextCursor: string | null;
}

export class AttemptDto {
  @ApiProperty() attempt: number;
  @ApiPropertyOptional({ nullable: true, type: String }) providerId: string | null;
  @ApiProperty({ enum: ATTEMPT_STATES }) state: string;
  @ApiPropertyOptional({ nullable: true, type: String }) outputHash: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) error: string | null;
  @ApiPropertyOptional({ nullable: true, type: 'object', additionalProperties: true }) receipt: unknown;
  @ApiProperty() offeredAt: string;
  @ApiPropertyOptional({ nullable: true, type: String }) startedAt: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) finishedAt: string | null;
}

export class VerdictDto {
  @ApiProperty({ enum: ['pending', 'agreed', 'single', 'disagreed', 'none'] }) outcome: string;
  @ApiProperty() detail: string;
}

export class LedgerMoveDto {
  @ApiProperty() account: string;
  @ApiProperty() amount: string;
  @ApiProperty() kind: string;
  @ApiProperty() createdAt: string;
}

export class AdminJobDetailDto extends AdminJobDto {
  @ApiProperty({ type: 'object', additionalProperties: true }) spec: unknown;
  @ApiProperty({ type: [JobEventDto] }) events: JobEventDto[];
  @ApiProperty({ type: [AttemptDto] }) attempts: AttemptDto[];
  @ApiProperty({ type: VerdictDto }) verdict: VerdictDto;
  @ApiProperty({ type: [LedgerMoveDto] }) ledger: LedgerMoveDto[];
  @ApiPropertyOptional({ nullable: true, type: 'object', additionalProperties: true }) result: unknown;
}

export class AdminAccountDto {
  @ApiProperty() id: string;
  @ApiProperty() address: string;
  @ApiProperty({ enum: ACCOUNT_ROLES }) role: string;
  @ApiProperty() balance: string;
  @ApiProperty() reserved: string;
  @ApiProperty() apiKeys: number;
  @ApiProperty() jobs: number;
  @ApiProperty() openJobs: number;
  @ApiProperty() createdAt: string;
}

export class AdminAccountDetailDto extends AdminAccountDto {
  @ApiProperty({ type: [ApiKeyDto] }) keys: ApiKeyDto[];
}

export class EpochDto {
  @ApiProperty() id: number;
  @ApiProperty({ enum: EPOCH_STATES }) state: string;
  @ApiProperty() startedAt: string;
  @ApiPropertyOptional({ nullable: true, type: String }) closedAt: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) root: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) fileHash: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) txHash: string | null;
}

export class AuditDto {
  @ApiProperty() ok: boolean;
  @ApiProperty() at: string;
  @ApiProperty() entries: number;
  @ApiProperty({ description: 'sum of every ledger entry; 0 when the ledger balances' }) entriesTotal: string;
  @ApiProperty() unbalancedTransactions: number;
  @ApiProperty() mismatchedBalances: number;
  @ApiProperty() negativeDeveloperBalances: number;
  @ApiProperty({ type: [String] }) problems: string[];
}

export class SettingDto {
  @ApiProperty() key: string;
  @ApiProperty() label: string;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'the value as text' }) value:
    string | null;
  @ApiProperty() note: string;
  @ApiProperty({ description: 'admins may change it at run time (PUT /v1/admin/settings/:key)' })
  editable: boolean;
  @ApiPropertyOptional({
    description: 'editable settings: the value itself (object or number)',
    oneOf: [{ type: 'object', additionalProperties: true }, { type: 'number' }],
  })
  current?: unknown;
  @ApiPropertyOptional({
    description: 'editable settings: the configured default',
    oneOf: [{ type: 'object', additionalProperties: true }, { type: 'number' }],
  })
  default?: unknown;
  @ApiPropertyOptional({ description: 'editable settings: an admin override is in force' })
  overridden?: boolean;
  @ApiPropertyOptional({ nullable: true, type: String }) updatedBy?: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) updatedAt?: string | null;
}

export class AuditLogEntryDto {
  @ApiProperty({ description: 'increasing with time' })
  id: string;

  @ApiProperty({ format: 'date-time' })
  at: string;

  @ApiProperty({ description: "the admin account's address" })
  actor: string;

  @ApiProperty({ type: String, nullable: true, format: 'uuid', description: 'the API key used, if any' })
  apiKeyId: string | null;

  @ApiProperty({
    description:
      'provider.ban, provider.unban, provider.drain, provider.undrain, job.cancel, api_key.revoke, ' +
      'slash.cancel, setting.change',
  })
  action: string;

  @ApiProperty({ description: 'a peer id, job id, API key id, slash id or setting key' })
  target: string;

  @ApiProperty()
  reason: string;

  @ApiProperty({
    nullable: true,
    type: 'object',
    additionalProperties: true,
    description: 'the target before',
  })
  before: Record<string, unknown> | null;

  @ApiProperty({
    nullable: true,
    type: 'object',
    additionalProperties: true,
    description: 'the target after',
  })
  after: Record<string, unknown> | null;
}

export class AuditLogPageDto {
  @ApiProperty({ type: [AuditLogEntryDto] })
  items: AuditLogEntryDto[];

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'pass as cursor for older entries; null at the end',
  })
  nextCursor: string | null;
}
