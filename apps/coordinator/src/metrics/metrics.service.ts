import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The coordinator's Prometheus metrics; names end in their unit. */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly httpRequestDuration = new Histogram({
    name: 'gpumesh_http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly jobsSubmitted = new Counter({
    name: 'gpumesh_jobs_submitted_total',
    help: 'Jobs accepted by POST /v1/jobs',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly jobTransitions = new Counter({
    name: 'gpumesh_job_transitions_total',
    help: 'Job state transitions by target state',
    labelNames: ['to'] as const,
    registers: [this.registry],
  });

  readonly dispatchAttempts = new Counter({
    name: 'gpumesh_dispatch_attempts_total',
    help: 'Dispatch attempts by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly gossipMessages = new Counter({
    name: 'gpumesh_gossip_messages_total',
    help: 'Gossip messages by topic, validation verdict and error code',
    labelNames: ['topic', 'verdict', 'code'] as const,
    registers: [this.registry],
  });

  readonly p2pConnectionsRefused = new Counter({
    name: 'gpumesh_p2p_connections_refused_total',
    help: 'Inbound p2p connections refused at admission, by reason (PEER_DENIED: banned or penalised)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly p2pConnectionsClosed = new Counter({
    name: 'gpumesh_p2p_connections_closed_total',
    help: 'Admitted p2p connections closed by the node, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly p2pTensorsServed = new Counter({
    name: 'gpumesh_p2p_tensors_served_total',
    help: 'Job inputs by ref streamed to providers over the artifact protocol (agents cache them)',
    registers: [this.registry],
  });

  readonly p2pTensorBytesServed = new Counter({
    name: 'gpumesh_p2p_tensor_served_bytes_total',
    help: 'Bytes of job inputs by ref streamed to providers over the artifact protocol',
    registers: [this.registry],
  });

  readonly attempts = new Counter({
    name: 'gpumesh_job_attempts_total',
    help: 'Job attempts offered to providers, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly inputFaultClaimsDisproved = new Counter({
    name: 'gpumesh_input_fault_claims_disproved_total',
    help: "Providers' input-fault claims (the job's input cannot run) that a verified result of the job disproved, each counted once, by the claim's code",
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly jobDuration = new Histogram({
    name: 'gpumesh_job_duration_seconds',
    help: 'Time from submission to completion of completed jobs',
    labelNames: ['kind'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });

  readonly offerBatchSize = new Histogram({
    name: 'gpumesh_offer_batch_size',
    help: 'Offers sent to one provider over one stream (batches of two or more)',
    buckets: [2, 4, 8, 16, 32, 64],
    registers: [this.registry],
  });

  readonly queueDepth = new Gauge({
    name: 'gpumesh_queue_jobs',
    help: 'BullMQ jobs by queue and state (sampled at scrape time)',
    labelNames: ['queue', 'state'] as const,
    registers: [this.registry],
  });

  readonly epochsByState = new Gauge({
    name: 'gpumesh_epochs',
    help: 'Settlement epochs by state (set by each settlement pass of a worker)',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });

  readonly unfundedBaseUnits = new Gauge({
    name: 'gpumesh_epoch_unfunded_base_units',
    help: 'Base units that posted epochs past their challenge window still lack on chain (0 when every epoch is funded)',
    registers: [this.registry],
  });

  readonly settlementBlocked = new Gauge({
    name: 'gpumesh_settlement_blocked_epochs',
    help: 'Epochs whose settlement waits for an operator (a shortfall to fund, a veto to look at)',
    registers: [this.registry],
  });

  readonly providers = new Gauge({
    name: 'gpumesh_providers',
    help: 'Providers by status; online: advertised within the last 2 minutes (sampled at scrape time)',
    labelNames: ['status', 'online'] as const,
    registers: [this.registry],
  });

  readonly gpusOnline = new Gauge({
    name: 'gpumesh_gpus_online',
    help: 'GPUs advertised by online providers that take work (sampled at scrape time)',
    registers: [this.registry],
  });

  readonly verificationFailures = new Gauge({
    name: 'gpumesh_verification_failures_last_hour',
    help: 'Wrong results caught in the last hour, by kind (canary, tie-break, check, sanity, re-verification)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly epochPostingLag = new Gauge({
    name: 'gpumesh_epoch_posting_lag_seconds',
    help: 'Seconds the oldest closed epoch has waited for its root to be posted (0: none waits)',
    registers: [this.registry],
  });

  readonly feesUnsettled = new Gauge({
    name: 'gpumesh_platform_fees_unsettled_base_units',
    help: 'Platform fees accrued and not yet paid out in an epoch (the system:fees balance)',
    registers: [this.registry],
  });

  readonly chainUp = new Gauge({
    name: 'gpumesh_chain_up',
    help: '1 when the settlement chain RPC answered at the last scrape, 0 when not (absent without a chain)',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'gpumesh_' });
  }
}
