import { Inject, Injectable, type MessageEvent } from '@nestjs/common';
import type { Observable } from 'rxjs';
import type {
  JobAttempt,
  Provider,
  ProviderStatus,
  ReputationEvent,
  SlashProposal,
  SlashState,
} from '#prisma';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { DomainError } from '../common/domain-error.js';
import type { Principal } from '../auth/principal.js';
import { AuthService } from '../auth/auth.service.js';
import { mapApiKey, type ApiKeyDto } from '../auth/dto/auth.dto.js';
import { JobsService } from '../jobs/jobs.service.js';
import { JOB_STATES, type JobState } from '../jobs/job-state.js';
import { decodeCursor, encodeCursor, mapJob, mapJobEvent } from '../jobs/dto/job.dto.js';
import { NO_CHARGES } from '../ledger/job-charges.js';
import { mapProvider } from '../providers/dto/provider.dto.js';
import { LedgerRepository } from '../ledger/ledger.repository.js';
import { LedgerAccounts } from '../ledger/accounts.js';
import { ProviderViewService } from '../p2p/provider-view.service.js';
import { JobEventStream } from '../jobs/job-event-stream.js';
import { FLOAT_RELATIVE_L2_TOLERANCE } from '../verification/compare-outputs.js';
import { SlashRepository, slashBeneficiaries } from '../settlement/slash.repository.js';
import { StakeReader } from '../settlement/stake-reader.js';
import { SettingsService, type SettingView } from '../settings/settings.service.js';
import { SETTING_LABELS } from '../settings/settings.js';
import { ReputationService } from '../reputation/reputation.service.js';
import { AdminRepository } from './admin.repository.js';
import { ONLINE_WINDOW_MS } from './admin-stats.service.js';
import type {
  AdminAccountDetailDto,
  AdminAccountDto,
  AdminJobDetailDto,
  AdminJobDto,
  AdminJobPageDto,
  AdminJobsQueryDto,
  AdminProviderDetailDto,
  AdminProviderDto,
  AdminProvidersQueryDto,
  AdminSlashesQueryDto,
  AttemptDto,
  AuditDto,
  EpochDto,
  ReputationEventDto,
  SettingDto,
  SlashDto,
  StakeDto,
  VerdictDto,
} from './dto/admin.dto.js';

export type ProviderAction = 'ban' | 'unban' | 'drain';

const ACTION_STATUS: Record<ProviderAction, ProviderStatus> = {
  ban: 'BANNED',
  unban: 'ONLINE',
  drain: 'DRAINING',
};

/** Providers, jobs, accounts, epochs and settings as the admin dashboard sees and steers them. */
@Injectable()
export class AdminService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly repo: AdminRepository,
    private readonly ledger: LedgerRepository,
    private readonly auth: AuthService,
    private readonly jobs: JobsService,
    private readonly view: ProviderViewService,
    private readonly events: JobEventStream,
    private readonly slashRepo: SlashRepository,
    private readonly stakes: StakeReader,
    private readonly runtimeSettings: SettingsService,
    private readonly reputation: ReputationService,
  ) {}

  // ---- providers ----

  async providers(query: AdminProvidersQueryDto): Promise<AdminProviderDto[]> {
    const rows = await this.repo.providers({
      statuses: query.status ? [query.status] : undefined,
      limit: query.limit ?? 500,
    });
    const now = Date.now();
    return rows.map((p) => this.mapAdminProvider(p, now));
  }

  async provider(peerId: string): Promise<AdminProviderDetailDto> {
    const p = await this.repo.provider(peerId);
    if (!p) throw new DomainError('NOT_FOUND', `provider ${peerId} not found`);
    const earnedAccount = LedgerAccounts.providerEarned(peerId);
    const [attempts, counts, balances, slashes, history, stake] = await Promise.all([
      this.repo.providerAttempts(peerId, 50),
      this.repo.providerAttemptCounts(peerId),
      this.ledger.balances([earnedAccount]),
      this.slashRepo.list({ peerId, limit: 100 }),
      this.repo.reputationEvents(peerId, 200),
      this.stake(p.address),
    ]);
    return {
      ...this.mapAdminProvider(p, Date.now()),
      advert: p.advert,
      createdAt: p.createdAt.toISOString(),
      earned: (balances.get(earnedAccount) ?? 0n).toString(),
      attemptCounts: counts,
      recentAttempts: attempts.map((a) => ({
        jobId: a.jobId,
        kind: a.job.kind,
        jobState: a.job.state,
        attempt: a.attempt,
        state: a.state,
        error: a.error,
        offeredAt: a.offeredAt.toISOString(),
        finishedAt: a.finishedAt?.toISOString() ?? null,
      })),
      bannedAt: p.bannedAt?.toISOString() ?? null,
      banReason: p.banReason,
      stake,
      slashes: slashes.map(mapSlash),
      reputationHistory: history.map(mapReputationEvent),
      placement: this.view.placementState(peerId),
    };
  }

  /** The stake of a provider's address on ProviderStaking, or why it cannot be shown. */
  private async stake(address: string): Promise<StakeDto> {
    const view = await this.stakes.stakeOf(address);
    if (!view.available) {
      return {
        available: false,
        bonded: null,
        unbonding: null,
        frozen: null,
        unbondingEndsAt: null,
        staking: null,
        note: view.reason,
      };
    }
    const { stake } = view;
    return {
      available: true,
      bonded: stake.bonded.toString(),
      unbonding: stake.unbonding.toString(),
      frozen: stake.frozen.toString(),
      unbondingEndsAt:
        stake.unbondingEndsAt > 0 ? new Date(stake.unbondingEndsAt * 1000).toISOString() : null,
      staking: view.staking,
      note: null,
    };
  }

  // ---- slashes ----

  async slashes(query: AdminSlashesQueryDto): Promise<SlashDto[]> {
    const rows = await this.slashRepo.list({
      states: query.state ? (query.state.split(',') as SlashState[]) : undefined,
      peerId: query.peerId,
      limit: query.limit ?? 200,
    });
    return rows.map(mapSlash);
  }

  /**
   * Cancels a slash proposal during its review window (PROPOSED or FROZEN); records who did. One that
   * never reached the chain is CANCELLED at once; a frozen one becomes CANCELLING and the worker
   * cancels it on chain with the slasher key (CANCELLED once confirmed: the stake is unfrozen).
   */
  async cancelSlash(principal: Principal, id: string): Promise<SlashDto> {
    const cancelled = await this.slashRepo.cancel(id, principal.address);
    if (cancelled) return mapSlash(cancelled);
    const row = await this.slashRepo.get(id);
    if (!row) throw new DomainError('NOT_FOUND', `slash proposal ${id} not found`);
    throw new DomainError(
      'ILLEGAL_TRANSITION',
      `slash proposal ${id} is ${row.state}: only a PROPOSED or FROZEN slash can be cancelled`,
      { state: row.state },
    );
  }

  /**
   * Ban, unban or drain: the Provider row changes (so every process's placement view picks it up
   * within seconds, see ProviderViewService.refreshStatuses) and this process's view at once.
   * Draining stops new work; attempts already running finish.
   */
  async setProviderStatus(peerId: string, action: ProviderAction): Promise<AdminProviderDto> {
    const status = ACTION_STATUS[action];
    const updated = await this.repo.setProviderStatus(peerId, status);
    if (!updated) throw new DomainError('NOT_FOUND', `provider ${peerId} not found`);
    this.view.setStatus(peerId, status);
    // Lifting a ban clears bannedAt/banReason, restores a probation score and records it (issue 5).
    if (action === 'unban') await this.reputation.liftBan(peerId);
    return this.mapAdminProvider(updated, Date.now());
  }

  private mapAdminProvider(p: Provider, now: number): AdminProviderDto {
    return {
      ...mapProvider(p, this.view.liveFigures(p.peerId, p.address)),
      address: p.address,
      live: now - p.lastSeenAt.getTime() < ONLINE_WINDOW_MS,
    };
  }

  // ---- jobs ----

  async jobList(query: AdminJobsQueryDto): Promise<AdminJobPageDto> {
    const limit = query.limit ?? 50;
    const before = query.cursor ? decodeCursor(query.cursor) : undefined;
    if (before === null)
      throw new DomainError('VALIDATION_FAILED', 'cursor: is not a cursor this API returned');
    const states = query.state
      ? query.state.split(',').filter((s): s is JobState => (JOB_STATES as readonly string[]).includes(s))
      : undefined;
    const rows = await this.repo.jobs({
      states,
      accountId: query.accountId,
      providerId: query.providerId,
      kind: query.kind,
      before,
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const charges = await this.jobs.chargesOfMany(page);
    return {
      items: page.map((j) => ({
        ...mapJob(j, charges.get(j.id) ?? NO_CHARGES),
        accountId: j.accountId,
        accountAddress: j.account.address,
      })),
      nextCursor: rows.length > limit && last ? encodeCursor(last) : null,
    };
  }

  async job(id: string): Promise<AdminJobDetailDto> {
    const job = await this.repo.job(id);
    if (!job) throw new DomainError('JOB_NOT_FOUND', `job ${id} not found`);
    const [ledger, charges] = await Promise.all([this.repo.jobLedger(id), this.jobs.charges(job)]);
    return {
      ...mapJob(job, charges),
      accountId: job.accountId,
      accountAddress: job.account.address,
      spec: job.spec,
      events: job.events.map(mapJobEvent),
      attempts: job.attempts.map(mapAttempt),
      verdict: verdict(job.state, job.redundancy, job.attempts, job.error),
      ledger: ledger.map((e) => ({
        account: e.account,
        amount: e.amount.toString(),
        kind: e.kind,
        createdAt: e.createdAt.toISOString(),
      })),
      result: job.state === 'COMPLETED' ? summarizeResult(job.result) : null,
    };
  }

  /** A job's event stream after `lastEventId` (null: all), or null when there is nothing more to send. */
  jobEvents(id: string, lastEventId: bigint | null): Promise<Observable<MessageEvent> | null> {
    return this.events.open(id, lastEventId);
  }

  async cancelJob(principal: Principal, id: string): Promise<AdminJobDto> {
    const job = await this.jobs.cancel(principal, id);
    const account = await this.repo.account(job.accountId);
    return {
      ...mapJob(job, await this.jobs.charges(job)),
      accountId: job.accountId,
      accountAddress: account?.address ?? '',
    };
  }

  // ---- accounts ----

  async accounts(): Promise<AdminAccountDto[]> {
    const rows = await this.repo.accounts(500);
    const names = rows.flatMap((a) => [LedgerAccounts.available(a.id), LedgerAccounts.reserved(a.id)]);
    const [balances, open] = await Promise.all([
      this.ledger.balances(names),
      this.repo.openJobCounts(rows.map((a) => a.id)),
    ]);
    return rows.map((a) => ({
      id: a.id,
      address: a.address,
      role: a.role,
      balance: (balances.get(LedgerAccounts.available(a.id)) ?? 0n).toString(),
      reserved: (balances.get(LedgerAccounts.reserved(a.id)) ?? 0n).toString(),
      apiKeys: a._count.apiKeys,
      jobs: a._count.jobs,
      openJobs: open.get(a.id) ?? 0,
      createdAt: a.createdAt.toISOString(),
    }));
  }

  async account(id: string): Promise<AdminAccountDetailDto> {
    const account = await this.repo.account(id);
    if (!account) throw new DomainError('NOT_FOUND', `account ${id} not found`);
    const summary = (await this.accounts()).find((a) => a.id === id);
    const keys = await this.repo.apiKeys(id);
    return {
      ...(summary ?? {
        id,
        address: account.address,
        role: account.role,
        balance: '0',
        reserved: '0',
        apiKeys: keys.length,
        jobs: 0,
        openJobs: 0,
        createdAt: account.createdAt.toISOString(),
      }),
      keys: keys.map(mapApiKey),
    };
  }

  async revokeKey(principal: Principal, id: string): Promise<ApiKeyDto> {
    return mapApiKey(await this.auth.revokeApiKey(principal, id));
  }

  // ---- epochs, audit, settings ----

  async epochs(): Promise<EpochDto[]> {
    return (await this.repo.epochs(100)).map((e) => ({
      id: e.id,
      state: e.state,
      startedAt: e.startedAt.toISOString(),
      closedAt: e.closedAt?.toISOString() ?? null,
      root: e.root,
      fileHash: e.fileHash,
      txHash: e.txHash,
    }));
  }

  async audit(): Promise<AuditDto> {
    const a = await this.repo.ledgerAudit();
    const problems: string[] = [];
    if (a.entriesTotal !== 0n) problems.push(`ledger entries sum to ${a.entriesTotal}, not 0`);
    if (a.unbalancedTransactions > 0)
      problems.push(`${a.unbalancedTransactions} transaction(s) do not balance`);
    if (a.mismatchedBalances > 0)
      problems.push(`${a.mismatchedBalances} running balance(s) differ from their entries`);
    if (a.negativeDeveloperBalances > 0)
      problems.push(`${a.negativeDeveloperBalances} developer balance(s) are negative`);
    return {
      ok: problems.length === 0,
      at: new Date().toISOString(),
      entries: a.entries,
      entriesTotal: a.entriesTotal.toString(),
      unbalancedTransactions: a.unbalancedTransactions,
      mismatchedBalances: a.mismatchedBalances,
      negativeDeveloperBalances: a.negativeDeveloperBalances,
      problems,
    };
  }

  /** The run-time settings (editable by admins), then the configuration they cannot change here. */
  async settings(): Promise<SettingDto[]> {
    const c = this.config;
    const editable = (await this.runtimeSettings.list()).map(mapSetting);
    const fixed: SettingDto[] = [
      {
        key: 'FLOAT_TOLERANCE',
        label: 'Float comparison',
        value: `relative L2 ≤ ${FLOAT_RELATIVE_L2_TOLERANCE}`,
        note: 'redundant results must agree: integer tensors exactly, float tensors within this bound',
      },
      {
        key: 'DEFAULT_DEADLINE_SECONDS',
        label: 'Default job deadline (s)',
        value: String(c.DEFAULT_DEADLINE_SECONDS),
        note: 'when the spec sets none',
      },
      {
        key: 'DISPATCH_ATTEMPTS',
        label: 'Dispatch attempts',
        value: String(c.DISPATCH_ATTEMPTS),
        note: `retries with backoff from ${c.DISPATCH_BACKOFF_MS} ms before a job is dead-lettered`,
      },
      {
        key: 'OFFER_ACCEPT_TIMEOUT_MS',
        label: 'Offer accept timeout (ms)',
        value: String(c.OFFER_ACCEPT_TIMEOUT_MS),
        note: 'how long a provider has to accept an offer',
      },
      {
        key: 'SESSION_TTL_SECONDS',
        label: 'Session lifetime (s)',
        value: String(c.SESSION_TTL_SECONDS),
        note: 'dashboard and SIWE sessions',
      },
      { key: 'CHAIN_ID', label: 'Chain id', value: String(c.CHAIN_ID), note: 'for SIWE and settlement' },
    ].map((f) => ({ ...f, editable: false }));
    return [...editable, ...fixed];
  }

  /** Validates and stores a run-time setting (null resets it to the configured default). */
  async setSetting(principal: Principal, key: string, value: unknown): Promise<SettingDto> {
    return mapSetting(await this.runtimeSettings.set(key, value, principal.address));
  }
}

function settingText(view: SettingView): string {
  const v = view.value as unknown;
  switch (view.key) {
    case 'verification': {
      const p = view.value as { mode: string; k: number; canaryRate: number };
      const mode = p.mode === 'redundant' ? `redundant (k = ${p.k})` : 'none';
      return `${mode}, canary rate ${(p.canaryRate * 100).toFixed(1)} %`;
    }
    case 'platformFeeBps':
      return `${((v as number) / 100).toFixed(2)} % (${v as number} bps)`;
    case 'epochSeconds':
      return `${v as number} s`;
    default:
      return JSON.stringify(v);
  }
}

function mapSetting(view: SettingView): SettingDto {
  return {
    key: view.key,
    label: SETTING_LABELS[view.key].label,
    note: SETTING_LABELS[view.key].note,
    value: settingText(view),
    editable: true,
    current: view.value,
    default: view.default,
    overridden: view.overridden,
    updatedBy: view.updatedBy,
    updatedAt: view.updatedAt?.toISOString() ?? null,
  };
}

export function mapSlash(s: SlashProposal): SlashDto {
  return {
    id: s.id,
    peerId: s.peerId,
    operatorAddress: s.operatorAddress,
    evidenceId: s.evidenceId,
    evidenceHash: s.evidenceHash,
    amount: s.amount.toString(),
    reason: s.reason,
    state: s.state,
    beneficiaries: slashBeneficiaries(s).map((b) => ({ account: b.account, weight: b.weight.toString() })),
    executeAfter: s.executeAfter.toISOString(),
    proposeTxHash: s.proposeTxHash,
    txHash: s.txHash,
    nonce: s.nonce,
    cancelTxHash: s.cancelTxHash,
    compensated: s.compensated?.toString() ?? null,
    burnt: s.burnt?.toString() ?? null,
    error: s.error,
    reviewedBy: s.reviewedBy,
    createdAt: s.createdAt.toISOString(),
    frozenAt: s.frozenAt?.toISOString() ?? null,
    executedAt: s.executedAt?.toISOString() ?? null,
    cancelledAt: s.cancelledAt?.toISOString() ?? null,
  };
}

function mapReputationEvent(e: ReputationEvent): ReputationEventDto {
  return {
    id: e.id.toString(),
    kind: e.kind,
    delta: e.delta,
    score: e.score,
    jobId: e.jobId,
    detail: e.detail,
    createdAt: e.createdAt.toISOString(),
  };
}

function mapAttempt(a: JobAttempt): AttemptDto {
  return {
    attempt: a.attempt,
    providerId: a.providerId,
    state: a.state,
    outputHash: a.outputHash,
    error: a.error,
    receipt: a.receipt,
    offeredAt: a.offeredAt.toISOString(),
    startedAt: a.startedAt?.toISOString() ?? null,
    finishedAt: a.finishedAt?.toISOString() ?? null,
  };
}

/** What verification concluded, from the job's state and its attempts' output hashes. */
export function verdict(
  state: string,
  redundancy: number,
  attempts: Pick<JobAttempt, 'state' | 'outputHash'>[],
  error: string | null,
): VerdictDto {
  const succeeded = attempts.filter((a) => a.state === 'SUCCEEDED');
  if (state === 'FAILED' && error?.startsWith('redundant results disagree')) {
    return { outcome: 'disagreed', detail: error };
  }
  if (state === 'COMPLETED') {
    if (redundancy <= 1) return { outcome: 'single', detail: 'one provider; no redundant comparison' };
    const hashes = new Set(succeeded.map((a) => a.outputHash));
    return {
      outcome: 'agreed',
      detail: `${succeeded.length} results agree${hashes.size > 1 ? ' within the float tolerance' : ' bit for bit'}`,
    };
  }
  if (['QUEUED', 'DISPATCHED', 'RUNNING', 'VERIFYING'].includes(state)) {
    return { outcome: 'pending', detail: `${succeeded.length}/${redundancy} results in` };
  }
  return { outcome: 'none', detail: error ?? `job ${state.toLowerCase()} before verification` };
}

/** Output tensors without their data (names, dtypes, shapes, sizes). */
function summarizeResult(result: unknown): unknown {
  const outputs = (result as { outputs?: unknown[] } | null)?.outputs;
  if (!Array.isArray(outputs)) return result;
  return {
    outputs: outputs.map((o) => {
      const t = o as { name?: string; dtype?: string; shape?: number[]; data?: string };
      return { name: t.name, dtype: t.dtype, shape: t.shape, base64Bytes: t.data?.length ?? 0 };
    }),
  };
}
