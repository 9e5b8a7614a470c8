import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Job } from '#prisma';
import {
  base64DecodedLength,
  isTensorRef,
  refTensorByteLength,
  workUnitsForSpec,
  type ResultTensor,
} from '@gpumesh/protocol';
import { effectiveGflops } from '@gpumesh/scheduler';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { TERMINAL_STATES } from '../jobs/job-state.js';
import { LOGGER } from '../logging/logger.js';
import { ProviderViewService } from '../p2p/provider-view.service.js';
import { ReputationService } from '../reputation/reputation.service.js';
import { CanaryService } from '../verification/canary.service.js';
import { VerifierService } from '../verification/verifier.service.js';
import {
  PROBE_MARKER_KEY,
  isOverstated,
  measuredGflops,
  probeDeadlineMs,
  probeInterval,
  probeMarker,
  probeSpec,
  probeWorkUnits,
  vouchedGflops,
  type ProbeMarker,
} from './capacity.js';
import { CapacityRepository, type DueProvider } from './capacity.repository.js';
import { creditAfterProbe, nextCredit, provenGflops, type Credit, type CreditRule } from './proven-speed.js';

/** A provider whose last advert is older than this is not probed (it is gone or going). */
const LIVE_WITHIN_MS = 120_000;
/** Most probes one tick starts (each computes its answer on the reference worker first). */
const MAX_PROBES_PER_TICK = 4;
/** How often a timed probe's job is read until its verdict is in (it is decided right after the result). */
const CONCLUSION_POLL_MS = 100;
/** A figure at least this share of the credited one shows it again (refreshes its window)... */
export const CREDIT_REFRESH_SHARE = 0.8;
/** ...written at most once per this share of CAPACITY_CREDIT_WINDOW_MS. */
export const CREDIT_REFRESH_EVERY_SHARE = 0.25;
/** A verified job's higher figure is written only when it beats the credited one by this share. */
export const CREDIT_MIN_RISE_SHARE = 0.05;
/** Credits cached in this process at most (the cache is dropped whole beyond). */
const MAX_CACHED_CREDITS = 10_000;
/** Times a credit is read again after another worker changed it meanwhile. */
const CREDIT_RETRIES = 2;

/** One capacity measurement, as stored and logged. */
export interface CapacityMeasurement {
  peerId: string;
  jobId: string;
  advertisedGflops: number;
  /** What the probe showed: work units per ms on the coordinator's clock (a lower bound). */
  shownGflops: number;
  /** What it vouches for and is stored (vouchedGflops: at least the probation figure when unresolved). */
  measuredGflops: number;
  workUnits: number;
  elapsedMs: number;
  overstated: boolean;
}

/**
 * Proven capacity. Each live provider is sent a timed known-answer matmul (a capacity probe) when it
 * joins and then at random (exponential) intervals: sized to take CAPACITY_PROBE_TARGET_MS at its
 * advertised speed, within bounds, owned and paid by the platform account like a canary (so it looks
 * like any job, and with settlement on it is paid from the platform's escrow), and placed on that
 * provider. The dispatching worker times it on its own clock from the provider's acceptance to its
 * result (AttemptRunner reports it here); when the answer matched the known one, the provider's
 * measured GFLOP/s is stored (Provider.measuredGflops), shown in the public list and used by
 * placement: min(advert, measured), or min(advert, CAPACITY_PROBATION_GFLOPS) until measured. An
 * advert far above the measurement (CAPACITY_OVERSTATED_FACTOR) costs reputation and is flagged. A
 * wrong answer is a failed canary (ban), handled by dispatch.
 *
 * A probe is capped (tensor limits, REFERENCE_WORK_BUDGET), so on a fast GPU it mostly times the
 * network. Verified jobs prove speed too (creditVerifiedJob, proven-speed.ts): a completed job whose
 * result a check confirmed (known answer, agreement, the reference), timed the same way less the
 * round trip and result transfer allowances; the measured figure is the best a probe or a verified
 * job showed within CAPACITY_CREDIT_WINDOW_MS. Unchecked and refused results prove nothing.
 */
@Injectable()
export class CapacityProbeService implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private closed = false;
  /** Each provider's credit as last read or written here (saves a read per verified job). */
  private readonly credits = new Map<string, Credit | null>();
  /** Credits being written, one chain per provider (one writer per provider in this process). */
  private readonly crediting = new Map<string, Promise<void>>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly repo: CapacityRepository,
    private readonly canaries: CanaryService,
    private readonly verifier: VerifierService,
    private readonly view: ProviderViewService,
    private readonly reputation: ReputationService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    // Workers place and time jobs; an API-only process sends no probes.
    if (!this.config.CAPACITY_PROBES || this.config.ROLE === 'api') return;
    this.timer = setInterval(() => void this.tick(), this.config.CAPACITY_PROBE_TICK_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** Sends the probes that are due (joined providers first); returns how many were sent. */
  async tick(now = new Date()): Promise<number> {
    if (this.ticking || this.closed) return 0;
    this.ticking = true;
    try {
      const due = await this.repo.claimDue(
        now,
        new Date(now.getTime() - LIVE_WITHIN_MS),
        MAX_PROBES_PER_TICK,
        probeInterval(this.config.CAPACITY_PROBE_MEAN_INTERVAL_MS),
      );
      let sent = 0;
      for (const provider of due) {
        if (this.closed) break;
        if (await this.probe(provider)) sent += 1;
      }
      return sent;
    } catch (err) {
      this.logger.warn({ err }, 'capacity probes: could not look for due providers');
      return 0;
    } finally {
      this.ticking = false;
    }
  }

  /** Creates, answers and enqueues one provider's probe; false when none was sent (logged why). */
  private async probe(provider: DueProvider): Promise<boolean> {
    const { peerId } = provider;
    if (!this.view.provider(peerId)) {
      // Another worker holds this provider's connection: leave the probe to a worker that does.
      await this.repo.release(peerId);
      return false;
    }
    const price = provider.pricePerUnit;
    if (price > this.config.CAPACITY_PROBE_MAX_PRICE_PER_UNIT) {
      this.logger.info(
        {
          peerId,
          pricePerUnit: price.toString(),
          max: this.config.CAPACITY_PROBE_MAX_PRICE_PER_UNIT.toString(),
        },
        'capacity probe skipped: the provider charges more than CAPACITY_PROBE_MAX_PRICE_PER_UNIT (it stays at the probation speed)',
      );
      return false;
    }
    const target = probeWorkUnits(provider.gflops, {
      targetMs: this.config.CAPACITY_PROBE_TARGET_MS,
      minWorkUnits: this.config.CAPACITY_PROBE_MIN_WORK_UNITS,
      maxWorkUnits: Math.min(this.config.CAPACITY_PROBE_MAX_WORK_UNITS, this.config.REFERENCE_WORK_BUDGET),
    });
    const credited = effectiveGflops(
      {
        gflops: provider.gflops,
        ...(provider.measuredGflops !== null ? { measuredGflops: provider.measuredGflops } : {}),
      },
      this.config.CAPACITY_PROBATION_GFLOPS,
    );
    const deadlineMs = probeDeadlineMs(target, credited);
    const spec = probeSpec(target, price, deadlineMs);
    const workUnits = workUnitsForSpec(spec);
    const answer = await this.verifier.referenceOf(spec, workUnits, 'low');
    if (!answer.ok) {
      this.logger.warn(
        { peerId, code: answer.code, reason: answer.reason },
        'capacity probe skipped: no known answer',
      );
      return false;
    }
    const marker: ProbeMarker = { peerId, advertisedGflops: provider.gflops };
    const job = await this.canaries.submitKnownAnswer({
      spec,
      workUnits,
      pricePerUnit: price,
      deadlineMs,
      outputs: answer.outputs,
      pinPeers: [peerId],
      marker: { [PROBE_MARKER_KEY]: marker },
    });
    if (!job) return false;
    this.logger.info(
      { peerId, jobId: job.id, workUnits: Number(workUnits), advertisedGflops: provider.gflops },
      'capacity probe sent',
    );
    return true;
  }

  /**
   * A provider returned a result of `job` `elapsedMs` after accepting it (this process's clock). For
   * a probe of that provider, the measurement is stored once the job's verdict says the answer was
   * right; anything else is ignored.
   */
  observe(job: Job, peerId: string, elapsedMs: number): void {
    const marker = probeMarker(job.verification);
    if (!marker || marker.peerId !== peerId) return;
    void this.concludeProbe(job, marker, elapsedMs).catch((err: unknown) =>
      this.logger.warn({ err, jobId: job.id, peerId }, 'capacity probe: could not record the measurement'),
    );
  }

  private async concludeProbe(job: Job, marker: ProbeMarker, elapsedMs: number): Promise<void> {
    const { peerId } = marker;
    const until = job.deadlineAt.getTime() + CONCLUSION_POLL_MS;
    let conclusion = await this.repo.conclusion(job.id, peerId);
    while (conclusion && !TERMINAL_STATES.includes(conclusion.state) && Date.now() < until && !this.closed) {
      await new Promise((resolve) => setTimeout(resolve, CONCLUSION_POLL_MS));
      conclusion = await this.repo.conclusion(job.id, peerId);
    }
    if (!conclusion || conclusion.state !== 'COMPLETED' || !conclusion.answered) {
      // A wrong answer is a failed canary (dispatch convicts it); a lost one costs reputation there.
      this.logger.info({ peerId, jobId: job.id, state: conclusion?.state }, 'capacity probe not measured');
      return;
    }
    const workUnits = Number(job.workUnits);
    const measurement: CapacityMeasurement = {
      peerId,
      jobId: job.id,
      advertisedGflops: marker.advertisedGflops,
      shownGflops: measuredGflops(workUnits, elapsedMs),
      measuredGflops: vouchedGflops(
        workUnits,
        elapsedMs,
        this.config.CAPACITY_PROBE_OVERHEAD_MS,
        this.config.CAPACITY_PROBATION_GFLOPS,
      ),
      workUnits,
      elapsedMs,
      overstated: isOverstated(marker.advertisedGflops, workUnits, elapsedMs, {
        factor: this.config.CAPACITY_OVERSTATED_FACTOR,
        overheadMs: this.config.CAPACITY_PROBE_OVERHEAD_MS,
      }),
    };
    await this.record(measurement);
  }

  /** Stores a measurement, tells placement at once, and penalises and flags an overstated advert. */
  async record(m: CapacityMeasurement): Promise<void> {
    const at = new Date();
    // The probe's figure joins the verified jobs': the best of the window is credited (proven-speed).
    const credit = creditAfterProbe(
      await this.repo.credit(m.peerId),
      m.measuredGflops,
      at.getTime(),
      this.rule(),
    );
    await this.repo.recordMeasurement(m.peerId, credit, at, m.overstated);
    this.remember(m.peerId, credit);
    this.view.setMeasuredGflops(m.peerId, credit.gflops);
    const detail = {
      advertisedGflops: m.advertisedGflops,
      shownGflops: m.shownGflops,
      measuredGflops: m.measuredGflops,
      creditedGflops: credit.gflops,
      workUnits: m.workUnits,
      elapsedMs: m.elapsedMs,
    };
    if (!m.overstated) {
      this.logger.info({ peerId: m.peerId, jobId: m.jobId, ...detail }, 'provider capacity measured');
      return;
    }
    this.logger.warn(
      { peerId: m.peerId, jobId: m.jobId, ...detail, factor: this.config.CAPACITY_OVERSTATED_FACTOR },
      'provider capacity overstated: its advert is far above what a timed known-answer job measured',
    );
    await this.reputation.record(m.peerId, 'overstated_capacity', { jobId: m.jobId, detail });
  }

  /**
   * A provider's result of `job`, returned `elapsedMs` after its acceptance (this process's clock),
   * was verified (a known answer, agreement with another operator, the coordinator's reference) and
   * the job completed: what it proves (elapsed minus the allowances for round trip and the result's
   * transfer, when that leaves CAPACITY_CREDIT_MIN_COMPUTE_MS) joins the provider's credited speed.
   * Capacity probes are measured by observe(). Written only when the credit changes (nextCredit).
   */
  creditVerifiedJob(job: Job, peerId: string, elapsedMs: number, outputs: readonly ResultTensor[]): void {
    if (probeMarker(job.verification)) return;
    const workUnits = Number(job.workUnits);
    const resultBytes = outputs.reduce(
      (sum, t) =>
        sum +
        (isTensorRef(t) ? refTensorByteLength(t.dtype, t.shape) : Math.max(0, base64DecodedLength(t.data))),
      0,
    );
    const gflops = provenGflops({ workUnits, elapsedMs, resultBytes }, this.rule());
    if (gflops === null) return; // too short to resolve a speed
    const previous = this.crediting.get(peerId) ?? Promise.resolve();
    const next = previous
      .then(() => this.credit(peerId, gflops, { jobId: job.id, workUnits, elapsedMs, resultBytes }))
      .catch((err: unknown) =>
        this.logger.warn({ err, jobId: job.id, peerId }, 'proven speed: could not credit a verified job'),
      )
      .finally(() => {
        if (this.crediting.get(peerId) === next) this.crediting.delete(peerId);
      });
    this.crediting.set(peerId, next);
  }

  /** Settles until every verified job's credit seen so far is written (tests, shutdown). */
  async flushCredits(): Promise<void> {
    await Promise.all([...this.crediting.values()]);
  }

  private async credit(
    peerId: string,
    gflops: number,
    detail: { jobId: string; workUnits: number; elapsedMs: number; resultBytes: number },
  ): Promise<void> {
    const rule = this.rule();
    for (let i = 0; i <= CREDIT_RETRIES; i++) {
      const current = this.credits.has(peerId)
        ? (this.credits.get(peerId) ?? null)
        : await this.repo.credit(peerId);
      this.remember(peerId, current);
      const next = nextCredit(current, gflops, Date.now(), rule);
      if (!next) return;
      if (await this.repo.replaceCredit(peerId, current, next)) {
        this.remember(peerId, next);
        this.view.setMeasuredGflops(peerId, next.gflops);
        this.logger.info(
          {
            peerId,
            ...detail,
            provenGflops: gflops,
            creditedGflops: next.gflops,
            was: current?.gflops ?? null,
          },
          'provider speed credited from a verified job',
        );
        return;
      }
      this.credits.delete(peerId); // changed meanwhile (a probe, another worker): read it again
    }
    this.logger.warn(
      { peerId, ...detail, provenGflops: gflops },
      'proven speed: the credit kept changing; skipped',
    );
  }

  private remember(peerId: string, credit: Credit | null): void {
    if (this.credits.size >= MAX_CACHED_CREDITS) this.credits.clear();
    this.credits.set(peerId, credit);
  }

  private rule(): CreditRule {
    return {
      overheadMs: this.config.CAPACITY_CREDIT_OVERHEAD_MS,
      transferBytesPerSecond: this.config.CAPACITY_CREDIT_TRANSFER_BYTES_PER_S,
      minComputeMs: this.config.CAPACITY_CREDIT_MIN_COMPUTE_MS,
      windowMs: this.config.CAPACITY_CREDIT_WINDOW_MS,
      refreshShare: CREDIT_REFRESH_SHARE,
      refreshEveryShare: CREDIT_REFRESH_EVERY_SHARE,
      minRiseShare: CREDIT_MIN_RISE_SHARE,
    };
  }
}
