import type { JobsOptions } from 'bullmq';
import { DISPATCH_BACKOFF_TYPE } from './dispatch-backoff.js';

/** Every BullMQ queue of the coordinator. */
export enum QueueName {
  Dispatch = 'dispatch',
  DeadLetter = 'dispatch-dead-letter',
  Maintenance = 'maintenance',
  Settlement = 'settlement',
  Stats = 'stats',
  Retention = 'retention',
}

/** Every BullMQ job name. */
export enum QueueJobName {
  Dispatch = 'dispatch-job',
  DeadLetter = 'dead-lettered-job',
  ExpireOverdue = 'expire-overdue-jobs',
  RequeueQueued = 'requeue-queued-jobs',
  ChargeDisprovedClaims = 'charge-disproved-claims',
  SettlementTick = 'settlement-tick',
  CloseEpoch = 'close-epoch',
  PostEpoch = 'post-epoch',
  FinalizeEpochs = 'finalize-epochs',
  StatsRollup = 'stats-rollup',
  StatsBackfill = 'stats-backfill',
  SweepTensors = 'sweep-tensors',
}

export interface EpochJobData {
  epoch: number;
}

export interface DispatchJobData {
  jobId: string;
}

export interface DeadLetterJobData {
  jobId: string;
  queue: QueueName;
  reason: string;
  attemptsMade: number;
}

/** The options of each job name, in one table. Dispatch attempts/backoff come from the config. */
export function jobOptions(
  name: QueueJobName,
  dispatch: { attempts: number; backoffMs: number },
): JobsOptions {
  switch (name) {
    case QueueJobName.Dispatch:
      return {
        attempts: dispatch.attempts,
        // Exponential when nothing could take the job, at once after failed attempts (dispatch-backoff.ts).
        backoff: { type: DISPATCH_BACKOFF_TYPE, delay: dispatch.backoffMs },
        removeOnComplete: { count: 1000 },
        removeOnFail: { count: 10_000 },
      };
    case QueueJobName.DeadLetter:
      return { removeOnComplete: false, removeOnFail: false };
    case QueueJobName.ExpireOverdue:
    case QueueJobName.RequeueQueued:
    case QueueJobName.ChargeDisprovedClaims:
    case QueueJobName.StatsRollup:
    case QueueJobName.SweepTensors:
      return { removeOnComplete: { count: 10 }, removeOnFail: { count: 100 } };
    case QueueJobName.SettlementTick:
    case QueueJobName.CloseEpoch:
    case QueueJobName.PostEpoch:
    case QueueJobName.FinalizeEpochs:
    case QueueJobName.StatsBackfill:
      // Removed when done so the deterministic id (one per epoch and step) can be used again.
      return { removeOnComplete: true, removeOnFail: true };
  }
}

/** How often the maintenance cron runs (it only enqueues, with a deterministic job id). */
export const MAINTENANCE_EVERY_MS = {
  [QueueJobName.ExpireOverdue]: 2_000,
  [QueueJobName.RequeueQueued]: 30_000,
  // Only a worker that stopped between a completion's commit and its charge leaves work here.
  [QueueJobName.ChargeDisprovedClaims]: 120_000,
} as const;
