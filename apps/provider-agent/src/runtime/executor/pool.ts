import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

import {
  disableTf32,
  ensureEglPlatform,
  listWebgpuAdapters,
  requestWebgpuAdapter,
  TaskError,
  taskFromSpec,
  workerEntry,
  type WebgpuAdapterInfo,
} from '@gpumesh/compute';
import {
  decodeTensorWire,
  encodeTensor,
  isTensorRef,
  refTensorByteLength,
  tensorView,
  type Backend,
  type DecodedTensor,
  type JobSpec,
  type TensorRef,
  type TensorWire,
} from '@gpumesh/protocol';

import { resolveBackend, type BackendReport, type ResolveBackendOptions } from '../backend.js';
import { adapterForSlot, confirmWebgpuAdapters, planWebgpuAdapters } from './adapters.js';
import { ARENA_MIN_BYTES, arenaLayout, InputArenas } from './arena.js';
import type {
  EpochProgress,
  ExecutorErrorCode,
  FromWorker,
  ModelArtifact,
  RawTensor,
  ToWorker,
  WorkerInit,
  WorkerMemory,
  WorkerTask,
} from './messages.js';

/** A failed task: `code` says why (bad input, timeout, cancelled, memory limit, ...). */
export class ExecutorError extends Error {
  constructor(
    readonly code: ExecutorErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ExecutorError';
  }
}

export interface ExecutorTask {
  readonly jobId: string;
  readonly attempt: number;
  readonly spec: JobSpec;
  /** The model artifact for inference and train jobs (fetched and verified by the caller). */
  readonly model?: ModelArtifact;
  /**
   * The little-endian element bytes of each input by ref, by input name (fetched and checked against
   * their sha256 by the caller); they reach the worker as typed arrays, never as base64.
   */
  readonly refInputs?: ReadonlyMap<string, Uint8Array>;
}

export interface TaskProgress extends EpochProgress {
  readonly jobId: string;
  readonly attempt: number;
}

export interface RunOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: TaskProgress) => void;
  /** Overrides the pool's default; capped by the spec's `deadlineSeconds`. */
  readonly timeoutMs?: number;
}

export interface TaskResult {
  /** The outputs of up to the pool's `inlineOutputMaxBytes` each, as wire tensors (base64). */
  readonly outputs: TensorWire[];
  /**
   * The larger outputs as their values (a copy out of the worker's shared memory), not encoded: the
   * agent sends those by ref.
   */
  readonly largeOutputs: DecodedTensor[];
  readonly backend: Backend;
  readonly timings: { readonly queuedMs: number; readonly runMs: number; readonly totalMs: number };
  readonly lossHistory?: number[];
}

export interface ExecutorStats {
  readonly slots: number;
  readonly busy: number;
  readonly idle: number;
  readonly starting: number;
  readonly failed: number;
  readonly queued: number;
  readonly completed: number;
  readonly errored: number;
  readonly timedOut: number;
  readonly cancelled: number;
  readonly workersReplaced: number;
}

export interface ExecutorPoolOptions {
  /** Worker threads (default: CPU cores for cpu/wasm, one per GPU for tensorflow-gpu, 1 for tensorflow). */
  readonly slots?: number;
  /** A backend to force, or an already proven report; default: resolve the best one. */
  readonly backend?: Backend | BackendReport;
  readonly resolve?: ResolveBackendOptions;
  /** Per-worker limit: V8 old-generation size, and the wasm heap (checked after every task). Default 1024. */
  readonly memoryLimitMb?: number;
  /** Default per-task time limit (ms), counted from when the task starts running. Default 10 min. */
  readonly defaultTimeoutMs?: number;
  /** How long a worker may take to load its backend. Default 60 s. */
  readonly workerStartTimeoutMs?: number;
  /**
   * webgpu: the adapter names of the executors, one executor each (default: the hardware adapters Dawn
   * lists and tells apart by name, see adapters.ts; empty: one executor on Dawn's own choice).
   */
  readonly adapters?: readonly string[];
  /**
   * Outputs of more bytes than this come back as values (`largeOutputs`), not base64. Default
   * Infinity: every output inline (the agent passes its `inlineOutputMaxBytes`).
   */
  readonly inlineOutputMaxBytes?: number;
}

export interface ExecutorPool {
  readonly backend: BackendReport;
  readonly slots: number;
  /** webgpu: the adapter name each executor opened by (empty: Dawn's own choice for all). */
  readonly adapters: readonly string[];
  /**
   * webgpu: what Dawn said of the adapters the executors open (one per name in `adapters`, or the
   * adapter of Dawn's own choice); empty on other backends. The advert lists the hardware ones.
   */
  readonly webgpuAdapters: readonly WebgpuAdapterInfo[];
  run(task: ExecutorTask, options?: RunOptions): Promise<TaskResult>;
  stats(): ExecutorStats;
  /** Resolves once no worker is starting (after a replacement, for instance). */
  ready(): Promise<void>;
  /** Debug: tfjs memory of one worker (numTensors must not grow across tasks). */
  workerMemory(slot?: number): Promise<WorkerMemory>;
  close(): Promise<void>;
}

interface Pending {
  readonly id: number;
  readonly task: ExecutorTask;
  readonly options: RunOptions;
  readonly timeoutMs: number;
  readonly submittedAt: number;
  startedAt?: number;
  timer?: NodeJS.Timeout;
  slot?: Slot;
  /** Shared memory its inputs were decoded into when it started (large tasks). */
  arena?: SharedArrayBuffer;
  readonly resolve: (r: TaskResult) => void;
  readonly reject: (e: ExecutorError) => void;
  readonly cleanup: () => void;
}

interface Slot {
  readonly index: number;
  worker: Worker;
  state: 'starting' | 'idle' | 'busy' | 'failed' | 'closed';
  current?: Pending;
  ready: Promise<void>;
  initError?: string;
  /** `workerMemory` requests waiting for this worker's answer, by message id. */
  readonly memoryRequests: Map<number, MemoryRequest>;
}

interface MemoryRequest {
  readonly resolve: (m: WorkerMemory) => void;
  readonly reject: (e: Error) => void;
}

/** Rejects every `workerMemory` request still waiting on `s`'s worker (it is going away). */
function failMemoryRequests(s: Slot, reason: string): void {
  for (const request of s.memoryRequests.values()) request.reject(new Error(reason));
  s.memoryRequests.clear();
}

/** How long a webgpu worker told to exit may take before it is terminated anyway. */
const WEBGPU_EXIT_GRACE_MS = 30_000;

/**
 * Ends a worker. dawn.node aborts the whole process when a worker is terminated inside one of its
 * calls (napi_throw on a terminating thread: FATAL ERROR) or while a GPU readback is pending (mapAsync
 * "Promise not resolved"), so a webgpu worker is asked to exit: it does when its task in flight has
 * settled (its result is dropped: the pool already failed the task). Only a worker still alive after
 * WEBGPU_EXIT_GRACE_MS is terminated, at that risk.
 */
function stopWorker(worker: Worker, backend: Backend): Promise<void> {
  if (backend !== 'webgpu') return worker.terminate().then(() => undefined);
  // threadId is -1 once the thread stopped ('exit' may have fired already: it does not fire again).
  if (worker.threadId === -1) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => void worker.terminate().then(() => resolve()), WEBGPU_EXIT_GRACE_MS);
    timer.unref();
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    const exit: ToWorker = { type: 'exit' };
    worker.postMessage(exit);
  });
}

function defaultSlots(report: BackendReport): number {
  if (report.name === 'tensorflow-gpu') return Math.max(1, report.devices?.length ?? 1);
  if (report.name === 'tensorflow') return 1; // libtensorflow already uses every core
  if (report.name === 'webgpu') return 1; // and one more per further adapter Dawn tells apart (adapters.ts)
  return Math.max(1, availableParallelism());
}

interface DecodedInputs {
  readonly inputs: RawTensor[];
  readonly transfer: ArrayBuffer[];
  /** Shared memory the inputs were decoded into (large tasks), to give back when the task ends. */
  readonly arena?: SharedArrayBuffer;
}

/**
 * An input by ref as a typed array over `bytes` (its fetched element bytes): a view, or a copy into
 * `into` (an arena) when given. Little-endian hosts only read the bytes as they are.
 */
function refInput(ref: TensorRef, bytes: Uint8Array | undefined, into?: Uint8Array): RawTensor {
  const length = refTensorByteLength(ref.dtype, ref.shape);
  if (bytes === undefined || bytes.byteLength !== length) {
    throw new Error(`input ${ref.name} is by ref and its ${length} bytes were not fetched`);
  }
  let data = bytes;
  if (into) {
    data = into.subarray(0, length);
    data.set(bytes);
  } else if (bytes.byteOffset % 4 !== 0) {
    data = bytes.slice();
  }
  return tensorView(ref.name, ref.dtype, ref.shape, data);
}

function decodeInputs(
  spec: JobSpec,
  arenas: InputArenas,
  refInputs?: ReadonlyMap<string, Uint8Array>,
): DecodedInputs {
  const layout = arenaLayout(spec);
  const arena = layout.bytes >= ARENA_MIN_BYTES ? arenas.take(layout.bytes) : undefined;
  const inputs: RawTensor[] = [];
  try {
    spec.inputs.forEach((wire, i) => {
      const into = arena ? new Uint8Array(arena, layout.offsets[i]) : undefined;
      inputs.push(
        isTensorRef(wire) ? refInput(wire, refInputs?.get(wire.name), into) : decodeTensorWire(wire, into),
      );
    });
  } catch (err) {
    if (arena) arenas.give(arena);
    throw new ExecutorError('BAD_INPUT', (err as Error).message);
  }
  // Views of shared memory reach the worker without a copy; fresh buffers are transferred.
  if (arena) return { inputs, transfer: [], arena };
  return { inputs, transfer: inputs.map((t) => t.values.buffer as ArrayBuffer) };
}

/** Checks a task before it is queued: what it would need of memory, and its model artifact. */
function checkTask(task: ExecutorTask, memoryLimitMb: number): void {
  const spec = task.spec;
  if (spec.kind === 'matmul') {
    const a = spec.inputs.find((t) => t.name === 'a');
    const b = spec.inputs.find((t) => t.name === 'b');
    if (a && b && a.shape.length === 2 && b.shape.length === 2) {
      const m = spec.params.transposeA ? a.shape[1] : a.shape[0];
      const n = spec.params.transposeB ? b.shape[0] : b.shape[1];
      const bytes =
        refTensorByteLength('float32', [m, n]) * 2 +
        refTensorByteLength(a.dtype, a.shape) +
        refTensorByteLength(b.dtype, b.shape);
      if (bytes > memoryLimitMb * 1024 * 1024) {
        throw new ExecutorError(
          'MEMORY_LIMIT',
          `matmul needs about ${Math.ceil(bytes / 1048576)} MiB, over the ${memoryLimitMb} MiB limit`,
        );
      }
    }
  } else if (!task.model) {
    throw new ExecutorError('BAD_INPUT', `${spec.kind} job ${task.jobId} needs its model artifact`);
  }
}

/** The kernel task of `task`'s spec (shared with the coordinator's reference recompute). */
function fromSpec(task: ExecutorTask, inputs: RawTensor[]): WorkerTask {
  try {
    return taskFromSpec(task.spec, inputs, task.model);
  } catch (err) {
    if (err instanceof TaskError) throw new ExecutorError(err.code, err.message);
    throw err;
  }
}

/**
 * Starts `slots` worker threads, each loading the backend on its own, and runs tasks on them: one task
 * per worker at a time, FIFO, with per-task timeouts, cancellation and memory limits (a timed-out,
 * cancelled or over-limit worker is terminated and replaced).
 */
export async function createExecutorPool(options: ExecutorPoolOptions = {}): Promise<ExecutorPool> {
  const report =
    typeof options.backend === 'object'
      ? options.backend
      : await resolveBackend({ ...options.resolve, force: options.backend ?? options.resolve?.force });
  if (report.name === 'tensorflow-gpu') disableTf32(); // before any worker loads libtensorflow
  const inlineOutputMaxBytes = options.inlineOutputMaxBytes ?? Number.POSITIVE_INFINITY;
  // Mesa reads EGL_PLATFORM from the real environment, which a worker's process.env does not change.
  if (report.name === 'webgpu') ensureEglPlatform();
  const opened = new Map<string, WebgpuAdapterInfo>();
  const adapters =
    report.name !== 'webgpu'
      ? []
      : (options.adapters ??
        (await confirmWebgpuAdapters(
          planWebgpuAdapters(await listWebgpuAdapters(report.adapter?.dawnBackend), report.adapter),
          (adapterName) =>
            requestWebgpuAdapter({ adapterName }).then(
              (choice) => {
                opened.set(adapterName, choice.info);
                return choice.info;
              },
              () => null,
            ),
        )));
  const named = adapters.map((name) => opened.get(name)).filter((i) => i !== undefined);
  const webgpuAdapters: WebgpuAdapterInfo[] =
    report.name !== 'webgpu'
      ? []
      : named.length > 0
        ? named
        : report.adapter === undefined
          ? []
          : [report.adapter];
  const slotCount = options.slots ?? Math.max(defaultSlots(report), adapters.length);
  const memoryLimitMb = options.memoryLimitMb ?? 1024;
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 600_000;
  const startTimeoutMs = options.workerStartTimeoutMs ?? 60_000;
  const { url, entry } = workerEntry(import.meta.url, 'worker');
  const queue: Pending[] = [];
  const slots: Slot[] = [];
  let nextId = 1;
  let closed = false;
  const counters = { completed: 0, errored: 0, timedOut: 0, cancelled: 0, workersReplaced: 0 };
  const arenas = new InputArenas(slotCount + 1);

  function spawn(slot: Omit<Slot, 'worker' | 'ready' | 'state'> & Partial<Slot>): Slot {
    const adapterName = adapterForSlot(adapters, slot.index);
    const init: WorkerInit = {
      backend: report.name,
      memoryLimitMb,
      entry,
      ...(adapterName === undefined ? {} : { adapterName }),
    };
    const worker = new Worker(url, {
      workerData: init,
      resourceLimits: { maxOldGenerationSizeMb: memoryLimitMb },
    });
    const s = slot as Slot;
    s.worker = worker;
    s.state = 'starting';
    s.initError = undefined;
    s.ready = new Promise<void>((resolveReady) => {
      const timer = setTimeout(() => {
        if (s.worker === worker && s.state === 'starting') {
          failSlot(s, worker, `worker did not start within ${startTimeoutMs} ms`);
        }
        resolveReady();
      }, startTimeoutMs);
      worker.on('message', (msg: FromWorker) => {
        if (s.worker !== worker) return;
        if (msg.type === 'ready' || msg.type === 'init-error') {
          clearTimeout(timer);
          if (msg.type === 'ready') {
            s.state = 'idle';
            pump();
          } else {
            failSlot(s, worker, msg.message);
          }
          resolveReady();
          return;
        }
        onMessage(s, msg);
      });
      worker.on('error', (err: Error & { code?: string }) => {
        if (s.worker !== worker) return;
        clearTimeout(timer);
        const oom = err.code === 'ERR_WORKER_OUT_OF_MEMORY';
        if (s.state === 'starting') {
          failSlot(s, worker, err.message);
          resolveReady();
          return;
        }
        crash(
          s,
          oom ? 'MEMORY_LIMIT' : 'WORKER_CRASHED',
          oom
            ? `worker ran out of memory (limit ${memoryLimitMb} MiB): ${err.message}`
            : `worker crashed: ${err.message}`,
        );
      });
      worker.on('exit', (code) => {
        if (s.worker !== worker || closed) return;
        clearTimeout(timer);
        if (s.state === 'starting') {
          failSlot(s, worker, `worker exited with code ${code} while starting`);
          resolveReady();
          return;
        }
        if (s.state !== 'failed') crash(s, 'WORKER_CRASHED', `worker exited with code ${code}`);
      });
    });
    return s;
  }

  function failSlot(s: Slot, worker: Worker, message: string): void {
    s.state = 'failed';
    s.initError = message;
    failMemoryRequests(s, `slot ${s.index}'s worker failed: ${message}`);
    void stopWorker(worker, report.name);
    if (slots.length === slotCount && slots.every((x) => x.state === 'failed')) {
      for (const p of queue.splice(0))
        finish(p, new ExecutorError('WORKER_INIT_FAILED', `no executor worker could start: ${message}`));
    }
  }

  /** Terminates the slot's worker, fails its current task with `code`, and starts a replacement. */
  function replace(s: Slot, code: ExecutorErrorCode, message: string): void {
    const p = s.current;
    s.current = undefined;
    failMemoryRequests(s, `slot ${s.index}'s worker was replaced: ${message}`);
    void stopWorker(s.worker, report.name);
    if (p) finish(p, new ExecutorError(code, message));
    if (closed) return;
    counters.workersReplaced++;
    spawn(s);
  }

  function crash(s: Slot, code: ExecutorErrorCode, message: string): void {
    replace(s, code, message);
  }

  function finish(p: Pending, outcome: TaskResult | ExecutorError): void {
    if (p.timer) clearTimeout(p.timer);
    p.cleanup();
    if (outcome instanceof ExecutorError) {
      if (outcome.code === 'TIMEOUT') counters.timedOut++;
      else if (outcome.code === 'CANCELLED') counters.cancelled++;
      else counters.errored++;
      p.reject(outcome);
    } else {
      counters.completed++;
      p.resolve(outcome);
    }
  }

  function onMessage(s: Slot, msg: FromWorker): void {
    if (msg.type === 'memory') {
      s.memoryRequests.get(msg.id)?.resolve(msg.memory);
      s.memoryRequests.delete(msg.id);
      return;
    }
    const p = s.current;
    if (!p || msg.type === 'ready' || msg.type === 'init-error' || msg.id !== p.id) return;
    if (msg.type === 'progress') {
      try {
        p.options.onProgress?.({ jobId: p.task.jobId, attempt: p.task.attempt, ...msg.progress });
      } catch {
        // a listener's error must not break the pool
      }
      return;
    }
    if (msg.type === 'error' && msg.fatal) {
      replace(s, msg.code, msg.message);
      pump();
      return;
    }
    const now = performance.now();
    s.current = undefined;
    s.state = 'idle';
    // The worker has read its inputs: their arena is free, and the worker may start its next task
    // (writing into the other half of its output memory) while this one's outputs are encoded.
    if (p.arena) arenas.give(p.arena);
    p.arena = undefined;
    pump();
    if (msg.type === 'error') {
      finish(p, new ExecutorError(msg.code, msg.message));
    } else {
      const outputs: TensorWire[] = [];
      const largeOutputs: DecodedTensor[] = [];
      try {
        for (const o of msg.outputs) {
          const { buffer, byteOffset, byteLength } = o.values;
          if (byteLength > inlineOutputMaxBytes) {
            // a copy: the worker writes its next task's outputs into this shared memory
            const copy = new Uint8Array(buffer, byteOffset, byteLength).slice();
            largeOutputs.push(tensorView(o.name, o.dtype, o.shape, copy));
          } else {
            outputs.push(encodeTensor(o.name, o.dtype, o.shape, o.values as Float32Array));
          }
        }
      } catch (err) {
        finish(p, new ExecutorError('EXECUTION_FAILED', `cannot encode outputs: ${(err as Error).message}`));
        return;
      }
      const runMs = Math.round(msg.runMs);
      const queuedMs = Math.round((p.startedAt ?? now) - p.submittedAt);
      finish(p, {
        outputs,
        largeOutputs,
        backend: report.name,
        timings: { queuedMs, runMs, totalMs: Math.max(runMs, Math.round(now - p.submittedAt)) },
        ...(msg.lossHistory ? { lossHistory: [...msg.lossHistory] } : {}),
      });
    }
  }

  /**
   * Decodes a task's inputs as it starts (queued tasks hold only their wire form, and an arena freed by
   * the task before is reused at once) and builds what its worker runs.
   */
  function prepare(p: Pending): { task: WorkerTask; transfer: ArrayBuffer[] } {
    const decoded = decodeInputs(p.task.spec, arenas, p.task.refInputs);
    p.arena = decoded.arena;
    return { task: fromSpec(p.task, decoded.inputs), transfer: decoded.transfer };
  }

  function pump(): void {
    for (const s of slots) {
      if (s.state !== 'idle') continue;
      let p: Pending | undefined;
      let prepared: ReturnType<typeof prepare> | undefined;
      while (prepared === undefined && (p = queue.shift()) !== undefined) {
        try {
          prepared = prepare(p);
        } catch (err) {
          finish(p, err instanceof ExecutorError ? err : new ExecutorError('BAD_INPUT', String(err)));
        }
      }
      if (p === undefined || prepared === undefined) return;
      const started = p;
      s.state = 'busy';
      s.current = started;
      started.slot = s;
      started.startedAt = performance.now();
      started.timer = setTimeout(() => {
        if (s.current === started) {
          replace(
            s,
            'TIMEOUT',
            `job ${started.task.jobId} attempt ${started.task.attempt} exceeded ${started.timeoutMs} ms`,
          );
          pump();
        }
      }, started.timeoutMs);
      const msg: ToWorker = { type: 'run', id: started.id, task: prepared.task };
      s.worker.postMessage(msg, prepared.transfer);
    }
  }

  for (let i = 0; i < slotCount; i++) {
    slots.push(spawn({ index: i, memoryRequests: new Map() }));
  }
  await Promise.all(slots.map((s) => s.ready));
  if (slots.every((s) => s.state === 'failed')) {
    await Promise.all(slots.map((s) => stopWorker(s.worker, report.name)));
    throw new ExecutorError(
      'WORKER_INIT_FAILED',
      `no executor worker could start: ${slots[0]?.initError ?? 'unknown'}`,
    );
  }

  return {
    backend: report,
    slots: slotCount,
    adapters: slots.map((s) => adapterForSlot(adapters, s.index)).filter((a): a is string => a !== undefined),
    webgpuAdapters,
    run(task: ExecutorTask, runOptions: RunOptions = {}): Promise<TaskResult> {
      return new Promise<TaskResult>((resolve, reject) => {
        if (closed) return reject(new ExecutorError('CLOSED', 'the executor pool is closed'));
        const signal = runOptions.signal;
        if (signal?.aborted) {
          counters.cancelled++;
          return reject(new ExecutorError('CANCELLED', `job ${task.jobId} was cancelled before it started`));
        }
        if (slots.every((s) => s.state === 'failed')) {
          counters.errored++;
          return reject(
            new ExecutorError('WORKER_INIT_FAILED', `no executor worker is running: ${slots[0]?.initError}`),
          );
        }
        try {
          checkTask(task, memoryLimitMb);
        } catch (err) {
          counters.errored++;
          return reject(err instanceof ExecutorError ? err : new ExecutorError('BAD_INPUT', String(err)));
        }
        const timeoutMs = Math.min(
          runOptions.timeoutMs ?? defaultTimeoutMs,
          task.spec.deadlineSeconds * 1000,
        );
        const onAbort = (): void => {
          const idx = queue.indexOf(p);
          if (idx >= 0) {
            queue.splice(idx, 1);
            finish(p, new ExecutorError('CANCELLED', `job ${task.jobId} was cancelled while queued`));
          } else if (p.slot && p.slot.current === p) {
            replace(p.slot, 'CANCELLED', `job ${task.jobId} was cancelled while running`);
            pump();
          }
        };
        const p: Pending = {
          id: nextId++,
          task,
          options: runOptions,
          timeoutMs,
          submittedAt: performance.now(),
          resolve,
          reject,
          cleanup: () => {
            signal?.removeEventListener('abort', onAbort);
            // Free for the next task even when a worker still reading it is being replaced: workers
            // only ever read their inputs.
            if (p.arena) arenas.give(p.arena);
            p.arena = undefined;
          },
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        queue.push(p);
        pump();
      });
    },
    stats(): ExecutorStats {
      const count = (state: Slot['state']): number => slots.filter((s) => s.state === state).length;
      return {
        slots: slotCount,
        busy: count('busy'),
        idle: count('idle'),
        starting: count('starting'),
        failed: count('failed'),
        queued: queue.length,
        ...counters,
      };
    },
    async ready(): Promise<void> {
      while (slots.some((s) => s.state === 'starting')) await Promise.all(slots.map((s) => s.ready));
    },
    async workerMemory(slot = 0): Promise<WorkerMemory> {
      const s = slots[slot];
      if (!s) throw new Error(`no slot ${slot}`);
      await s.ready;
      if (s.state === 'failed' || s.state === 'closed') throw new Error(`slot ${slot} has no running worker`);
      const id = nextId++;
      return new Promise<WorkerMemory>((resolve, reject) => {
        s.memoryRequests.set(id, { resolve, reject });
        const msg: ToWorker = { type: 'memory', id };
        s.worker.postMessage(msg);
      });
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      for (const p of queue.splice(0)) finish(p, new ExecutorError('CLOSED', 'the executor pool was closed'));
      for (const s of slots) {
        if (s.current) {
          const p = s.current;
          s.current = undefined;
          finish(p, new ExecutorError('CLOSED', 'the executor pool was closed'));
        }
        s.state = 'closed';
        failMemoryRequests(s, 'the executor pool was closed');
      }
      await Promise.all(slots.map((s) => stopWorker(s.worker, report.name)));
    },
  };
}
