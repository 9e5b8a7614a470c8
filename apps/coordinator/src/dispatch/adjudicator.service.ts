import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Job } from '#prisma';
import type { JobSpec, TensorWire } from '@gpumesh/protocol';
import {
  decideVerdict,
  verdictAction,
  type DecidedVerdict,
  type KnownResult,
  type Verdict,
  type VerdictAction,
  type VerdictBasis,
} from '@gpumesh/verification';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { JobsRepository } from '../jobs/jobs.repository.js';
import { JobsService } from '../jobs/jobs.service.js';
import { AttemptsRepository } from '../jobs/attempts.repository.js';
import { jobErrorEvent, storedJobError, type JobError } from '../jobs/job-error.js';
import { LOGGER } from '../logging/logger.js';
import { ProviderViewService } from '../p2p/provider-view.service.js';
import { compareResults } from '../verification/compare.js';
import { compareResultsOffLoop } from '../verification/check-thread.js';
import { VerifierService, type Reference } from '../verification/verifier.service.js';
import { VerificationRepository } from '../verification/verification.repository.js';
import { TrustTierService, type SingleCheck } from '../verification/tiers.service.js';
import type { ReputationKind } from '../reputation/reputation.js';
import type { CheckedTensor } from '../tensors/tensors.service.js';
import { AttemptRunner, type AttemptOutcome } from './attempt-runner.service.js';

/** A redundant job's verdict, with what became of it (see Adjudicator.adjudicate). */
export interface Adjudication {
  verdict: DecidedVerdict<AttemptOutcome, CheckedTensor[]>;
  action: VerdictAction<AttemptOutcome>;
  /** The provider a tie-break was offered to, if one was. */
  tiebreak?: string;
}

/** What becomes of a single-copy result (see Adjudicator.judgeSingle). */
export type SingleJudgement =
  /** A canary answered wrongly: its provider is convicted and the job has FAILED. */
  | { kind: 'failed' }
  | { kind: 'requeue'; reason: string }
  | {
      kind: 'deliver';
      /** The trust-tier check it passed (none for a canary). */
      check: Extract<SingleCheck, { kind: 'deliver' }> | null;
      passKind: ReputationKind;
      /** Checked by the known answer or a passing check (not a spot-checked delivery). */
      verified: boolean;
    };

/**
 * The judge's clerk: runs what a verdict needs (tie-breaks on a provider of another operator, the
 * coordinator's reference), asks decideVerdict (@gpumesh/verification, verdict.ts) who was right, and records
 * its consequences: convictions with evidence, failed canaries, results of providers banned
 * meanwhile set aside. While their results are judged, providers get no new work (reviewing()).
 */
@Injectable()
export class Adjudicator {
  /** Providers with results in open disagreements (see review()). */
  private readonly underReview = new Map<string, number>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly jobsRepo: JobsRepository,
    private readonly jobs: JobsService,
    private readonly attempts: AttemptsRepository,
    private readonly view: ProviderViewService,
    private readonly verifier: VerifierService,
    private readonly verification: VerificationRepository,
    private readonly tiers: TrustTierService,
    private readonly runner: AttemptRunner,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Providers whose results are being judged: they get no new work until the verdict is recorded. */
  reviewing(): string[] {
    return [...this.underReview.keys()];
  }

  /**
   * A single-copy result: a canary's is judged by its known answer (a wrong one convicted and the
   * canary FAILED); a result of a provider banned meanwhile is set aside; otherwise the trust tiers
   * decide whether it needs a check first (TrustTierService.checkSingle, a tie-break run its check).
   */
  async judgeSingle(job: Job, only: AttemptOutcome, answer: TensorWire[] | null): Promise<SingleJudgement> {
    if (answer) {
      const verdict = await this.decide(job, [only], { source: 'canary', outputs: answer }, false);
      if (verdict.kind === 'decided' && verdict.winners.length === 0) {
        await this.failCanary(job, verdict.convict, answer);
        return { kind: 'failed' };
      }
    }
    if (this.view.isBanned(only.peerId)) {
      // Banned while its result was on the way: unpaid, and the job runs again elsewhere.
      await this.attempts.settle(only.attempt.id, 'FAILED', { error: 'provider banned meanwhile' });
      return { kind: 'requeue', reason: 'the provider was banned meanwhile' };
    }
    // Trust tiers: a probation provider's result (or any, for a `verified` job) waits for a check.
    const check = answer ? null : await this.tiers.checkSingle(job, only, (u) => this.tieBreak(job, u));
    if (check?.kind === 'requeue') return { kind: 'requeue', reason: check.reason };
    return {
      kind: 'deliver',
      check,
      passKind: check?.passKind ?? 'verified_pass',
      verified: answer !== null || check?.outcome.verified === true,
    };
  }

  /**
   * A redundant job's results (a canary's against its known answer): on a disagreement a tie-break
   * runs and the coordinator recomputes the job when it is within the work budget; losers proven
   * wrong are convicted, and winners banned meanwhile are set aside unpaid. A canary nobody answered
   * right is FAILED here (action `fail`); completing or requeueing the job is the caller's.
   */
  async adjudicate(job: Job, outcomes: AttemptOutcome[], answer: TensorWire[] | null): Promise<Adjudication> {
    // Until the verdict and its convictions are recorded, these providers get no new work (a
    // disagreement takes a tie-break and a recompute; agreeing results are decided at once).
    const suspects = outcomes.map((o) => o.peerId);
    this.review(suspects, +1);
    let verdict: DecidedVerdict<AttemptOutcome, CheckedTensor[]>;
    let tiebreak: string | undefined;
    try {
      const first = await this.decide(
        job,
        outcomes,
        answer ? { source: 'canary', outputs: answer } : null,
        false,
      );
      if (first.kind === 'decided') {
        verdict = first;
      } else {
        await this.jobs.note(job.id, 'verification.disagreement', {
          providers: outcomes.map((o) => ({ provider: o.peerId, outputHash: o.outputHash })),
        });
        const extra = await this.tieBreak(
          job,
          outcomes.map((o) => o.peerId),
        );
        tiebreak = extra?.peerId;
        const all = extra?.ok ? [...outcomes, extra] : [...outcomes];
        const reference = await this.verifier.reference(job);
        const known = reference ? { source: 'coordinator' as const, outputs: reference } : null;
        const final = await this.decide(job, all, known, true);
        if (final.kind !== 'decided') throw new Error('an escalated verdict is always decided');
        verdict = final;
      }
      const reference = evidenceReference(verdict.basis);
      if (reference) {
        const kind = job.canary ? 'failed_canary' : 'lost_tiebreak';
        for (const loser of verdict.convict) await this.convict(job, loser, reference, kind);
      }
    } finally {
      this.review(suspects, -1);
    }
    const action = verdictAction(verdict, job, (o) => this.view.isBanned(o.peerId));
    // A winner banned meanwhile (caught on another job) is not paid; its result does not count.
    for (const w of action.dropped) {
      await this.attempts.reject(w.attempt.id, 'verification failed: provider banned meanwhile');
    }
    if (action.kind === 'fail') {
      await this.jobs.transition({
        jobId: job.id,
        from: ['VERIFYING'],
        to: 'FAILED',
        eventType: 'job.failed',
        eventData: {
          reason: action.reason,
          ...jobErrorEvent({ code: 'WRONG_RESULT', message: action.reason }),
        },
        effect: { kind: 'release' },
        patch: { error: storedJobError({ code: 'WRONG_RESULT', message: action.reason }) },
      });
    }
    return { verdict, action, tiebreak };
  }

  /** Runs the job once more on a provider of an operator that has not run it; null when none is free. */
  async tieBreak(job: Job, used: string[]): Promise<AttemptOutcome | null> {
    const single = { ...job, redundancy: 1 };
    const exclude = [
      ...new Set([
        ...this.view.peersOfSameOperators(used),
        ...(await this.providersThatFailedOrLost(job.id)),
        ...this.underReview.keys(),
      ]),
    ];
    const waitUntil = Date.now() + Math.min(this.config.CAPACITY_WAIT_MS, 2_000);
    let placement = this.view.place(single, Date.now(), exclude);
    while (!placement.ok && Date.now() < waitUntil) {
      await this.view.waitForCapacity(Math.min(250, waitUntil - Date.now()));
      placement = this.view.place(single, Date.now(), exclude);
    }
    if (!placement.ok) return null;
    const peerId = placement.placements[0].peerId;
    const attempt = await this.attempts.offerExtra(job.id, peerId);
    await this.jobs.note(job.id, 'verification.tiebreak', { attempt: attempt.attempt, provider: peerId });
    return this.runner.run(job, attempt);
  }

  /**
   * The verdict over `results` (and the known answer). Every pair it may compare is compared first,
   * large ones on the check thread (check-thread.ts), so the pure verdict reads answers only.
   */
  private async decide(
    job: Job,
    results: AttemptOutcome[],
    known: KnownResult<CheckedTensor[]> | null,
    escalated: boolean,
  ): Promise<Verdict<AttemptOutcome, CheckedTensor[]>> {
    const spec = job.spec as unknown as JobSpec;
    const outputsOf = (o: AttemptOutcome): CheckedTensor[] => o.checked ?? o.outputs ?? [];
    const agree = await agreementsOf([...results.map(outputsOf), ...(known ? [known.outputs] : [])], spec);
    return decideVerdict({ results, outputsOf, agree, known, escalated });
  }

  /**
   * Counts open disagreements per provider: while its result is in one, a provider gets no new work,
   * so a cheater caught at its first disagreement returns at most the jobs it already holds before
   * its ban lands (this worker's view; another worker learns of the ban from the database).
   */
  private review(peers: readonly string[], change: 1 | -1): void {
    for (const peer of peers) {
      const open = (this.underReview.get(peer) ?? 0) + change;
      if (open > 0) this.underReview.set(peer, open);
      else this.underReview.delete(peer);
    }
  }

  private async providersThatFailedOrLost(jobId: string): Promise<string[]> {
    const read = await this.jobsRepo.findForDispatch(jobId);
    return read ? [...read.failedProviders, ...read.lostProviders] : [];
  }

  private async convict(
    job: Job,
    loser: AttemptOutcome,
    reference: Reference,
    kind: ReputationKind,
  ): Promise<void> {
    if (!loser.receipt) return;
    try {
      await this.verifier.convict(
        job,
        {
          attemptId: loser.attempt.id,
          peerId: loser.peerId,
          receipt: loser.receipt,
          outputs: loser.outputs ?? [],
        },
        reference,
        kind,
      );
    } catch (err) {
      this.logger.error({ err, jobId: job.id, peerId: loser.peerId }, 'could not record a conviction');
    }
  }

  /** A single-provider canary answered wrongly: convict, record the attempt, end the canary. */
  private async failCanary(job: Job, wrong: AttemptOutcome[], answer: TensorWire[]): Promise<void> {
    for (const o of wrong) {
      await this.attempts.settle(o.attempt.id, 'SUCCEEDED', { receipt: o.receipt, outputHash: o.outputHash });
      await this.convict(job, o, { source: 'canary', outputs: answer }, 'failed_canary');
    }
    await this.jobs.transition({
      jobId: job.id,
      from: ['RUNNING', 'DISPATCHED'],
      to: 'FAILED',
      eventType: 'job.failed',
      eventData: { reason: WRONG_ANSWER.message, ...jobErrorEvent(WRONG_ANSWER) },
      effect: { kind: 'release' },
      patch: { error: storedJobError(WRONG_ANSWER) },
    });
  }
}

const WRONG_ANSWER: JobError = { code: 'WRONG_RESULT', message: 'the result did not match the known answer' };

/**
 * Compares every pair of `lists` (off the event loop when large) and returns the lookup a verdict
 * uses; a pair not among them (none is expected) is compared on the spot.
 */
async function agreementsOf(
  lists: readonly CheckedTensor[][],
  spec: JobSpec,
): Promise<(a: readonly CheckedTensor[], b: readonly CheckedTensor[]) => boolean> {
  const answers = new Map<readonly CheckedTensor[], Map<readonly CheckedTensor[], boolean>>();
  const pairs: [CheckedTensor[], CheckedTensor[]][] = [];
  for (let i = 0; i < lists.length; i++) {
    for (let j = i + 1; j < lists.length; j++) pairs.push([lists[i], lists[j]]);
  }
  const agreements = await Promise.all(pairs.map(([a, b]) => compareResultsOffLoop(a, b, { spec })));
  pairs.forEach(([a, b], k) => {
    for (const [x, y] of [
      [a, b],
      [b, a],
    ]) {
      const row = answers.get(x) ?? new Map<readonly CheckedTensor[], boolean>();
      row.set(y, agreements[k].agree);
      answers.set(x, row);
    }
  });
  return (a, b) => answers.get(a)?.get(b) ?? compareResults(a, b, { spec }).agree;
}

/** The reference a verdict's losers are convicted against (none when nothing proved them wrong). */
function evidenceReference(basis: VerdictBasis<AttemptOutcome, CheckedTensor[]>): Reference | null {
  switch (basis.source) {
    case 'canary':
    case 'coordinator':
      return { source: basis.source, outputs: basis.outputs };
    case 'providers':
      return {
        source: 'providers',
        outputs: basis.outputs,
        receipts: basis.backers.flatMap((o) => (o.receipt ? [o.receipt] : [])),
      };
    default:
      return null;
  }
}
