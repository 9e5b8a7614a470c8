// Executor worker thread: loads its own tfjs backend, then runs one task at a time for the pool.
import { parentPort, workerData } from 'node:worker_threads';

import {
  loadTf,
  runKernel,
  TaskError,
  wasmGemmMemoryBytes,
  type LoadedTf,
  type RawTensor,
} from '@gpumesh/compute';

import { checkMatmul } from '../matmul-check.js';
import type { FromWorker, ToWorker, WorkerInit, WorkerMemory } from './messages.js';

const port = parentPort;
const init = workerData as WorkerInit;

function send(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(msg, transfer);
}

/** Outputs smaller than this leave in fresh arrays (transferred). */
const OUTPUT_ARENA_MIN_BYTES = 64 * 1024;

/**
 * This worker's shared memory for large outputs, reused task after task: results written here need no
 * fresh pages and reach the pool without a copy. Two halves, alternating: the pool encodes one task's
 * outputs while this worker already writes the next task's into the other half (it hands out a task
 * only after it received the result before). Each half grows to what its last task needed.
 */
class OutputArena {
  private readonly halves: (SharedArrayBuffer | undefined)[] = [undefined, undefined];
  private current = 0;
  private used = 0;
  private wanted = 0;

  /** Starts a task on the other half. */
  next(): void {
    this.current ^= 1;
    this.used = 0;
    this.wanted = 0;
  }

  readonly allocate = (bytes: number): Uint8Array | undefined => {
    if (bytes < OUTPUT_ARENA_MIN_BYTES) return undefined;
    const aligned = Math.ceil(bytes / 8) * 8;
    this.wanted += aligned;
    const arena = this.halves[this.current];
    if (!arena || this.used + aligned > arena.byteLength) return undefined;
    const view = new Uint8Array(arena, this.used, bytes);
    this.used += aligned;
    return view;
  };

  /** Ends a task that succeeded: grows its half to what it wanted (within `limitBytes`). */
  settle(limitBytes: number): void {
    if (this.wanted > (this.halves[this.current]?.byteLength ?? 0) && this.wanted <= limitBytes) {
      this.halves[this.current] = new SharedArrayBuffer(this.wanted);
    }
  }
}

/** WebAssembly memory the worker holds: tfjs's heap and the matmul kernel's (neither shrinks). */
function wasmHeapBytes(loaded: LoadedTf): number | undefined {
  if (loaded.backend !== 'wasm') return undefined;
  const backend = loaded.tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  const heap = backend.wasm?.HEAPU8?.byteLength;
  return heap === undefined ? undefined : heap + wasmGemmMemoryBytes();
}

/** webgpu backend: bytes tfjs holds in GPU buffers (its buffer pool keeps freed buffers for reuse). */
function gpuBufferBytes(loaded: LoadedTf): number | undefined {
  if (loaded.backend !== 'webgpu') return undefined;
  const backend = loaded.tf.backend() as unknown as { bufferManager?: { numBytesAllocated?: number } };
  return backend.bufferManager?.numBytesAllocated;
}

function memory(loaded: LoadedTf): WorkerMemory {
  const m = loaded.tf.memory();
  return {
    numTensors: m.numTensors,
    numBytes: m.numBytes,
    numDataBuffers: m.numDataBuffers,
    wasmHeapBytes: wasmHeapBytes(loaded),
    gpuBufferBytes: gpuBufferBytes(loaded),
    jsHeapUsedBytes: process.memoryUsage().heapUsed,
  };
}

async function main(): Promise<void> {
  if (!port) throw new Error('executor worker must run in a worker thread');
  let loaded: LoadedTf;
  try {
    loaded = await loadTf(
      init.backend,
      init.adapterName === undefined ? {} : { adapterName: init.adapterName },
    );
    const check = await checkMatmul(loaded.tf);
    if (!check.ok) throw new Error(`matmul check failed (max relative error ${check.maxRelError})`);
  } catch (err) {
    // Leave when the pool says so (a Dawn instance may keep this thread alive on its own).
    port.on('message', (msg: ToWorker) => {
      if (msg.type === 'exit') process.exit(0);
    });
    send({ type: 'init-error', message: err instanceof Error ? err.message : String(err) });
    return;
  }
  const limitBytes = init.memoryLimitMb * 1024 * 1024;
  const outputArena = new OutputArena();
  // A task in flight, and whether the pool asked this worker to exit when it ends.
  let running = false;
  let exiting = false;
  const settle = (): void => {
    running = false;
    if (exiting) process.exit(0);
  };
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'exit') {
      // Dawn aborts the process if a worker ends with a GPU readback (mapAsync) pending: leave between tasks.
      exiting = true;
      if (!running) process.exit(0);
      return;
    }
    if (msg.type === 'memory') {
      send({ type: 'memory', id: msg.id, memory: memory(loaded) });
      return;
    }
    const started = performance.now();
    running = true;
    outputArena.next();
    runKernel(loaded.tf, msg.task, {
      onProgress: (progress) => send({ type: 'progress', id: msg.id, progress }),
      allocateOutput: outputArena.allocate,
    })
      .then((result) => {
        const gpu = gpuBufferBytes(loaded) ?? 0;
        if (gpu > limitBytes) {
          // GPU buffers are outside the worker's V8 heap limit: hold them to the same limit.
          throw new TaskError(
            'MEMORY_LIMIT',
            `GPU buffers grew to ${Math.round(gpu / 1048576)} MiB, over the ${init.memoryLimitMb} MiB limit`,
          );
        }
        const heap = wasmHeapBytes(loaded) ?? 0;
        if (heap > limitBytes) {
          // The wasm heap never shrinks: report the breach and let the pool replace this worker.
          throw new TaskError(
            'MEMORY_LIMIT',
            `the wasm heap grew to ${Math.round(heap / 1048576)} MiB, over the ${init.memoryLimitMb} MiB limit`,
          );
        }
        const outputs: RawTensor[] = result.outputs;
        outputArena.settle(limitBytes / 4);
        send(
          {
            type: 'result',
            id: msg.id,
            outputs,
            lossHistory: result.lossHistory,
            runMs: performance.now() - started,
          },
          // Fresh arrays are transferred; views of the shared arena are shared as they are.
          outputs
            .map((o) => o.values.buffer)
            .filter((b): b is ArrayBuffer => !(b instanceof SharedArrayBuffer)),
        );
      })
      .catch((err: unknown) => {
        const e =
          err instanceof TaskError
            ? err
            : new TaskError('EXECUTION_FAILED', String((err as Error)?.message ?? err));
        send({
          type: 'error',
          id: msg.id,
          code: e.code,
          message: e.message,
          fatal: e.code === 'MEMORY_LIMIT',
        });
      })
      .finally(settle);
  });
  send({
    type: 'ready',
    backend: loaded.backend,
    version: loaded.version,
    simd: loaded.simd,
    threads: loaded.threads,
  });
}

void main();
