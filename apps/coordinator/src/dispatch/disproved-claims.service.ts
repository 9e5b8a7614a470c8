import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { INPUT_FAULT_ERROR_CODES } from '@gpumesh/protocol';
import { INPUT_FAULT_ATTEMPT } from '../jobs/jobs.repository.js';
import { AttemptsRepository } from '../jobs/attempts.repository.js';
import { LOGGER } from '../logging/logger.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { ReputationService } from '../reputation/reputation.service.js';
import { TrustTierService } from '../verification/tiers.service.js';
import { claimsByJob, disprovedClaims, type InputFaultClaim } from './input-faults.js';

/**
 * How old a disproved claim's event must be before the sweep charges it (chargeUncharged): younger,
 * its completion is likely still charging it. Only to spare the work: a race of the two is harmless,
 * since a claim is charged once whoever asks (ReputationRepository records it with the penalty).
 */
export const UNCHARGED_CLAIM_GRACE_MS = 60_000;
/** Most claims one sweep charges; the next sweep takes the rest. */
export const UNCHARGED_CLAIMS_BATCH = 200;

/**
 * What a false input-fault claim costs. A provider that said a job's input cannot run, on a job that
 * then completed with a verified result, made a claim the result disproved (input-faults.ts
 * disprovedClaims): it delayed the job and refused work at no cost. The completion records a job
 * event per claim (completion.ts); this charges each claim to its provider once
 * (ReputationService.disproveClaim: a penalty growing with its earlier disproved claims, and
 * probation), however often it is asked, so a dispatch re-delivered after a crash may ask again,
 * and so may the sweep (chargeUncharged) of the claims a stopped worker left uncharged with no
 * dispatch to re-deliver.
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

  /**
   * Charges the disproved claims a completion recorded (its CLAIM_DISPROVED_EVENT) but nobody charged:
   * its worker stopped between the commit and `charge`, and the completed job's dispatch was not
   * re-delivered. Events younger than UNCHARGED_CLAIM_GRACE_MS are left to their completion; at most
   * UNCHARGED_CLAIMS_BATCH are charged. Returns how many were charged now.
   */
  async chargeUncharged(now = new Date()): Promise<number> {
    const uncharged = await this.attempts.disprovedUncharged(
      INPUT_FAULT_ATTEMPT,
      new Date(now.getTime() - UNCHARGED_CLAIM_GRACE_MS),
      UNCHARGED_CLAIMS_BATCH,
    );
    if (uncharged.length === 0) return 0;
    // All at once: ReputationRepository commits concurrent changes in one transaction.
    const byJob = [...claimsByJob(uncharged)];
    const charged = (await Promise.all(byJob.map(([jobId, claims]) => this.charge(jobId, claims)))).reduce(
      (sum, n) => sum + n,
      0,
    );
    // Found but not charged now: a completion (or another sweep) charged them meanwhile.
    if (charged > 0) {
      this.logger.warn(
        { found: uncharged.length, charged, jobs: byJob.length },
        'charged disproved input-fault claims their completion left uncharged',
      );
    }
    return charged;
  }
}

/** The code of a claim ("BAD_INPUT: ..." → BAD_INPUT), a bounded metric label. */
function claimCode(claim: string): string {
  const code = claim.split(':')[0] ?? '';
  return (INPUT_FAULT_ERROR_CODES as readonly string[]).includes(code) ? code : 'OTHER';
}
