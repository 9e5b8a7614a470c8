import { createHash, timingSafeEqual } from 'node:crypto';
import {
  Controller,
  ForbiddenException,
  Get,
  Header,
  Inject,
  Req,
  UnauthorizedException,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import type { FastifyRequest } from 'fastify';
import { Public } from '../auth/auth.decorators.js';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { QueueName } from '../queue/queue.constants.js';
import { ONLINE_WINDOW_MS } from '../admin/admin-stats.service.js';
import { HealthRepository } from '../health/health.repository.js';
import { HealthService } from '../health/health.service.js';
import { MetricsService } from './metrics.service.js';

/** Headers a reverse proxy adds: a request carrying one did not come from this host directly. */
const FORWARDING_HEADERS = ['x-forwarded-for', 'forwarded', 'x-real-ip', 'x-forwarded-host'];

function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4 === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

const digest = (v: string): Buffer => createHash('sha256').update(v).digest();

/**
 * Who may scrape `/metrics` (queue depths, dispatch and gossip counters: useful to an attacker
 * probing the marketplace). With `METRICS_TOKEN` set, a scraper must send `Authorization: Bearer
 * <token>`; without it, only direct connections from this host are answered (a scraper or sidecar
 * on the same host, `npm start`, tests), never a request relayed by a proxy. Exported for tests.
 */
export function checkMetricsAccess(
  token: string | undefined,
  request: { headers: Record<string, string | string[] | undefined>; remoteAddress: string | undefined },
): void {
  if (token !== undefined) {
    const header = request.headers.authorization;
    const sent = typeof header === 'string' ? (/^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? '') : '';
    if (sent.length > 0 && timingSafeEqual(digest(sent), digest(token))) return;
    throw new UnauthorizedException('metrics need Authorization: Bearer <METRICS_TOKEN>');
  }
  const forwarded = FORWARDING_HEADERS.some((h) => request.headers[h] !== undefined);
  if (isLoopback(request.remoteAddress) && !forwarded) return;
  throw new ForbiddenException(
    'metrics are served to this host only; set METRICS_TOKEN to scrape them from elsewhere',
  );
}

@ApiExcludeController()
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectQueue(QueueName.Dispatch) private readonly dispatch: Queue,
    @InjectQueue(QueueName.DeadLetter) private readonly deadLetter: Queue,
    private readonly health: HealthService,
    private readonly state: HealthRepository,
  ) {}

  // No API key or session: METRICS_TOKEN or a loopback connection (checkMetricsAccess).
  @Public()
  @Get()
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  async scrape(@Req() req: FastifyRequest): Promise<string> {
    checkMetricsAccess(this.config.METRICS_TOKEN, {
      headers: req.headers,
      remoteAddress: req.raw.socket.remoteAddress,
    });
    for (const queue of [this.dispatch, this.deadLetter]) {
      try {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
        for (const [state, n] of Object.entries(counts))
          this.metrics.queueDepth.set({ queue: queue.name, state }, n);
      } catch {
        // Redis down: /health reports it; the other metrics still scrape.
      }
    }
    await this.sampleMarketplace();
    return this.metrics.registry.metrics();
  }

  /** Providers, verification, settlement, fees and the chain, read now (a few aggregate queries). */
  private async sampleMarketplace(): Promise<void> {
    const m = this.metrics;
    try {
      const s = await this.state.marketplaceState(new Date(Date.now() - ONLINE_WINDOW_MS));
      m.providers.reset();
      let gpus = 0;
      for (const p of s.providers) {
        m.providers.set({ status: p.status, online: 'true' }, p.fresh);
        m.providers.set({ status: p.status, online: 'false' }, p.n - p.fresh);
        if (p.status === 'ONLINE') gpus += p.gpus;
      }
      m.gpusOnline.set(gpus);
      for (const [kind, n] of Object.entries(s.verificationFailures1h))
        m.verificationFailures.set({ kind }, n);
      m.feesUnsettled.set(Number(s.feesUnsettled));
    } catch {
      // database down: /health says so; the process metrics still scrape
    }
    const report = await this.health.check().catch(() => null);
    if (report?.checks.chain) m.chainUp.set(report.checks.chain.status === 'up' ? 1 : 0);
    if (report?.checks.settlement) {
      m.epochPostingLag.set(report.checks.settlement.postingLagSeconds);
      for (const [state, n] of Object.entries(report.checks.settlement.epochs))
        m.epochsByState.set({ state }, n);
      m.unfundedBaseUnits.set(Number(report.checks.settlement.unfundedBaseUnits));
      m.settlementBlocked.set(report.checks.settlement.blockedEpochs);
    }
  }
}
