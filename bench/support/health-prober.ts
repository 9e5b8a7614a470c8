// GET /health/live every `intervalMs`, one at a time, from a process of its own: what a liveness
// probe of an orchestrator sees, without the bench's own event loop (busy uploading, downloading
// and checking results) in the figure. Started by `startHealthProber`; stops when its stdin ends,
// then prints one JSON line: each probe's latency and start time (epoch ms, comparable across
// processes).
import { spawn } from 'node:child_process';
import { Agent, get } from 'node:http';
import { fileURLToPath } from 'node:url';

interface Probes {
  latencies: number[];
  startedAt: number[];
}

/** Starts the prober process; `stop` ends it and returns its probes. */
export function startHealthProber(
  base: URL,
  intervalMs = 20,
): { stop: () => Promise<Probes>; ready: Promise<void> } {
  const child = spawn(
    process.execPath,
    [fileURLToPath(import.meta.url), new URL('/health/live', base).href, String(intervalMs)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    void exited.then((code) => reject(new Error(`health prober exited ${code} before probing`)));
  });
  return {
    ready,
    stop: async () => {
      child.stdin.end();
      const code = await exited;
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{')) throw new Error(`health prober exited ${code}: ${out}`);
      return JSON.parse(last) as Probes;
    },
  };
}

async function probe(url: string, intervalMs: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const probes: Probes = { latencies: [], startedAt: [] };
  let running = true;
  process.stdin.on('end', () => (running = false));
  process.stdin.resume();
  process.stdout.write('probing\n');
  while (running) {
    const startedAt = performance.timeOrigin + performance.now();
    const started = performance.now();
    const status = await new Promise<number>((resolve, reject) => {
      get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      }).on('error', reject);
    });
    if (status !== 200) throw new Error(`${url}: ${status}`);
    probes.latencies.push(performance.now() - started);
    probes.startedAt.push(startedAt);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  agent.destroy();
  process.stdout.write(`${JSON.stringify(probes)}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await probe(process.argv[2], Number(process.argv[3]));
}
