// Reference worker thread (started by ReferenceRunner): computes one job's reference at a time with
// `computeReference` on its own tfjs backend, so the caller's event loop never runs a kernel.
import { parentPort } from 'node:worker_threads';

import type { TensorWire } from '@gpumesh/protocol';

import { TaskError } from './kernels.js';
import { computeReference, computeTrainLosses } from './reference.js';
import type { ReferenceWorkerReply, ReferenceWorkerRequest } from './reference-runner.js';

const port = parentPort;
if (!port) throw new Error('the reference worker must run in a worker thread');

function reply(msg: ReferenceWorkerReply): void {
  port?.postMessage(msg);
}

async function answer(msg: ReferenceWorkerRequest): Promise<{ outputs: TensorWire[]; losses?: number[] }> {
  if (msg.trainLossOf) {
    const losses = await computeTrainLosses(msg.spec, msg.trainLossOf, {
      artifacts: msg.artifacts,
      backend: msg.backend,
    });
    return { outputs: [], losses };
  }
  const outputs = await computeReference(msg.spec, {
    artifacts: msg.artifacts,
    backend: msg.backend,
    maxWorkUnits: msg.maxWorkUnits,
  });
  return { outputs };
}

port.on('message', (msg: ReferenceWorkerRequest) => {
  const started = performance.now();
  answer(msg)
    .then((done) => reply({ id: msg.id, ok: true, ...done, runMs: performance.now() - started }))
    .catch((err: unknown) => {
      const e =
        err instanceof TaskError
          ? err
          : new TaskError('EXECUTION_FAILED', String((err as Error)?.message ?? err));
      reply({ id: msg.id, ok: false, code: e.code, message: e.message.slice(0, 2000) });
    });
});
