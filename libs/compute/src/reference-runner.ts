// Reference results computed off the caller's event loop: one worker thread (started on first use,
// replaced after a timeout or a crash, stopped when idle) runs `computeReference` for the coordinator.
// Work over the budget, or beyond a full queue, is refused at once with a reason instead of waiting.
// @gpumesh/protocol is imported lazily (executor workers load this module through @gpumesh/compute's index).
import { Worker } from 'node:worker_threads';

import type { JobSpec, TensorWire } from '@gpumesh/protocol';

import type { ReferenceBackend } from './reference.js';
import type { ExecutorErrorCode, ModelArtifact } from './task.js';
import { workerEntry } from './worker-entry.js';

/** Why a reference was not computed. */
export type ReferenceFailureCode =
  /** The job costs more work units than the runner's budget (refused before any work). */
  | 'OVER_BUDGET'
  /** Too many references already waiting (refused before any work). */
  | 'BUSY'
  /** A model job without its artifact. */
  | 'NO_ARTIFACT'
  /** Not finished within the time limit (the worker computing it was stopped). */
  | 'TIMEOUT'
  /** The worker thread died (out of memory, a crash). */
  | 'WORKER_CRASHED'
  /** The runner was closed. */
  | 'CLOSED'
  | Extract<ExecutorErrorCode, 'BAD_INPUT' | 'MODEL_LOAD_FAILED' | 'EXECUTION_FAILED'>;

export class ReferenceRunError extends Error {
  constructor(
    readonly code: ReferenceFailureCode,
    message: string,
  ) {
    super(message);
    this.name = 'ReferenceRunError';
  }
}

export interface ReferenceWorkerRequest {
  readonly id: number;
  readonly spec: JobSpec;
  readonly artifacts: ModelArtifact[];
  readonly backend: ReferenceBackend;
  readonly maxWorkUnits?: bigint;
  /** Train specs: evaluate these weight sets' training loss instead of training (`computeTrainLosses`). */
  readonly trainLossOf?: readonly (readonly TensorWire[] | null)[];
}

export type ReferenceWorkerReply =
  | {
      readonly id: number;
      readonly ok: true;
      readonly outputs: TensorWire[];
      /** The losses of a `trainLossOf` request, in its order. */
      readonly losses?: number[];
      readonly runMs: number;
    }
  | { readonly id: number; readonly ok: false; readonly code: ExecutorErrorCode; readonly message: string };

export interface ReferenceRunnerOptions {
  /** Refuse specs costing more work units than this (1 unit = 10⁶ FLOPs). Default: no limit. */
  readonly maxWorkUnits?: bigint;
  /**
   * Time limit of one reference, from submission (queue wait included), for a small job. Default
   * 60 s. A bigger job gets the time its work takes at `minMegaflopsPerSecond` when that is longer.
   */
  readonly timeoutMs?: number;
  /**
   * The slowest rate the worker is assumed to compute at, in MFLOP/s (work units a second), so a job
   * within the budget is not stopped for its size on a busy machine. Default 100 (the cpu backend
   * trains at ~1,300 on one idle core of the 2-core CI machine, under 550 when the cores are shared).
   */
  readonly minMegaflopsPerSecond?: number;
  /** Most references waiting at once, across priorities; more are refused `BUSY`. Default 16. */
  readonly maxQueued?: number;
  /** Most low-priority references (canary answers) waiting at once. Default 4. */
  readonly maxLowPriorityQueued?: number;
  /** V8 old-generation limit of the worker thread (its death is a `WORKER_CRASHED` failure). Default 1024. */
  readonly memoryLimitMb?: number;
  /** Backend of the worker. Default `cpu` (plain JavaScript, the same result on every machine). */
  readonly backend?: ReferenceBackend;
  /** An idle worker is stopped after this long (it holds tfjs and the last model's memory). Default 60 s. */
  readonly idleMs?: number;
}

export interface ReferenceRequestOptions {
  /** The artifact named by `spec.model.hash` (inference and train); the worker checks its hash. */
  readonly model?: ModelArtifact;
  /** `high` (tie-breaks, re-verification) runs before any waiting `low` (canary answers). Default high. */
  readonly priority?: 'high' | 'low';
  /** Overrides the runner's time limit for this reference. */
  readonly timeoutMs?: number;
  /**
   * Train specs only: instead of training, the training loss of each of these weight sets (a train
   * job's outputs; `null` for the artifact's untrained weights), returned in `losses`.
   */
  readonly trainLossOf?: readonly (readonly TensorWire[] | null)[];
}

export interface ReferenceRun {
  /** The job's outputs (empty for a `trainLossOf` request). */
  readonly outputs: TensorWire[];
  /** The losses of a `trainLossOf` request, in its order. */
  readonly losses?: number[];
  /** Work units of the spec (what the budget was checked against). */
  readonly workUnits: bigint;
  readonly queuedMs: number;
  readonly runMs: number;
}

export interface ReferenceRunnerStats {
  readonly queued: number;
  readonly running: number;
  readonly completed: number;
  readonly failed: number;
  readonly refused: number;
  readonly timedOut: number;
  readonly workersStarted: number;
}

interface Task {
  readonly id: number;
  readonly request: ReferenceWorkerRequest;
  readonly workUnits: bigint;
  readonly submittedAt: number;
  readonly timeoutMs: number;
  startedAt?: number;
  timer?: NodeJS.Timeout;
  readonly resolve: (run: ReferenceRun) => void;
  readonly reject: (err: ReferenceRunError) => void;
}

const DEFAULTS = {
  timeoutMs: 60_000,
  minMegaflopsPerSecond: 100,
  maxQueued: 16,
  maxLowPriorityQueued: 4,
  memoryLimitMb: 1024,
  idleMs: 60_000,
};

/**
 * The time limit of a reference costing `workUnits` (MFLOP): `timeoutMs`, or the time the work takes
 * at `minMegaflopsPerSecond` when that is longer.
 */
export function referenceTimeLimitMs(
  workUnits: bigint,
  timeoutMs: number,
  minMegaflopsPerSecond: number,
): number {
  const workMs = (Number(workUnits) / minMegaflopsPerSecond) * 1000;
  return Math.max(timeoutMs, Math.ceil(workMs));
}

function modelJsonOf(model: ModelArtifact): unknown {
  return typeof model.modelJson === 'string' ? (JSON.parse(model.modelJson) as unknown) : model.modelJson;
}

/**
 * Computes job references in one worker thread, one at a time, high priority first. Never throws
 * anything but `ReferenceRunError`, and nothing a worker does (a crash, running out of memory, a
 * kernel that never ends) reaches the caller's process beyond that rejection.
 */
export class ReferenceRunner {
  private readonly options: Required<Omit<ReferenceRunnerOptions, 'maxWorkUnits'>> &
    Pick<ReferenceRunnerOptions, 'maxWorkUnits'>;
  private worker: Worker | null = null;
  private current: Task | null = null;
  private readonly high: Task[] = [];
  private readonly low: Task[] = [];
  private idleTimer: NodeJS.Timeout | null = null;
  private nextId = 1;
  private closed = false;
  private counts = { completed: 0, failed: 0, refused: 0, timedOut: 0, workersStarted: 0 };

  constructor(options: ReferenceRunnerOptions = {}) {
    this.options = {
      ...DEFAULTS,
      backend: 'cpu',
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    };
  }

  /** The work budget (undefined: none). */
  get maxWorkUnits(): bigint | undefined {
    return this.options.maxWorkUnits;
  }

  /**
   * The reference outputs of `spec`, in the executor's names and order. Rejects with a
   * `ReferenceRunError`: at once for `OVER_BUDGET`, `BUSY`, `NO_ARTIFACT` and unpriceable specs
   * (`BAD_INPUT`), later for `TIMEOUT`, `WORKER_CRASHED`, `CLOSED` or the kernel's own failure.
   */
  async compute(spec: JobSpec, options: ReferenceRequestOptions = {}): Promise<ReferenceRun> {
    if (this.closed) throw this.refuse('CLOSED', 'the reference runner is closed');
    const protocol = await import('@gpumesh/protocol');
    if (spec.kind !== 'matmul' && !options.model) {
      throw this.refuse('NO_ARTIFACT', `no artifact for the ${spec.kind} job's model ${spec.model.hash}`);
    }
    if (options.trainLossOf && spec.kind !== 'train') {
      throw this.refuse('BAD_INPUT', `a ${spec.kind} job has no training loss`);
    }
    let workUnits: bigint;
    try {
      workUnits = protocol.workUnitsForSpec(spec, options.model ? modelJsonOf(options.model) : undefined);
    } catch (err) {
      throw this.refuse('BAD_INPUT', `cannot price the job: ${(err as Error).message}`);
    }
    const budget = this.options.maxWorkUnits;
    if (budget !== undefined && workUnits > budget) {
      throw this.refuse(
        'OVER_BUDGET',
        `the job costs ${workUnits} work units, over the reference work budget of ${budget} (1 unit = 10^6 FLOPs): not recomputed`,
      );
    }
    const priority = options.priority ?? 'high';
    const waiting = this.high.length + this.low.length;
    if (waiting >= this.options.maxQueued) {
      throw this.refuse(
        'BUSY',
        `${waiting} references are already waiting (limit ${this.options.maxQueued})`,
      );
    }
    if (priority === 'low' && this.low.length >= this.options.maxLowPriorityQueued) {
      throw this.refuse(
        'BUSY',
        `${this.low.length} low-priority references are already waiting (limit ${this.options.maxLowPriorityQueued})`,
      );
    }
    return new Promise<ReferenceRun>((resolve, reject) => {
      const task: Task = {
        id: this.nextId++,
        request: {
          id: 0,
          spec,
          artifacts: options.model ? [options.model] : [],
          backend: this.options.backend,
          maxWorkUnits: budget,
          ...(options.trainLossOf ? { trainLossOf: options.trainLossOf } : {}),
        },
        workUnits,
        submittedAt: performance.now(),
        timeoutMs:
          options.timeoutMs ??
          referenceTimeLimitMs(workUnits, this.options.timeoutMs, this.options.minMegaflopsPerSecond),
        resolve,
        reject,
      };
      task.timer = setTimeout(() => this.onTimeout(task), task.timeoutMs);
      (priority === 'high' ? this.high : this.low).push(task);
      this.pump();
    });
  }

  stats(): ReferenceRunnerStats {
    return {
      queued: this.high.length + this.low.length,
      running: this.current ? 1 : 0,
      ...this.counts,
    };
  }

  /** Rejects everything waiting or running with `CLOSED` and stops the worker. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const pending = [...(this.current ? [this.current] : []), ...this.high, ...this.low];
    this.current = null;
    this.high.length = 0;
    this.low.length = 0;
    for (const task of pending)
      this.fail(task, new ReferenceRunError('CLOSED', 'the reference runner closed'));
    await this.stopWorker();
  }

  private refuse(code: ReferenceFailureCode, message: string): ReferenceRunError {
    this.counts.refused += 1;
    return new ReferenceRunError(code, message);
  }

  private fail(task: Task, err: ReferenceRunError): void {
    if (task.timer) clearTimeout(task.timer);
    if (err.code === 'TIMEOUT') this.counts.timedOut += 1;
    else this.counts.failed += 1;
    task.reject(err);
  }

  private pump(): void {
    if (this.closed || this.current) return;
    const task = this.high.shift() ?? this.low.shift();
    if (!task) {
      this.scheduleIdleStop();
      return;
    }
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    let worker: Worker;
    try {
      worker = this.ensureWorker();
    } catch (err) {
      this.fail(
        task,
        new ReferenceRunError('WORKER_CRASHED', `cannot start the reference worker: ${String(err)}`),
      );
      queueMicrotask(() => this.pump());
      return;
    }
    this.current = task;
    task.startedAt = performance.now();
    worker.postMessage({ ...task.request, id: task.id } satisfies ReferenceWorkerRequest);
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const { url, entry } = workerEntry(import.meta.url, 'reference-worker');
    const worker = new Worker(url, {
      workerData: entry ? { entry } : {},
      resourceLimits: { maxOldGenerationSizeMb: this.options.memoryLimitMb },
    });
    // Pending tasks keep the process alive through their timers; an idle worker never does.
    worker.unref();
    worker.on('message', (msg: ReferenceWorkerReply) => this.onReply(worker, msg));
    worker.on('error', (err: Error) =>
      this.onWorkerGone(worker, `the reference worker crashed: ${err.message}`),
    );
    worker.on('exit', (code: number) =>
      this.onWorkerGone(worker, `the reference worker exited with code ${code}`),
    );
    this.worker = worker;
    this.counts.workersStarted += 1;
    return worker;
  }

  private onReply(worker: Worker, msg: ReferenceWorkerReply): void {
    const task = this.current;
    if (worker !== this.worker || !task || msg.id !== task.id) return; // a stopped task's late answer
    this.current = null;
    if (task.timer) clearTimeout(task.timer);
    if (msg.ok) {
      this.counts.completed += 1;
      const started = task.startedAt ?? task.submittedAt;
      task.resolve({
        outputs: msg.outputs,
        ...(msg.losses ? { losses: msg.losses } : {}),
        workUnits: task.workUnits,
        queuedMs: started - task.submittedAt,
        runMs: msg.runMs,
      });
    } else {
      const code: ReferenceFailureCode =
        msg.code === 'BAD_INPUT' && /over the reference budget/.test(msg.message)
          ? 'OVER_BUDGET'
          : msg.code === 'BAD_INPUT' || msg.code === 'MODEL_LOAD_FAILED'
            ? msg.code
            : 'EXECUTION_FAILED';
      this.fail(task, new ReferenceRunError(code, msg.message));
    }
    this.pump();
  }

  private onWorkerGone(worker: Worker, why: string): void {
    if (worker !== this.worker) return; // already replaced (a timeout stopped it)
    this.worker = null;
    const task = this.current;
    this.current = null;
    if (task) this.fail(task, new ReferenceRunError('WORKER_CRASHED', why));
    this.pump();
  }

  private onTimeout(task: Task): void {
    const seconds = (task.timeoutMs / 1000).toFixed(1);
    if (this.current === task) {
      // A kernel cannot be interrupted: the worker computing it is stopped and replaced on demand.
      this.current = null;
      void this.stopWorker();
      this.fail(
        task,
        new ReferenceRunError('TIMEOUT', `the reference took longer than ${seconds} s and was stopped`),
      );
      this.pump();
      return;
    }
    for (const queue of [this.high, this.low]) {
      const i = queue.indexOf(task);
      if (i >= 0) queue.splice(i, 1);
    }
    this.fail(
      task,
      new ReferenceRunError('TIMEOUT', `the reference waited longer than ${seconds} s for the worker`),
    );
  }

  private scheduleIdleStop(): void {
    if (this.idleTimer || !this.worker) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (!this.current && this.high.length + this.low.length === 0) void this.stopWorker();
    }, this.options.idleMs);
    this.idleTimer.unref();
  }

  private async stopWorker(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate().catch(() => undefined);
  }
}
