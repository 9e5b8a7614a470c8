// node analyze.mjs <dir>: probe latency figures and, for the slow probes, what the coordinator's main
// thread did meanwhile (timer lag, ELU, its CPU time and its run-queue wait, per 20 ms sample).
import { readFileSync } from 'node:fs';
const dir = process.argv[2];
const lines = (f) =>
  readFileSync(`${dir}/${f}`, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
const probes = lines('probes.jsonl').filter((p) => p.ms >= 0);
const loop = lines('loop.jsonl');
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = probes.map((p) => p.ms);
console.log(
  JSON.stringify({ probes: probes.length, p50: pct(ms, 50), p99: pct(ms, 99), max: Math.max(...ms) }),
);
// samples overlapping a probe: the sample at t covers (t-20-lag, t]
const during = (p) => loop.filter((s) => s.t >= p.t && s.t - 20 - Math.max(0, s.lag) <= p.t + p.ms);
const slow = [...probes].sort((a, b) => b.ms - a.ms).slice(0, 12);
for (const p of slow) {
  const ss = during(p);
  const sum = (k) => Math.round(ss.reduce((n, s) => n + s[k], 0));
  console.log(
    JSON.stringify({
      probeMs: p.ms,
      at: new Date(p.t).toISOString().slice(11, 23),
      samples: ss.length,
      maxLag: Math.max(0, ...ss.map((s) => s.lag)),
      meanElu: ss.length ? Math.round((ss.reduce((n, s) => n + s.elu, 0) / ss.length) * 100) / 100 : null,
      mainThreadCpuMs: sum('cpuMs'),
      runQueueWaitMs: sum('waitMs'),
    }),
  );
}
// whole run: main thread's CPU vs run-queue wait, and the windows where the loop lagged > 50 ms
const tot = (k, xs) => Math.round(xs.reduce((n, s) => n + s[k], 0));
const lagged = loop.filter((s) => s.lag > 50);
console.log(
  JSON.stringify({
    samples: loop.length,
    mainCpuMs: tot('cpuMs', loop),
    mainRunQueueWaitMs: tot('waitMs', loop),
    laggedSamples: lagged.length,
    laggedCpuMs: tot('cpuMs', lagged),
    laggedWaitMs: tot('waitMs', lagged),
    lagP99: pct(
      loop.map((s) => s.lag),
      99,
    ),
    lagMax: Math.max(...loop.map((s) => s.lag)),
  }),
);
