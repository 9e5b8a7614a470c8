// Preloaded into the bench coordinator (node --import): every 20 ms, how long the event loop was
// held (timer lag), its utilisation (ELU), and the main thread's CPU time and run-queue wait
// (/proc/self/task/<pid>/schedstat, ns), written as JSON lines to LOOP_SAMPLER_OUT.
import { appendFileSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const out = process.env.LOOP_SAMPLER_OUT ?? `loop-${process.pid}.jsonl`;
const stat = `/proc/self/task/${process.pid}/schedstat`;
const read = () => readFileSync(stat, 'utf8').trim().split(/\s+/).map(Number);
let [cpu0, wait0] = read();
let elu0 = performance.eventLoopUtilization();
let last = performance.now();
let lines = [];
const PERIOD = 20;
const timer = setInterval(() => {
  const now = performance.now();
  const [cpu, wait] = read();
  const elu = performance.eventLoopUtilization(elu0);
  elu0 = performance.eventLoopUtilization();
  lines.push(
    JSON.stringify({
      t: Date.now(),
      lag: Math.round((now - last - PERIOD) * 10) / 10,
      elu: Math.round(elu.utilization * 1000) / 1000,
      cpuMs: Math.round((cpu - cpu0) / 1e4) / 100,
      waitMs: Math.round((wait - wait0) / 1e4) / 100,
    }),
  );
  cpu0 = cpu;
  wait0 = wait;
  last = now;
  if (lines.length >= 50) {
    appendFileSync(out, lines.join('\n') + '\n');
    lines = [];
  }
}, PERIOD);
timer.unref();
process.on('exit', () => {
  if (lines.length) appendFileSync(out, lines.join('\n') + '\n');
});
