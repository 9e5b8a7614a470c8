import { Inject, Injectable, type MessageEvent } from '@nestjs/common';
import type { Observable } from 'rxjs';
import type {
  JobAttempt,
  Prisma,
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
  UnbanReputation,
  VerdictDto,
} from './dto/admin.dto.js';
import { AuditLogService } from './audit-log.service.js';
import { REINSTATED_REPUTATION } from '../reputation/reputation.js';

/** A provider's state as the audit log records it before and after an action. */
function providerState(p: Provider): Record<string, string | number | null> {
  return {
    status: p.status,
    reputation: Number(p.reputation.toFixed(4)),
    bannedAt: p.bannedAt?.toISOString() ?? null,
    banReason: p.banReason,
  };
}

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
    private readonly auditLog: AuditLogService,
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
    const [attempts, counts, disproved, balances, slashes, history, stake] = await Promise.all([
      this.repo.providerAttempts(peerId, 50),
      this.repo.providerAttemptCounts(peerId),
      this.repo.disprovedClaims(peerId),
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
      disprovedInputFaults: disproved,
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
  async cancelSlash(principal: Principal, id: string, reason: string): Promise<SlashDto> {
    const before = await this.slashRepo.get(id);
    const cancelled = await this.slashRepo.cancel(id, principal.address);
    if (cancelled) {
      await this.auditLog.record(
        principal,
        'slash.cancel',
        id,
        reason,
        before ? { state: before.state, peerId: before.peerId, amount: String(before.amount) } : undefined,
        { state: cancelled.state },
      );
      return mapSlash(cancelled);
    }
    const row = await this.slashRepo.get(id);
    if (!row) throw new DomainError('NOT_FOUND', `slash proposal ${id} not found`);
    throw new DomainError(
      'ILLEGAL_TRANSITION',
      `slash proposal ${id} is ${row.state}: only a PROPOSED or FROZEN slash can be cancelled`,
      { state: row.state },
    );
  }

  /**
   * Ban: no new work; attempts already running finish. Status BANNED with the time and the reason;
   * the reputation is left as it is (an admin's ban is not a verdict on the provider's results).
   * The Provider row changes (every process's placement view picks it up within seconds, see
   * ProviderViewService.refreshStatuses) and this process's view at once.
   */
  async banProvider(principal: Principal, peerId: string, reason: string): Promise<AdminProviderDto> {
    const before = await this.providerOr404(peerId);
    if (before.status === 'BANNED')
      throw new DomainError('ILLEGAL_TRANSITION', `provider ${peerId} is already banned`, {
        status: before.status,
      });
    const after = await this.repo.banProvider(peerId, `admin: ${reason}`, new Date());
    if (!after) throw new DomainError('NOT_FOUND', `provider ${peerId} not found`);
    this.view.setStatus(peerId, 'BANNED');
    await this.auditLog.record(
      principal,
      'provider.ban',
      peerId,
      reason,
      providerState(before),
      providerState(after),
    );
    return this.mapAdminProvider(after, Date.now());
  }

  /**
   * Lifts a ban. The score afterwards is the admin's choice: `keep` it (the default when the ban did
   * not lower it, as an admin's ban does not), put the provider on `probation` (the default after a
   * ban for wrong results, which drove the score to 0), or `restore` the score it had before the ban.
   */
  async unbanProvider(
    principal: Principal,
    peerId: string,
    reason: string,
    choice?: UnbanReputation,
  ): Promise<AdminProviderDto> {
    const before = await this.providerOr404(peerId);
    if (before.status !== 'BANNED') {
      throw new DomainError(
        'ILLEGAL_TRANSITION',
        `provider ${peerId} is ${before.status}, not banned${before.status === 'DRAINING' ? ': undrain it instead' : ''}`,
        { status: before.status },
      );
    }
    const chosen = choice ?? (before.reputation >= REINSTATED_REPUTATION ? 'keep' : 'probation');
    const score =
      chosen === 'keep'
        ? 'keep'
        : chosen === 'probation'
          ? REINSTATED_REPUTATION
          : ((await this.reputation.scoreBeforeLastBan(peerId)) ?? 'keep');
    await this.reputation.liftBan(peerId, { by: principal.address, reason, score });
    const after = await this.providerOr404(peerId);
    await this.auditLog.record(principal, 'provider.unban', peerId, reason, providerState(before), {
      ...providerState(after),
      reputationChoice: chosen,
    });
    return this.mapAdminProvider(after, Date.now());
  }

  /** Drain (no new work, running attempts finish) or undrain (back to work); the reputation is untouched. */
  async setDraining(
    principal: Principal,
    peerId: string,
    draining: boolean,
    reason: string,
  ): Promise<AdminProviderDto> {
    const before = await this.providerOr404(peerId);
    const allowed = draining
      ? before.status === 'ONLINE' || before.status === 'OFFLINE'
      : before.status === 'DRAINING';
    if (!allowed) {
      throw new DomainError(
        'ILLEGAL_TRANSITION',
        `provider ${peerId} is ${before.status}: ${draining ? 'only an online or offline provider can be drained' : 'only a draining provider can be undrained'}`,
        { status: before.status },
      );
    }
    const status: ProviderStatus = draining ? 'DRAINING' : 'ONLINE';
    const after = await this.repo.setProviderStatus(peerId, status, before.status);
    if (!after)
      throw new DomainError('ILLEGAL_TRANSITION', `provider ${peerId} changed meanwhile: try again`);
    this.view.setStatus(peerId, status);
    await this.auditLog.record(
      principal,
      draining ? 'provider.drain' : 'provider.undrain',
      peerId,
      reason,
      providerState(before),
      providerState(after),
    );
    return this.mapAdminProvider(after, Date.now());
  }

  private async providerOr404(peerId: string): Promise<Provider> {
    const p = await this.repo.provider(peerId);
    if (!p) throw new DomainError('NOT_FOUND', `provider ${peerId} not found`);
    return p;
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

  async cancelJob(principal: Principal, id: string, reason: string): Promise<AdminJobDto> {
    const before = await this.repo.job(id);
    const job = await this.jobs.cancel(principal, id);
    await this.auditLog.record(
      principal,
      'job.cancel',
      id,
      reason,
      before ? { state: before.state, accountId: before.accountId } : undefined,
      { state: job.state },
    );
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

  async revokeKey(principal: Principal, id: string, reason: string): Promise<ApiKeyDto> {
    const key = await this.auth.revokeApiKey(principal, id);
    await this.auditLog.record(principal, 'api_key.revoke', id, reason, undefined, {
      accountId: key.accountId,
      name: key.name,
      revokedAt: key.revokedAt?.toISOString() ?? null,
    });
    return mapApiKey(key);
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
  async setSetting(principal: Principal, key: string, value: unknown, reason: string): Promise<SettingDto> {
    const before = (await this.runtimeSettings.list()).find((v) => v.key === key);
    const after = await this.runtimeSettings.set(key, value, principal.address);
    await this.auditLog.record(
      principal,
      'setting.change',
      key,
      reason,
      before ? { value: before.value as Prisma.InputJsonValue } : undefined,
      { value: after.value as Prisma.InputJsonValue },
    );
    return mapSetting(after);
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
