import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { ReputationEvent } from '#prisma';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { LOGGER } from '../logging/logger.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { ProviderViewService } from '../p2p/provider-view.service.js';
import { REPUTATION_TABLE, applyRule, decayed, repeatWeight, type ReputationKind } from './reputation.js';

/** The kinds of change that ban a provider (caught returning wrong results). */
const BAN_KINDS = (Object.keys(REPUTATION_TABLE) as ReputationKind[]).filter((k) => REPUTATION_TABLE[k].ban);
import {
  ReputationRepository,
  type DisprovedClaimRecord,
  type ReputationOutcome,
} from './reputation.repository.js';

/**
 * Records reputation changes from the one table in reputation.ts: a ReputationEvent row per change,
 * Provider.reputation kept current (decayed to now, then moved), and the live scheduler view told at
 * once. A rule with `ban` bans the provider (status BANNED, bannedAt, banReason) and placement drops
 * it immediately.
 */
@Injectable()
export class ReputationService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly repo: ReputationRepository,
    private readonly view: ProviderViewService,
    private readonly metrics: MetricsService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  private get halfLifeMs(): number {
    return this.config.REPUTATION_HALF_LIFE_HOURS * 3_600_000;
  }

  async record(
    peerId: string,
    kind: ReputationKind,
    ctx: {
      jobId?: string;
      detail?: Record<string, unknown>;
      reason?: string;
      /** The score to set instead of the rule's (`keep`: the current score, decayed to now). */
      setScore?: number | 'keep';
    } = {},
  ): Promise<ReputationOutcome | null> {
    const rule = REPUTATION_TABLE[kind];
    const now = Date.now();
    const outcome = await this.repo.apply({
      peerId,
      kind,
      jobId: ctx.jobId,
      detail: ctx.detail,
      next: (stored, lastAt) => {
        const current = decayed(stored, lastAt ? now - lastAt.getTime() : 0, this.halfLifeMs);
        if (ctx.setScore === undefined) return applyRule(current, kind);
        return ctx.setScore === 'keep' ? current : Math.min(1, Math.max(0, ctx.setScore));
      },
      ban: rule.ban ? (ctx.reason ?? rule.note) : undefined,
      lift: kind === 'ban_lifted',
    });
    if (!outcome) return null;
    this.view.setReputation(peerId, outcome.score);
    if (rule.ban) this.view.setStatus(peerId, 'BANNED');
    if (outcome.banned) {
      this.metrics.attempts.inc({ outcome: 'provider_banned' });
      this.logger.warn({ peerId, kind, jobId: ctx.jobId }, 'provider banned: caught returning wrong results');
    }
    return outcome;
  }

  /**
   * An input-fault claim a verified result disproved: the `disproved_input_fault` penalty, weighted
   * by the provider's earlier disproved claims as the score still remembers them (repeatWeight),
   * recorded with the claim in one transaction. Null when this claim was counted already (or the
   * provider is unknown): each claim costs its provider once.
   */
  async disproveClaim(
    peerId: string,
    claim: DisprovedClaimRecord & { attempt: number },
  ): Promise<(ReputationOutcome & { weight: number }) | null> {
    const now = Date.now();
    let weight = 1;
    const outcome = await this.repo.apply({
      peerId,
      kind: 'disproved_input_fault',
      jobId: claim.jobId,
      disproves: { attemptId: claim.attemptId, jobId: claim.jobId, claim: claim.claim },
      next: (stored, lastAt, earlierClaims) => {
        weight = repeatWeight(earlierClaims, now, this.halfLifeMs);
        const current = decayed(stored, lastAt ? now - lastAt.getTime() : 0, this.halfLifeMs);
        return applyRule(current, 'disproved_input_fault', weight);
      },
      detail: { attempt: claim.attempt, claim: claim.claim },
    });
    if (!outcome) return null;
    this.view.setReputation(peerId, outcome.score);
    this.logger.warn(
      { peerId, jobId: claim.jobId, attempt: claim.attempt, weight, score: outcome.score },
      'input-fault claim disproved by a verified result',
    );
    return { ...outcome, weight };
  }

  /**
   * An admin lifted a ban: the provider is placeable again with `score` (a number, or `keep` the
   * current one), by default on probation (see REINSTATED_REPUTATION).
   */
  async liftBan(
    peerId: string,
    options: { by?: string; reason?: string; score?: number | 'keep' } = {},
  ): Promise<void> {
    const detail = options.by ? { by: options.by, reason: options.reason } : undefined;
    const outcome = await this.record(peerId, 'ban_lifted', { detail, setScore: options.score });
    if (outcome) this.view.setStatus(peerId, 'ONLINE');
  }

  /** The score a provider had before the last change that banned it (null when none did, e.g. an admin ban). */
  scoreBeforeLastBan(peerId: string): Promise<number | null> {
    return this.repo.scoreBeforeLastBan(peerId, BAN_KINDS);
  }

  /** The provider's live score (the scheduler's copy), or the neutral score when unknown. */
  score(peerId: string): number {
    return this.view.reputation(peerId);
  }

  history(peerId: string, limit = 100): Promise<ReputationEvent[]> {
    return this.repo.history(peerId, limit);
  }
}
