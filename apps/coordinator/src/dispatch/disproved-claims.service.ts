import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { INPUT_FAULT_ERROR_CODES } from '@gpumesh/protocol';
import { INPUT_FAULT_ATTEMPT } from '../jobs/jobs.repository.js';
import { AttemptsRepository } from '../jobs/attempts.repository.js';
import { LOGGER } from '../logging/logger.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { ReputationService } from '../reputation/reputation.service.js';
import { TrustTierService } from '../verification/tiers.service.js';
import { disprovedClaims, type InputFaultClaim } from './input-faults.js';

/**
 * What a false input-fault claim costs. A provider that said a job's input cannot run, on a job that
 * then completed with a verified result, made a claim the result disproved (input-faults.ts
 * disprovedClaims): it delayed the job and refused work at no cost. The completion records a job
 * event per claim (completion.ts); this charges each claim to its provider once
 * (ReputationService.disproveClaim: a penalty growing with its earlier disproved claims, and
 * probation), however often it is asked, so a dispatch re-delivered after a crash may ask again.
 */
@Injectable()
export class DisprovedClaims {
  constructor(
    private readonly attempts: AttemptsRepository,
    private readonly reputation: ReputationService,
    private readonly tiers: TrustTierService,
    private readonly metrics: MetricsService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * The job's input-fault claims that its completion disproves, oldest first: all of them when its
   * result was `verified`, else none (disprovedClaims).
   */
  async disprovedBy(jobId: string, verified: boolean): Promise<InputFaultClaim[]> {
    if (!verified) return [];
    return disprovedClaims(await this.attempts.inputFaults(jobId, INPUT_FAULT_ATTEMPT), verified);
  }

  /**
   * Charges the claims a completion of `jobId` disproved to their providers; returns how many were
   * charged now (a claim charged before is not charged again). A failure is logged: the completion
   * stands, and a re-delivered dispatch of the job charges what is left.
   */
  async charge(jobId: string, claims: readonly InputFaultClaim[]): Promise<number> {
    const charged = await Promise.all(
      claims.map(async (c) => {
        const outcome = await this.reputation
          .disproveClaim(c.providerId, {
            attemptId: c.attemptId,
            attempt: c.attempt,
            jobId,
            claim: c.error,
          })
          .catch((err: unknown) => {
            this.logger.warn(
              { err, jobId, peerId: c.providerId },
              'could not charge a disproved input-fault claim',
            );
            return null;
          });
        if (!outcome) return false;
        this.tiers.forget(c.providerId); // on probation from now, not after the tier cache's TTL
        this.metrics.inputFaultClaimsDisproved.inc({ code: claimCode(c.error) });
        return true;
      }),
    );
    return charged.filter(Boolean).length;
  }
}

/** The code of a claim ("BAD_INPUT: ..." → BAD_INPUT), a bounded metric label. */
function claimCode(claim: string): string {
  const code = claim.split(':')[0] ?? '';
  return (INPUT_FAULT_ERROR_CODES as readonly string[]).includes(code) ? code : 'OTHER';
}
