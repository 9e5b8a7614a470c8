// The coordinator's result-check thread: compares two results of a job within its tolerance and
// runs the sanity check of a result, when their outputs are large (outputs by ref read back from
// the tensor store: tens of MiB of floats). The same functions as on the event loop (compare.ts,
// libs/verification), so a result is judged alike on either side; the loop stays free meanwhile.
import { parentPort } from 'node:worker_threads';
import { checkResultSanity } from '@gpumesh/verification';

import type { CheckReply, CheckRequest } from './check-messages.js';
import { compareResults } from './compare.js';

const port = parentPort;
if (!port) throw new Error('check-worker runs as a worker thread');

port.on('message', (msg: CheckRequest) => {
  let reply: CheckReply;
  try {
    reply =
      msg.type === 'compare'
        ? { type: 'compared', id: msg.id, agreement: compareResults(msg.a, msg.b, { spec: msg.spec }) }
        : { type: 'sane', id: msg.id, verdict: checkResultSanity(msg.spec, msg.outputs) };
  } catch (err) {
    reply = { type: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
