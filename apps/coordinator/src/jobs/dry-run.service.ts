import { Inject, Injectable } from '@nestjs/common';
import type { Job, Provider } from '#prisma';
import type { JobSpec } from '@gpumesh/protocol';
import { Scheduler, type Explanation, type ProviderSnapshot } from '@gpumesh/scheduler';
import { ProvidersRepository } from '../providers/providers.repository.js';
import { ProviderViewService, toJobRequest } from '../p2p/provider-view.service.js';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { LedgerRepository } from '../ledger/ledger.repository.js';
import { LedgerAccounts } from '../ledger/accounts.js';

/** Rebuild the what-if index from the Provider table at most this often. */
const INDEX_TTL_MS = 2_000;

/** Whether the account's available balance covers the job's reservation, as submitting checks it. */
export interface DryRunFunds {
  required: bigint;
  available: bigint;
  sufficient: boolean;
}

export interface DryRunResult {
  workUnits: bigint;
  cost: bigint;
  /** Providers would take it and the balance covers it: submitting it now would be accepted and placed. */
  placeable: boolean;
  funds: DryRunFunds;
  /** Why it is not placeable (empty when it is): the placement explanation, the balance. */
  reasons: string[];
  candidates: { peerId: string; operatorId: string; score: number }[];
  explanation: Explanation;
}

/**
 * "Why no match?" before submitting: prices the spec exactly as a submission would and asks
 * libs/scheduler which providers would take it — every exclusion reason counted, and the cheapest
 * change that would make it placeable. Runs in API processes from the persisted provider view.
 * Stake is counted when this process gates placement by stake or a gating worker stored stakes.
 */
@Injectable()
export class DryRunService {
  private cached: { at: number; scheduler: Scheduler } | null = null;

  constructor(
    private readonly providers: ProvidersRepository,
    private readonly view: ProviderViewService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly ledger: LedgerRepository,
  ) {}

  async explain(input: {
    accountId: string;
    spec: JobSpec;
    workUnits: bigint;
    cost: bigint;
    deadlineSeconds: number;
  }): Promise<DryRunResult> {
    const now = Date.now();
    const scheduler = await this.index(now);
    const job = {
      id: '00000000-0000-4000-8000-000000000000',
      accountId: input.accountId,
      spec: input.spec,
      workUnits: input.workUnits,
      pricePerUnit: BigInt(input.spec.maxPricePerUnit),
      redundancy: input.spec.redundancy ?? 1,
      priority: 0,
      deadlineAt: new Date(now + input.deadlineSeconds * 1000),
    } as unknown as Job;
    const request = toJobRequest(job, []);
    const selection = scheduler.select(request, now, { explore: false });
    const explanation = scheduler.explain(request, now);
    const account = LedgerAccounts.available(input.accountId);
    const available = (await this.ledger.balances([account])).get(account) ?? 0n;
    const funds = fundsFor(input.cost, available);
    return {
      workUnits: input.workUnits,
      cost: input.cost,
      placeable: selection.ok && funds.sufficient,
      funds,
      reasons: dryRunReasons(selection.ok, explanation, funds),
      candidates: selection.placements.map((p) => ({
        peerId: p.peerId,
        operatorId: p.operatorId,
        score: p.score,
      })),
      explanation,
    };
  }

  private async index(now: number): Promise<Scheduler> {
    if (this.cached && now - this.cached.at < INDEX_TTL_MS) return this.cached.scheduler;
    const rows = await this.providers.list({ statuses: ['ONLINE', 'DRAINING', 'BANNED'], limit: 100_000 });
    const snapshots = rows.map((row) => snapshotOf(row, this.view.liveFigures(row.peerId, row.address)));
    const scheduler = new Scheduler({
      requireStake: this.view.scheduler.config.requireStake || rows.some((r) => r.stake !== null),
      minStake: this.config.MIN_PROVIDER_STAKE,
      stakePerValue: this.config.STAKE_PER_INFLIGHT_VALUE,
      probationGflops: this.config.CAPACITY_PROBATION_GFLOPS,
    });
    for (const snapshot of snapshots) scheduler.upsertProvider(snapshot, now);
    this.cached = { at: now, scheduler };
    return scheduler;
  }
}

/** The balance check of a dry run: submitting reserves `required` from the available balance. */
export function fundsFor(required: bigint, available: bigint): DryRunFunds {
  return { required, available, sufficient: available >= required };
}

/** Every reason a dry-run job would not be placed: no providers match (the explanation), the balance. */
export function dryRunReasons(matched: boolean, explanation: Explanation, funds: DryRunFunds): string[] {
  const reasons: string[] = [];
  if (!matched) reasons.push(explanation.message);
  if (!funds.sufficient) {
    reasons.push(
      `INSUFFICIENT_BALANCE: this job costs ${funds.required} base units but the available balance is ${funds.available}`,
    );
  }
  return reasons;
}

function snapshotOf(
  p: Provider,
  live: { stake: bigint | null; inFlightValue: bigint | undefined },
): ProviderSnapshot {
  const advert = p.advert as { expiresAt?: number };
  return {
    peerId: p.peerId,
    operatorId: p.operatorId,
    backend: p.backend as ProviderSnapshot['backend'],
    gpus: p.gpus as unknown as ProviderSnapshot['gpus'],
    gflops: p.gflops,
    ...(p.measuredGflops !== null ? { measuredGflops: p.measuredGflops } : {}),
    pricePerUnit: p.pricePerUnit,
    slots: p.slots,
    freeSlots: p.freeSlots,
    reputation: p.reputation,
    region: p.region ?? undefined,
    banned: p.status === 'BANNED',
    draining: p.status === 'DRAINING',
    expiresAt: advert.expiresAt ?? p.lastSeenAt.getTime() + 60_000,
    firstSeenAt: p.createdAt.getTime(),
    stake: live.stake ?? p.stake ?? 0n,
    inFlightValue: live.inFlightValue ?? p.inFlightValue,
  };
}
