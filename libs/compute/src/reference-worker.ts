// Reference worker thread (started by ReferenceRunner): computes one job's reference at a time with
// `computeReference` on its own tfjs backend, so the caller's event loop never runs a kernel.
import { parentPort } from 'node:worker_threads';

import { TaskError } from './kernels.js';
import { computeReference } from './reference.js';
import type { ReferenceWorkerReply, ReferenceWorkerRequest } from './reference-runner.js';

const port = parentPort;
if (!port) throw new Error('the reference worker must run in a worker thread');

function reply(msg: ReferenceWorkerReply): void {
  port?.postMessage(msg);
}

port.on('message', (msg: ReferenceWorkerRequest) => {
  const started = performance.now();
  computeReference(msg.spec, {
    artifacts: msg.artifacts,
    backend: msg.backend,
    maxWorkUnits: msg.maxWorkUnits,
  })
    .then((outputs) => reply({ id: msg.id, ok: true, outputs, runMs: performance.now() - started }))
    .catch((err: unknown) => {
      const e =
        err instanceof TaskError
          ? err
          : new TaskError('EXECUTION_FAILED', String((err as Error)?.message ?? err));
      reply({ id: msg.id, ok: false, code: e.code, message: e.message.slice(0, 2000) });
    });
});
