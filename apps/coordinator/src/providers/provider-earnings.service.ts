import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/domain-error.js';
import { LedgerAccounts, peerOfAccount } from '../ledger/accounts.js';
import { SettingsService } from '../settings/settings.service.js';
import {
  ProviderEarningsRepository,
  providerEarningAccounts,
  type EarningsAttemptRow,
  type EarningsEpochRow,
  type EarningsPostingRow,
} from './provider-earnings.repository.js';

/** Jobs listed per request by default, and at most. */
export const EARNINGS_DEFAULT_JOBS = 50;
export const EARNINGS_MAX_JOBS = 500;

/** A libp2p peer id as the API accepts it (base58btc, or a CIDv1 in base32). */
export const PEER_ID_PATTERN = /^(?:[1-9A-HJ-NP-Za-km-z]{40,100}|b[a-z2-7]{50,120})$/;

/**
 * Where a job's payment to the provider stands:
 * - `held`: credited but held until verification lets it vest (or reverses it);
 * - `earned`: vested (or paid at once), waiting for an epoch to close;
 * - `in-epoch`: in a closed epoch, claimable once that epoch is FINALIZED on chain;
 * - `reversed`: the held credit went back to the developer (a wrong result).
 */
export type JobEarningState = 'held' | 'earned' | 'in-epoch' | 'reversed';

export interface JobEarning {
  jobId: string;
  /** The provider's attempts at the job (the agent's journal knows them by jobId + attempt). */
  attempts: number[];
  finishedAt: string | null;
  /** What the job paid for this provider's work before the platform fee (net + fee), base units. */
  gross: string;
  fee: string;
  /** What the provider gets: gross − fee, base units. */
  net: string;
  /** Of `net`, what was taken back (reversed) — then `net` is what remains. */
  reversed: string;
  state: JobEarningState;
  /** The epoch whose Merkle root pays it (null while held or not yet in a closed epoch). */
  epoch: number | null;
  epochState: string | null;
  creditedAt: string;
}

export interface ProviderEarnings {
  peerId: string;
  /** The payout address of the provider's adverts (null when none was stored). */
  address: string | null;
  /** The platform fee now, in basis points (each job's own fee is in its row). */
  feeBps: number;
  totals: {
    /** Σ net credited (held or paid, after the fee) minus reversals, base units, all time. */
    net: string;
    /** Still held, waiting for verification to vest it. */
    held: string;
    /** Vested and not yet in a closed epoch. */
    pendingEpoch: string;
    /** In closed epochs (claim them with `gpumesh-agent claim` once final). */
    inEpochs: string;
    reversed: string;
  };
  /** The next epoch to close (its number), or null when settlement is off. */
  openEpoch: number | null;
  /** The most recent jobs first. */
  jobs: JobEarning[];
}

interface JobAccumulator {
  jobId: string;
  net: bigint;
  fee: bigint;
  reversed: bigint;
  /** Ledger ids of vested/direct credits to the earned account (they decide the epoch). */
  earnedEntryIds: bigint[];
  held: bigint;
  firstAt: Date;
}

/** Builds a provider's per-job earnings from its ledger postings (see `JobEarningState`). */
export function summarizeEarnings(
  peerId: string,
  postings: readonly EarningsPostingRow[],
): Map<string, JobAccumulator> {
  const a = providerEarningAccounts(peerId);
  const byTx = new Map<string, EarningsPostingRow[]>();
  for (const p of postings) {
    const list = byTx.get(p.txId) ?? [];
    list.push(p);
    byTx.set(p.txId, list);
  }
  const jobs = new Map<string, JobAccumulator>();
  for (const tx of byTx.values()) {
    const jobId = tx.find((p) => p.jobId !== null)?.jobId;
    if (!jobId) continue;
    const job = jobs.get(jobId) ?? {
      jobId,
      net: 0n,
      fee: 0n,
      reversed: 0n,
      earnedEntryIds: [],
      held: 0n,
      firstAt: tx[0].createdAt,
    };
    jobs.set(jobId, job);
    const sum = (account: string): bigint =>
      tx.filter((p) => p.account === account).reduce((s, p) => s + p.amount, 0n);
    const earned = sum(a.earned);
    const held = sum(a.held);
    const heldFee = sum(a.heldFee);
    const kind = tx[0].kind;
    if (kind === 'settle' && held > 0n) {
      // Paid into hold: the fee is held beside it.
      job.net += held;
      job.held += held;
      job.fee += heldFee;
    } else if (kind === 'settle' && earned > 0n && held < 0n) {
      // Vested: held → earned (its fee moved to the platform; counted when held).
      job.held += held;
      job.earnedEntryIds.push(...tx.filter((p) => p.account === a.earned).map((p) => p.id));
    } else if (kind === 'settle' && earned > 0n) {
      // Paid at once: the fee of this transaction is shared by the providers it paid, pro rata.
      const providersPaid = tx
        .filter((p) => peerOfAccount(p.account, 'earned') !== null && p.amount > 0n)
        .reduce((s, p) => s + p.amount, 0n);
      const fees = sum(LedgerAccounts.fees);
      job.net += earned;
      job.fee += providersPaid > 0n ? (fees * earned) / providersPaid : 0n;
      job.earnedEntryIds.push(...tx.filter((p) => p.account === a.earned).map((p) => p.id));
    } else if (held < 0n) {
      // Reversed: the held credit went back to the developer.
      job.held += held;
      job.reversed += -held;
    }
    if (tx[0].createdAt < job.firstAt) job.firstAt = tx[0].createdAt;
  }
  return jobs;
}

/** The closed epoch covering ledger entry `id` (epochs in ascending `lastEntryId`), or null. */
export function epochOf(id: bigint, epochs: readonly EarningsEpochRow[]): EarningsEpochRow | null {
  return epochs.find((e) => e.lastEntryId >= id) ?? null;
}

@Injectable()
export class ProviderEarningsService {
  constructor(
    private readonly earnings: ProviderEarningsRepository,
    private readonly settings: SettingsService,
  ) {}

  async forProvider(peerId: string, limit = EARNINGS_DEFAULT_JOBS): Promise<ProviderEarnings> {
    if (!PEER_ID_PATTERN.test(peerId))
      throw new DomainError('VALIDATION_FAILED', 'peerId: not a libp2p peer id');
    const [address, jobIds, totals, feeBps, openEpoch] = await Promise.all([
      this.earnings.providerAddress(peerId),
      this.earnings.recentJobIds(peerId, Math.min(Math.max(limit, 1), EARNINGS_MAX_JOBS)),
      this.earnings.totals(peerId),
      this.settings.get('platformFeeBps'),
      this.earnings.openEpoch(),
    ]);
    if (address === null && totals.length === 0) {
      throw new DomainError('NOT_FOUND', `no provider ${peerId} is known to this coordinator`);
    }
    const [postings, attempts] = await Promise.all([
      this.earnings.postingsOf(peerId, jobIds),
      this.earnings.attemptsOf(peerId, jobIds),
    ]);
    const perJob = summarizeEarnings(peerId, postings);
    const firstEarned = [...perJob.values()]
      .flatMap((j) => j.earnedEntryIds)
      .reduce<bigint | null>((min, id) => (min === null || id < min ? id : min), null);
    const epochs = firstEarned === null ? [] : await this.earnings.epochsFrom(firstEarned);
    const attemptsByJob = new Map<string, EarningsAttemptRow[]>();
    for (const at of attempts) attemptsByJob.set(at.jobId, [...(attemptsByJob.get(at.jobId) ?? []), at]);

    const jobs: JobEarning[] = jobIds.flatMap((jobId) => {
      const j = perJob.get(jobId);
      if (!j) return [];
      const mine = attemptsByJob.get(jobId) ?? [];
      const lastEarned = j.earnedEntryIds.length > 0 ? j.earnedEntryIds[j.earnedEntryIds.length - 1] : null;
      const epoch = lastEarned === null ? null : epochOf(lastEarned, epochs);
      const state: JobEarningState =
        j.held > 0n ? 'held' : lastEarned === null ? 'reversed' : epoch ? 'in-epoch' : 'earned';
      const finished = mine
        .map((m) => m.finishedAt)
        .filter((d): d is Date => d !== null)
        .sort((x, y) => y.getTime() - x.getTime())[0];
      return [
        {
          jobId,
          attempts: mine.map((m) => m.attempt),
          finishedAt: finished?.toISOString() ?? null,
          gross: (j.net + j.fee).toString(),
          fee: j.fee.toString(),
          net: (j.net - j.reversed).toString(),
          reversed: j.reversed.toString(),
          state,
          epoch: epoch?.id ?? null,
          epochState: epoch?.state ?? null,
          creditedAt: j.firstAt.toISOString(),
        },
      ];
    });

    const a = providerEarningAccounts(peerId);
    const total = (account: string, kind: string, side: 'credits' | 'debits'): bigint =>
      totals.filter((t) => t.account === account && t.kind === kind).reduce((s, t) => s + t[side], 0n);
    // Money in: settle credits into hold or straight to earned (a vest moves held → earned: not new).
    const heldIn = total(a.held, 'settle', 'credits');
    const vested = total(a.held, 'settle', 'debits');
    const earnedIn = total(a.earned, 'settle', 'credits');
    const reversed = total(a.held, 'release', 'debits');
    const swept = totals
      .filter((t) => t.account === a.earned && t.kind !== 'settle')
      .reduce((s, t) => s + t.debits - t.credits, 0n);
    const heldNow = heldIn - vested - reversed;
    const direct = earnedIn - vested;
    return {
      peerId,
      address,
      feeBps,
      totals: {
        net: (heldIn + direct - reversed).toString(),
        held: heldNow.toString(),
        pendingEpoch: (earnedIn - swept).toString(),
        inEpochs: swept.toString(),
        reversed: reversed.toString(),
      },
      openEpoch,
      jobs,
    };
  }
}
