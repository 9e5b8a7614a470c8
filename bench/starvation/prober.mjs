// Probes GET /health/live every 20 ms on the given base URL, one at a time, and writes
// {t (start, epoch ms), ms} lines to PROBE_OUT until killed.
import { appendFileSync } from 'node:fs';
import http from 'node:http';
const base = new URL(process.argv[2]);
const out = process.env.PROBE_OUT ?? 'probes.jsonl';
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let lines = [];
const once = () =>
  new Promise((resolve) => {
    const t = Date.now();
    const s = performance.now();
    const req = http.get(new URL('/health/live', base), { agent }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({ t, ms: Math.round((performance.now() - s) * 10) / 10, status: res.statusCode }),
      );
    });
    req.on('error', () => resolve({ t, ms: -1 }));
  });
for (;;) {
  const r = await once();
  lines.push(JSON.stringify(r));
  if (lines.length >= 50) {
    appendFileSync(out, lines.join('\n') + '\n');
    lines = [];
  }
  await new Promise((r) => setTimeout(r, 20));
}
